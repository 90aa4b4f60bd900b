package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildFailureIsSaid(t *testing.T) {
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{
		"go.mod":       "module example.com/broken\n\ngo 1.22\n",
		"a.go":         "package a\n\nimport \"sync\"\n\nvar Mu sync.Mutex\n",
		"a_test.go":    "package a\n\nimport \"testing\"\n\nfunc TestX(t *testing.T) { undefined() }\n",
		"ok/b.go":      "package ok\n",
		"ok/b_test.go": "package ok\n\nimport \"testing\"\n\nfunc TestY(t *testing.T) {}\n",
	})
	env := []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot}
	r := lockscope(t, mod, env, "test", "-count=1", "./...")
	if r.code == 0 {
		t.Fatalf("lockscope test of a package that does not build: exit 0\n%s%s", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "lockscope: the build failed: 1 package did not build, so its tests did not run") {
		t.Errorf("the build failure is not said:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "lockscope: no lock problems reported\n") {
		t.Errorf("a failed build is summed up as no lock problems:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "lockscope: go test: building and testing with debugmutex") {
		t.Errorf("no line says what lockscope test is doing while it builds:\n%s", r.stderr)
	}
}

func TestReportFileOfACleanRun(t *testing.T) {
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{
		"go.mod":    "module example.com/clean\n\ngo 1.22\n",
		"a.go":      "package a\n\nimport \"sync\"\n\nvar Mu sync.Mutex\n",
		"a_test.go": "package a\n\nimport \"testing\"\n\nfunc TestX(t *testing.T) { Mu.Lock(); Mu.Unlock() }\n",
	})
	file := filepath.Join(t.TempDir(), "reports.jsonl")
	env := []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot, "LOCKSCOPE_REPORT_FILE=" + file}
	// The CI idiom: lockscope test ... && lockscope report FILE.
	r := lockscope(t, mod, env, "test", "-count=1", "./...")
	if r.code != 0 || !strings.Contains(r.stderr, "lockscope: no lock problems reported\n") {
		t.Fatalf("lockscope test of a clean module: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = lockscope(t, mod, nil, "report", file)
	if r.code != 0 || !strings.Contains(r.stdout, "lockscope: no problems (0 reports read)") {
		t.Errorf("lockscope report on a clean run's file: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A file no run wrote is not a clean run.
	missing := filepath.Join(t.TempDir(), "never.jsonl")
	r = lockscope(t, mod, nil, "report", missing)
	if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "never.jsonl does not exist") {
		t.Errorf("lockscope report on a missing file: exit %d, want 2 and no summary\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("lockscope report created the file it was asked to read")
	}
}
