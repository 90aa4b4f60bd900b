//go:build distbuild

package debugmutex_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
)

// TestBuildsEverywhere builds package debugmutex (and a program that uses
// it) for every GOOS/GOARCH pair `go tool dist list` names, with cgo off:
// lockscope must build wherever sync does. Slow (a cold build cache compiles
// the standard library for each of ~50 pairs: minutes), so it is behind the
// distbuild build tag; .ci/run runs
//
//	go test -tags distbuild -run TestBuildsEverywhere ./debugmutex/
//
// Each pair is compared with a trivial module that uses sync and nothing
// else, built the same way: where even that does not build (ios and
// android programs cannot be linked without cgo), the pair is logged as
// incomparable for that kind of build, and only then is lockscope's failure
// there not an error.
func TestBuildsEverywhere(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goTool, "tool", "dist", "list").Output()
	if err != nil {
		t.Fatalf("go tool dist list: %v", err)
	}
	pairs := strings.Fields(string(out))
	if len(pairs) < 20 {
		t.Fatalf("go tool dist list named only %d pairs: %q", len(pairs), out)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(wd)

	trivial := writeModule(t, "example.com/trivial", "", map[string]string{
		"lib/lib.go": trivialLib,
		"main.go":    strings.ReplaceAll(usesLocks, "LOCKS", `"sync"`),
	})
	user := writeModule(t, "example.com/user", root, map[string]string{
		"main.go": strings.ReplaceAll(usesLocks, "LOCKS", `sync "github.com/lockscope/lockscope/debugmutex"`),
	})

	// Kinds of build, each first of the trivial module, then of lockscope.
	type kind struct {
		name      string
		trivial   []string // in the trivial module
		lockscope []string // dir, then args
		dir       string
	}
	kinds := []kind{
		{"compile", []string{"build", "./lib"}, []string{"build", "./debugmutex/..."}, root},
		{"compile nolockscope", []string{"build", "./lib"}, []string{"build", "-tags", "nolockscope", "./debugmutex/..."}, root},
		{"link", []string{"build", "-o", os.DevNull, "."}, []string{"build", "-o", os.DevNull, "."}, user},
	}

	var (
		mu           sync.Mutex
		incomparable []string
		built        int
	)
	t.Run("pairs", func(t *testing.T) {
		for _, pair := range pairs {
			goos, goarch, ok := strings.Cut(pair, "/")
			if !ok {
				t.Fatalf("bad pair %q", pair)
			}
			t.Run(strings.ReplaceAll(pair, "/", "_"), func(t *testing.T) {
				t.Parallel()
				env := append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0",
					"GOFLAGS=-mod=mod -buildvcs=false")
				run := func(dir string, args ...string) (string, error) {
					cmd := exec.Command(goTool, args...)
					cmd.Dir = dir
					cmd.Env = env
					out, err := cmd.CombinedOutput()
					return string(out), err
				}
				for _, k := range kinds {
					if out, err := run(trivial, k.trivial...); err != nil {
						mu.Lock()
						incomparable = append(incomparable, fmt.Sprintf("%s (%s): plain sync does not build either: %s",
							pair, k.name, firstLine(out)))
						mu.Unlock()
						continue
					}
					if out, err := run(k.dir, k.lockscope...); err != nil {
						t.Errorf("%s: go %s: %v\n%s", k.name, strings.Join(k.lockscope, " "), err, out)
						continue
					}
					mu.Lock()
					built++
					mu.Unlock()
				}
			})
		}
	})
	sort.Strings(incomparable)
	t.Logf("%d pairs; %d builds of lockscope done; incomparable (where plain sync fails too):\n\t%s",
		len(pairs), built, strings.Join(incomparable, "\n\t"))
	if built < len(pairs) {
		t.Errorf("only %d builds done for %d pairs", built, len(pairs))
	}
}

const trivialLib = `package lib

import "sync"

var mu sync.Mutex

func Locked(f func()) { mu.Lock(); defer mu.Unlock(); f() }
`

// usesLocks uses Mutex and RWMutex through every method, so that the link
// pulls in all of lockscope's lock paths.
const usesLocks = `package main

import LOCKS

var (
	mu sync.Mutex
	rw sync.RWMutex
	n  int
)

func main() {
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			n++
			mu.Unlock()
			if mu.TryLock() {
				mu.Unlock()
			}
			rw.RLock()
			_ = n
			rw.RUnlock()
			rw.Lock()
			n++
			rw.Unlock()
			rw.RLocker().Lock()
			rw.RLocker().Unlock()
		}()
	}
	wg.Wait()
	println(n)
}
`

func writeModule(t *testing.T, path, lockscopeRoot string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	gomod := "module " + path + "\n\ngo 1.26\n"
	if lockscopeRoot != "" {
		gomod += "\nrequire github.com/lockscope/lockscope v0.0.0\n\nreplace github.com/lockscope/lockscope => " + lockscopeRoot + "\n"
		sum, err := os.ReadFile(filepath.Join(lockscopeRoot, "go.sum"))
		if err != nil {
			t.Fatal(err)
		}
		files["go.sum"] = string(sum)
	}
	files["go.mod"] = gomod
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	return s
}
