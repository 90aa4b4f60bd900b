package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/cmd/lockscope/internal/gotool"
)

// TestTestWritesProfilesPerBinary runs lockscope test with
// LOCKSCOPE_PROFILE_DIR on a module at go 1.21 (so the profiler and pprof
// are lowered to it too) with one contended lock in each of two packages.
func TestTestWritesProfilesPerBinary(t *testing.T) {
	mod := t.TempDir()
	contend := func(pkg, lock string) string {
		return `package ` + pkg + `

import (
	"sync"
	"testing"
	"time"
)

var ` + lock + ` sync.Mutex

func TestContend(t *testing.T) {
	` + lock + `.Lock()
	done := make(chan struct{})
	go func() { ` + lock + `.Lock(); ` + lock + `.Unlock(); close(done) }()
	time.Sleep(20 * time.Millisecond) // the goroutine waits meanwhile
	` + lock + `.Unlock()
	<-done
}
`
	}
	writeTree(t, mod, map[string]string{
		"go.mod":          "module example.com/prof\n\ngo 1.21\n",
		"a_test.go":       contend("prof", "hot"),
		"sub/b_test.go":   contend("sub", "warm"),
		"sub/own_test.go": "package sub\n\nimport (\n\t\"os\"\n\t\"testing\"\n)\n\nfunc TestMain(m *testing.M) { os.Exit(m.Run()) }\n",
	})
	before := snapshot(t, mod)
	dir := filepath.Join(t.TempDir(), "profiles")
	gocache, err := gotool.Output(mod, nil, "env", "GOCACHE")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot, "LOCKSCOPE_PROFILE_DIR=" + dir,
		"XDG_CACHE_HOME=" + t.TempDir(), "GOCACHE=" + strings.TrimSpace(string(gocache))}
	r := lockscope(t, mod, env, "test", "-count=1", "./...")
	if r.code != 0 {
		t.Fatalf("lockscope test: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "note:") {
		t.Errorf("the go line was raised:\n%s", r.stderr)
	}
	for bin, lock := range map[string]string{"example.com_prof.test": "prof.hot", "example.com_prof_sub.test": "sub.warm"} {
		path := filepath.Join(dir, bin+"-contention.pb.gz")
		data, err := os.ReadFile(path)
		if err != nil {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("%v (the directory holds %v)", err, entries)
		}
		p, err := profile.ParseData(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.CheckValid(); err != nil {
			t.Fatal(err)
		}
		n := int64(0)
		for _, s := range p.Sample {
			if s.Label["lock"][0] == lock {
				n += s.Value[0]
			}
		}
		if n != 1 {
			t.Errorf("%s: %d contentions of %s, want 1 (the profile written at the end of the binary)", path, n, lock)
		}
	}
	if !strings.Contains(r.stderr, "lockscope: 2 test binaries wrote lock profiles to ") || !strings.Contains(r.stderr, "the most contended locks:") ||
		!strings.Contains(r.stderr, "in 1 contention of prof.hot (example.com_prof.test)") || !strings.Contains(r.stderr, "in 1 contention of sub.warm (example.com_prof_sub.test)") {
		t.Errorf("no summary of the most contended locks:\n%s", r.stderr)
	}
	sameTree(t, before, snapshot(t, mod))
}
