package debugmutex_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// These tests take real programs written against package sync, swap the
// import the way a user would, and check that Go's own tools still work:
// the build, the race detector, go vet's copylocks, the nolockscope tag.

const swapped = `sync "github.com/lockscope/lockscope/debugmutex"`

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd) // debugmutex/ is one level below the module root
}

// program writes testdata/programs/<name> into a fresh module, with the sync
// import swapped if swap is true, and returns the module directory.
func program(t *testing.T, name string, swap bool) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "programs", name, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	code := string(src)
	if swap {
		if !strings.Contains(code, `"sync"`) {
			t.Fatalf("%s does not import sync", name)
		}
		code = strings.Replace(code, `"sync"`, swapped, 1)
	}
	root := repoRoot(t)
	gomod := "module example.com/" + name + "\n\ngo 1.26\n\nrequire github.com/lockscope/lockscope v0.0.0\n\nreplace github.com/lockscope/lockscope => " + root + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"main.go": []byte(code), "go.mod": []byte(gomod), "go.sum": sum} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func goCmd(t *testing.T, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"GOFLAGS=-mod=mod"}, env...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSwappedProgramsBuildAndBehaveTheSame(t *testing.T) {
	for _, name := range []string{"counter", "pipeline", "cache"} {
		t.Run(name, func(t *testing.T) {
			want, err := goCmd(t, program(t, name, false), nil, "run", ".")
			if err != nil {
				t.Fatalf("original: %v\n%s", err, want)
			}
			dir := program(t, name, true)
			got, err := goCmd(t, dir, nil, "run", ".")
			if err != nil {
				t.Fatalf("swapped: %v\n%s", err, got)
			}
			if got != want {
				t.Errorf("swapped printed %q, original %q", got, want)
			}
			deps, err := goCmd(t, dir, nil, "list", "-deps", ".")
			if err != nil || !strings.Contains(deps, "github.com/lockscope/lockscope/debugmutex\n") {
				t.Errorf("swapped program does not use debugmutex: %v\n%s", err, deps)
			}
			// Scheduler and runtime settings change nothing.
			again, err := goCmd(t, dir, []string{"GOMAXPROCS=1", "GODEBUG=asyncpreemptoff=1,gctrace=0"}, "run", ".")
			if err != nil || again != want {
				t.Errorf("GOMAXPROCS=1: %v %q", err, again)
			}
		})
	}
}

// TestProgramsCoverEverySyncName checks that the programs above, together,
// use every exported name of Go's package sync, so a green swap test means
// every name is re-exported.
func TestProgramsCoverEverySyncName(t *testing.T) {
	fset := token.NewFileSet()
	exported := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(runtime.GOROOT(), "src", "sync", "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		if file.Name.Name != "sync" {
			continue
		}
		for _, d := range file.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					exported[d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if ts, ok := s.(*ast.TypeSpec); ok && ts.Name.IsExported() {
						exported[ts.Name.Name] = true
					}
				}
			}
		}
	}
	used := map[string]bool{}
	for _, name := range []string{"counter", "pipeline", "cache"} {
		file, err := parser.ParseFile(fset, filepath.Join("testdata", "programs", name, "main.go"), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "sync" {
					used[sel.Sel.Name] = true
				}
			}
			return true
		})
	}
	var missing []string
	for name := range exported {
		if !used[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(exported) < 10 || len(missing) > 0 {
		t.Errorf("sync exports %d names; the programs do not use %v", len(exported), missing)
	}
}

func TestRaceDetectorStillSeesRealRacesAndOnlyThose(t *testing.T) {
	// The race detector runs on the host's architecture: when this test
	// binary was built for another one (GOARCH=386 on amd64, where -race
	// is not supported), the child is built for the host.
	host := []string{"GOARCH=", "GOARM=", "GO386="}
	out, err := goCmd(t, program(t, "racy", true), host, "run", "-race", ".")
	if err == nil || !strings.Contains(out, "WARNING: DATA RACE") || !strings.Contains(out, "main.main.func2") {
		t.Errorf("race not reported under debugmutex (err %v):\n%s", err, out)
	}
	out, err = goCmd(t, program(t, "counter", true), host, "run", "-race", ".")
	if err != nil || strings.Contains(out, "DATA RACE") {
		t.Errorf("race reported in a correct program (err %v):\n%s", err, out)
	}
}

func TestVetCopylocksFlagsCopies(t *testing.T) {
	out, err := goCmd(t, program(t, "copylock", true), nil, "vet", ".")
	if err == nil || !strings.Contains(out, "passes lock by value") {
		t.Errorf("go vet did not flag the copied debugmutex.Mutex (err %v):\n%s", err, out)
	}
}

func TestNolockscopeTagMakesAliases(t *testing.T) {
	out, err := goCmd(t, ".", nil, "test", "-count=1", "-tags", "nolockscope", "-run", "^TestAliasIdentity$", "-v", ".")
	if err != nil || !strings.Contains(out, "--- PASS: TestAliasIdentity") {
		t.Errorf("nolockscope build: %v\n%s", err, out)
	}
}
