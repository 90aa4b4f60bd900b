package gotool

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWithLang(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"package p\n", "//go:build go1.26\n\n/*line /d/f.go:1:1*/package p\n"},
		{"// Copyright.\n\n//go:build amd64 || arm64\n\npackage p\n", "// Copyright.\n\n//go:build (amd64 || arm64) && go1.26\n\npackage p\n"},
		{"/* block */\n//go:build x\npackage p\n", "//go:build go1.26\n\n/*line /d/f.go:1:1*//* block */\n//go:build x\npackage p\n"},
	} {
		if got := string(withLang("/d/f.go", []byte(c.src), "go1.26")); got != c.want {
			t.Errorf("withLang(%q) =\n%q, want\n%q", c.src, got, c.want)
		}
	}
}

// TestSwapDepsComplete checks swapDeps against the modules that the
// packages a swapped build imports really need.
func TestSwapDepsComplete(t *testing.T) {
	for _, c := range []struct {
		pkgs []string
		want []string
	}{
		{[]string{"./debugmutex/..."}, swapDeps},
		{[]string{"./debugmutex/...", "./profiler/autoprofile"}, append(slices.Clone(swapDeps), profileDeps...)},
	} {
		checkDeps(t, c.pkgs, c.want)
	}
}

func checkDeps(t *testing.T, pkgs, deps []string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}}{{end}}{{end}}"}, pkgs...)...)
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Fields(string(out)) {
		if !slices.Contains(got, l) {
			got = append(got, l)
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(deps))
	if !slices.Equal(got, want) {
		t.Errorf("%v need modules %v; lockscope says %v", pkgs, got, want)
	}
}

// repoRoot returns the lockscope checkout these tests run in, four levels
// above their working directory (cmd/lockscope/internal/gotool).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := ModulePath(filepath.Join(root, "go.mod")); err != nil || p != Module {
		t.Fatalf("%s is not the lockscope checkout (%q, %v)", root, p, err)
	}
	return root
}
