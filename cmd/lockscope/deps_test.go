package main

import (
	"archive/zip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// fileProxy writes a module proxy (GOPROXY=file://dir) serving each module
// of mods (path@version -> files) and returns its URL, followed by the
// download cache of this machine's module cache, which serves lockscope's
// own requirements: no network is needed.
func fileProxy(t *testing.T, mods map[string]map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for mv, files := range mods {
		path, version, _ := strings.Cut(mv, "@")
		at := filepath.Join(dir, filepath.FromSlash(path), "@v")
		if err := os.MkdirAll(at, 0o777); err != nil {
			t.Fatal(err)
		}
		write := func(name, content string) {
			if err := os.WriteFile(filepath.Join(at, name), []byte(content), 0o666); err != nil {
				t.Fatal(err)
			}
		}
		write(version+".info", `{"Version":"`+version+`","Time":"2026-01-01T00:00:00Z"}`)
		write(version+".mod", files["go.mod"])
		write("list", version+"\n")
		f, err := os.Create(filepath.Join(at, version+".zip"))
		if err != nil {
			t.Fatal(err)
		}
		zw := zip.NewWriter(f)
		names := make([]string, 0, len(files))
		for name := range files {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			w, err := zw.Create(mv + "/" + name)
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte(files[name]))
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	return "file://" + dir + ",file://" + filepath.Join(strings.TrimSpace(string(out)), "cache", "download")
}

// depsEnv is the environment of a run against the proxy: a module cache of
// its own (writable, so that the test can remove it) and a cache of
// swapped copies of its own.
func depsEnv(t *testing.T, proxy string) (env []string, modcache string) {
	t.Helper()
	modcache = t.TempDir()
	return []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot, "GOPROXY=" + proxy, "GOSUMDB=off", "GOFLAGS=-modcacherw",
		"GOMODCACHE=" + modcache, "LOCKSCOPE_DEPS_CACHE=" + t.TempDir()}, modcache
}

// store is a dependency module from the proxy: a lock of its own, held
// around a callback (as caches call their loaders, and pools their
// constructors).
var store = map[string]string{
	"go.mod": "module example.com/store\n\ngo 1.22\n",
	"store.go": `package store

import (
	"fmt"
	"sync"
)

var mu sync.Mutex

// With calls f holding the store's lock.
func With(f func()) { mu.Lock(); defer mu.Unlock(); call(f) }

// Kind says what the store's lock is.
func Kind() string { return fmt.Sprintf("%T", mu) }
`,
}

// callStore is a file of the store that does not import sync, and so is
// not changed in the copy; its frames still name the module cache.
var callStore = "package store\n\n// call calls f.\nfunc call(f func()) { f() }\n"

// service uses the store and a local module, and takes its own lock and
// the store's in both orders, one after the other: a lock-order inversion
// between two modules, which deadlocks when the two run at once.
var service = map[string]string{
	"go.mod": "module example.com/service\n\ngo 1.22\n\nrequire (\n\texample.com/store v1.0.0\n\texample.com/local v0.0.0\n)\n\nreplace example.com/local => ../local\n",
	"service.go": `package service

import (
	"sync"

	"example.com/store"
)

var accounts sync.Mutex

// Save takes accounts, then the store's lock.
func Save() { accounts.Lock(); store.With(func() {}); accounts.Unlock() }

// Sync takes the store's lock, then accounts.
func Sync() { store.With(func() { accounts.Lock(); accounts.Unlock() }) }
`,
	"service_test.go": `package service

import (
	"fmt"
	"testing"

	"example.com/local"
	"example.com/store"
)

func TestKinds(t *testing.T) { fmt.Printf("KINDS %s %s\n", store.Kind(), local.Kind()) }

func TestSaveThenSync(t *testing.T) { Save(); Sync() }
`,
	// The same two orders at once: a real deadlock.
	"hang/hang_test.go": `package hang

import (
	"sync"
	"testing"

	"example.com/store"
)

var accounts sync.Mutex

func TestHang(t *testing.T) {
	held := make(chan bool)
	go store.With(func() { held <- true; accounts.Lock(); accounts.Unlock() })
	accounts.Lock()
	<-held
	store.With(func() {})
	accounts.Unlock()
}
`,
}

var local = map[string]string{
	"go.mod":   "module example.com/local\n\ngo 1.22\n",
	"local.go": "package local\n\nimport (\n\t\"fmt\"\n\t\"sync\"\n)\n\nvar mu sync.RWMutex\n\nfunc Kind() string { return fmt.Sprintf(\"%T\", mu) }\n",
}

func TestDepsSwapsDependencyModules(t *testing.T) {
	root := t.TempDir()
	writeTree(t, filepath.Join(root, "service"), service)
	writeTree(t, filepath.Join(root, "local"), local)
	withCall := map[string]string{"call.go": callStore}
	for k, v := range store {
		withCall[k] = v
	}
	env, modcache := depsEnv(t, fileProxy(t, map[string]map[string]string{"example.com/store@v1.0.0": withCall}))
	dir := filepath.Join(root, "service")
	before := snapshot(t, root)

	// Without -deps, as before: the dependencies keep sync, and the
	// inversion is not seen.
	r := lockscope(t, dir, env, "test", "-count=1", "-v", ".")
	if r.code != 0 || !strings.Contains(r.stdout, "KINDS sync.Mutex sync.RWMutex") {
		t.Fatalf("without -deps: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "lock-order") {
		t.Errorf("without -deps, a lock-order report through a lock that is sync's:\n%s", r.stderr)
	}

	// -deps=all: both dependencies' locks are lockscope's, the inversion
	// between the service's lock and the store's is found, with both
	// modules' locks named by package.
	r = lockscope(t, dir, env, "-v", "test", "-deps=all", "-count=1", "-v", ".")
	if r.code != 0 || !strings.Contains(r.stdout, "KINDS debugmutex.Mutex debugmutex.RWMutex") {
		t.Fatalf("-deps=all: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"lockscope: debugmutex in module example.com/store@v1.0.0 (1 file)\n",
		"lockscope: debugmutex in module example.com/local@v0.0.0 (1 file)\n",
		"replaces sync in 2 files of example.com/service and 2 files of 2 dependency modules",
		"LOCKSCOPE: potential deadlock: lock-order inversion",
		"store.mu", "service.accounts",
		// Two packages' locks: told apart by their classes.
		"store.mu (Mutex #2, class example.com/store.mu)",
		"lockscope: problems by module of their locks: example.com/service 1, example.com/store 1\n",
		// -v's list of what keeps sync: nothing, and not because no other module imports it.
		"lockscope: every package that imports sync is in the main module or a swapped -deps module\n",
		// Frames of the store name its file in the module cache, not the copy.
		filepath.Join(modcache, "example.com", "store@v1.0.0", "store.go") + ":11",
		filepath.Join(modcache, "example.com", "store@v1.0.0", "call.go") + ":4", // a file the copy did not change
	} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("-deps=all: the output lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}

	// The two orders at once hang (until go test's -timeout); with -deps
	// the deadlock is reported as it closes, naming both modules' locks.
	r = lockscope(t, dir, env, "test", "-deps=all", "-count=1", "-timeout=10s", "./hang")
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "LOCKSCOPE: deadlock") {
		t.Errorf("-deps=all, a deadlock through the store's lock: exit %d, want the deadlock reported\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"store.mu", "hang.accounts", "example.com/store.With"} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("the deadlock report does not name %s:\n%s%s", want, r.stdout, r.stderr)
		}
	}

	// A second run reuses the copy of the module version, and says so.
	r = lockscope(t, dir, env, "-v", "test", "-deps=all", "-count=1", "-run", "TestKinds", ".")
	if r.code != 0 || !strings.Contains(r.stderr, "module example.com/store@v1.0.0 (1 file, copy cached)") {
		t.Errorf("second run: exit %d, want the cached copy used\n%s", r.code, r.stderr)
	}

	// A pattern picks modules by path.
	r = lockscope(t, dir, env, "-deps=example.com/loc...", "test", "-count=1", "-v", "-run", "TestKinds", ".")
	if r.code != 0 || !strings.Contains(r.stdout, "KINDS sync.Mutex debugmutex.RWMutex") {
		t.Errorf("-deps=example.com/loc...: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	sameTree(t, before, snapshot(t, root))

	r = lockscope(t, dir, env, "test", "-deps=", "-count=1", ".")
	if r.code != 0 {
		t.Errorf("-deps= (empty, as not given): exit %d\n%s", r.code, r.stderr)
	}
	r = lockscope(t, dir, env, "test", "-deps=a b", ".")
	if r.code != 2 || !strings.Contains(r.stderr, "want all, or module path patterns") {
		t.Errorf("-deps with a bad pattern: exit %d, want 2 and why\n%s", r.code, r.stderr)
	}
}

func TestDepsModuleThatDoesNotBuildSwappedKeepsSync(t *testing.T) {
	root := t.TempDir()
	// handler hands its lock to strict, which wants a sync one: swapped
	// alone (strict is not in -deps), handler does not build.
	writeTree(t, root, map[string]string{
		"strict/go.mod":    "module example.com/strict\n\ngo 1.22\n",
		"strict/strict.go": "package strict\n\nimport \"sync\"\n\n// Use wants a sync lock.\nfunc Use(m *sync.Mutex) { m.Lock(); m.Unlock() }\n",
		"handler/go.mod":   "module example.com/handler\n\ngo 1.22\n\nrequire example.com/strict v0.0.0\n\nreplace example.com/strict => ../strict\n",
		"handler/handler.go": "package handler\n\nimport (\n\t\"sync\"\n\n\t\"example.com/strict\"\n)\n\nvar mu sync.Mutex\n\n" +
			"func Handle() { strict.Use(&mu) }\n",
		"app/go.mod": "module example.com/app\n\ngo 1.22\n\nrequire (\n\texample.com/handler v0.0.0\n\texample.com/strict v0.0.0\n)\n\n" +
			"replace example.com/handler => ../handler\n\nreplace example.com/strict => ../strict\n",
		"app/app_test.go": "package app\n\nimport (\n\t\"testing\"\n\n\t\"example.com/handler\"\n)\n\nfunc TestHandle(t *testing.T) { handler.Handle() }\n",
	})
	env := []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot, "LOCKSCOPE_DEPS_CACHE=" + t.TempDir()}
	r := lockscope(t, filepath.Join(root, "app"), env, "test", "-deps=example.com/handler", "-count=1", ".")
	if r.code != 0 {
		t.Fatalf("exit %d, want the run to go on with handler on sync\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "lockscope: -deps: example.com/handler@v0.0.0 does not build with debugmutex, so it keeps sync:") ||
		!strings.Contains(r.stderr, "cannot use &mu") {
		t.Errorf("the module that does not build swapped is not named with why:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "replaces sync in 0 files of example.com/app; other modules keep sync") {
		t.Errorf("the summary counts a module that was put back on sync:\n%s", r.stderr)
	}
	// With strict swapped too, both build.
	r = lockscope(t, filepath.Join(root, "app"), env, "test", "-deps=all", "-count=1", ".")
	if r.code != 0 || !strings.Contains(r.stderr, "and 2 files of 2 dependency modules") {
		t.Errorf("-deps=all: exit %d\n%s", r.code, r.stderr)
	}
}

func TestDepsWithAVendorDirectory(t *testing.T) {
	root := t.TempDir()
	writeTree(t, filepath.Join(root, "local"), local)
	writeTree(t, filepath.Join(root, "app"), map[string]string{
		"go.mod":      "module example.com/app\n\ngo 1.22\n\nrequire example.com/local v0.0.0\n\nreplace example.com/local => ../local\n",
		"app_test.go": "package app\n\nimport (\n\t\"fmt\"\n\t\"testing\"\n\n\t\"example.com/local\"\n)\n\nfunc TestKind(t *testing.T) { fmt.Println(\"KIND\", local.Kind()) }\n",
	})
	dir := filepath.Join(root, "app")
	if out, err := exec.Command("go", "-C", dir, "mod", "vendor").CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor: %v\n%s", err, out)
	}
	before := snapshot(t, root)
	env := []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot, "LOCKSCOPE_DEPS_CACHE=" + t.TempDir()}
	// With a vendor directory and no -mod, the build reads the module
	// graph (-mod=mod), and -deps swaps as without one.
	r := lockscope(t, dir, env, "test", "-deps=all", "-count=1", "-v", ".")
	if r.code != 0 || !strings.Contains(r.stdout, "KIND debugmutex.RWMutex") {
		t.Errorf("vendor directory, -deps=all: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// -mod=vendor is refused with what to do, in both spellings.
	for _, args := range [][]string{{"test", "-mod=vendor", "."}, {"test", "-mod", "vendor", "."}} {
		r = lockscope(t, dir, env, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "-mod=vendor is not supported") || !strings.Contains(r.stderr, "Leave -mod out") {
			t.Errorf("lockscope %s: exit %d, want 1 and why\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	sameTree(t, before, snapshot(t, root))
}
