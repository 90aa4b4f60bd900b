package gotool

import (
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

func TestLockscopeImportsAreThoseOfLockscopesPackagesInTheBuild(t *testing.T) {
	mod := func(path string, pkgs map[string][]string) BuildModule {
		m := BuildModule{Path: path, Imports: pkgs}
		for p := range pkgs {
			m.Packages = append(m.Packages, p)
		}
		return m
	}
	lockscope := mod(Module, map[string][]string{
		Module + "/debugmutex":  {"sync", Module + "/internal/rt"},
		Module + "/internal/rt": {"github.com/petermattis/goid"},
	})
	goid := mod("github.com/petermattis/goid", map[string][]string{"github.com/petermattis/goid": {"runtime"}})
	grpc := mod("google.golang.org/grpc", map[string][]string{"google.golang.org/grpc": {"sync", "golang.org/x/net/http2"}})
	xnet := mod("golang.org/x/net", map[string][]string{"golang.org/x/net/http2": {"sync"}})

	// A service that only swaps its locks: gRPC is the program's.
	keep := LockscopeImports([]BuildModule{lockscope, goid, grpc, xnet})
	if !keep[Module] || !keep["github.com/petermattis/goid"] || keep["google.golang.org/grpc"] || keep["golang.org/x/net"] {
		t.Errorf("only swapping locks: keep = %v, want lockscope and goid", keep)
	}
	// A program that imports the exporter: gRPC and what it imports are
	// lockscope's too.
	lockscope.Packages = append(lockscope.Packages, Module+"/exporter")
	lockscope.Imports[Module+"/exporter"] = []string{"go.opentelemetry.io/otel/exporters/otlp", Module + "/inspect"}
	otel := mod("go.opentelemetry.io/otel", map[string][]string{"go.opentelemetry.io/otel/exporters/otlp": {"google.golang.org/grpc"}})
	keep = LockscopeImports([]BuildModule{lockscope, goid, grpc, xnet, otel})
	for _, m := range []string{"go.opentelemetry.io/otel", "google.golang.org/grpc", "golang.org/x/net"} {
		if !keep[m] {
			t.Errorf("with the exporter, %s can be swapped: keep = %v", m, keep)
		}
	}
}

func TestDepsPattern(t *testing.T) {
	for _, c := range []struct {
		pattern string
		match   []string
		not     []string
	}{
		{"all", []string{"example.com/a", "golang.org/x/net"}, nil},
		{"golang.org/x/...", []string{"golang.org/x", "golang.org/x/net", "golang.org/x/net/v2"}, []string{"golang.org/xx", "example.com/a"}},
		{"example.com/a, example.com/b", []string{"example.com/a", "example.com/b"}, []string{"example.com/ab", "example.com/a/b"}},
		{"github.com/*x...", nil, []string{"github.com/ax"}}, // * is no wildcard
		{"go.etcd.io/...bbolt", []string{"go.etcd.io/bbolt", "go.etcd.io/x/bbolt"}, []string{"go.etcd.io/bbolt/v2"}},
	} {
		d, err := ParseDepsPattern(c.pattern)
		if err != nil {
			t.Fatalf("ParseDepsPattern(%q): %v", c.pattern, err)
		}
		for _, m := range c.match {
			if !d.Match(m) {
				t.Errorf("%q does not match %s", c.pattern, m)
			}
		}
		for _, m := range c.not {
			if d.Match(m) {
				t.Errorf("%q matches %s", c.pattern, m)
			}
		}
	}
	for _, bad := range []string{"", "a,,b", "a b", `"a"`} {
		if _, err := ParseDepsPattern(bad); err == nil {
			t.Errorf("ParseDepsPattern(%q) accepted", bad)
		}
	}
}

func TestOriginalPositionsKeepLinesAndBuildConstraints(t *testing.T) {
	src := "//go:build linux\n\n// Package p is p.\npackage p\n\nimport debugsync \"x/debugmutex\"\n\nvar mu debugsync.Mutex\n"
	out := string(originalPositions("/mod/cache/p@v1/p.go", []byte(src)))
	if !strings.HasPrefix(out, "//go:build linux\n\n// Package p is p.\npackage p/*line /mod/cache/p@v1/p.go:4:10*/\n") {
		t.Fatalf("the directive is not right after the package name:\n%s", out)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "copy.go", out, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	// What follows the package clause is at the original's positions.
	pos := fset.Position(f.Decls[len(f.Decls)-1].Pos())
	if pos.Filename != "/mod/cache/p@v1/p.go" || pos.Line != 8 || pos.Column != 1 {
		t.Errorf("var mu is at %v, want /mod/cache/p@v1/p.go:8:1", pos)
	}
	// A cgo file keeps cgo's own directives.
	cgo := "package p\n\n// int x;\nimport \"C\"\n"
	if got := string(originalPositions("p.go", []byte(cgo))); got != cgo {
		t.Errorf("cgo file changed:\n%s", got)
	}
}
