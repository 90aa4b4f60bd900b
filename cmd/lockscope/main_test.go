package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lockscope/lockscope/cmd/lockscope/internal/gotool"
)

// lockscopeBin is the lockscope command built for the end-to-end tests.
var lockscopeBin string

// repoRoot is the lockscope checkout these tests run in, found from the
// test's working directory (cmd/lockscope).
var repoRoot string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if p, err := gotool.ModulePath(filepath.Join(root, "go.mod")); err != nil || p != gotool.Module {
		fmt.Fprintf(os.Stderr, "%s is not the lockscope checkout (%q, %v)\n", root, p, err)
		return 1
	}
	repoRoot = root
	dir, err := os.MkdirTemp("", "lockscope-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	lockscopeBin = filepath.Join(dir, "lockscope")
	return m.Run()
}

// buildOnce builds lockscopeBin the first time an end-to-end test needs it
// (a fuzzing worker never does).
var buildOnce = sync.OnceValue(func() error {
	if out, err := exec.Command("go", "build", "-o", lockscopeBin, ".").CombinedOutput(); err != nil {
		return fmt.Errorf("building lockscope: %v\n%s", err, out)
	}
	return nil
})

// result is what one lockscope run did.
type result struct {
	code           int
	stdout, stderr string
}

// lockscope runs the built command in dir with extra environment variables.
func lockscope(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	if err := buildOnce(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(lockscopeBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running lockscope %s: %v", strings.Join(args, " "), err)
	}
	// A user mistake must never produce a Go stack trace.
	if strings.Contains(r.stderr, "goroutine ") && strings.Contains(r.stderr, "panic") {
		t.Fatalf("lockscope %s panicked:\n%s", strings.Join(args, " "), r.stderr)
	}
	return r
}

// writeTree creates files (slash-separated path -> content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o666); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot records every file under dir (content and mode), to check
// that a command changed nothing.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			files[rel] = "symlink -> " + target
		case fi.IsDir():
			files[rel+"/"] = fi.Mode().String()
		default:
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files[rel] = fi.Mode().String() + "\n" + string(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func sameTree(t *testing.T, before, after map[string]string) {
	t.Helper()
	for name, b := range before {
		if a, ok := after[name]; !ok {
			t.Errorf("%s disappeared", name)
		} else if a != b {
			t.Errorf("%s changed:\nbefore: %q\nafter:  %q", name, b, a)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s appeared", name)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	dir := t.TempDir()
	r := lockscope(t, dir, nil, "help")
	if r.code != 0 || !strings.Contains(r.stdout, "lockscope test ./...") {
		t.Errorf("lockscope help: exit %d, stdout:\n%s", r.code, r.stdout)
	}
	r = lockscope(t, dir, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "lockscope ") || !strings.Contains(r.stdout, "go1.") {
		t.Errorf("lockscope version: exit %d, stdout %q", r.code, r.stdout)
	}
	r = lockscope(t, dir, nil)
	if r.code != 2 || !strings.Contains(r.stderr, "Commands:") {
		t.Errorf("lockscope with no command: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = lockscope(t, dir, nil, "frobnicate")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	dir := t.TempDir()
	for _, cmd := range []string{"test", "build", "run", "vet", "swap", "unswap", "report", "top"} {
		r := lockscope(t, dir, nil, cmd, "-h")
		if r.code != 0 || !strings.Contains(r.stderr, "usage: lockscope") || !strings.Contains(r.stderr, cmd) {
			t.Errorf("lockscope %s -h: exit %d, stderr:\n%s", cmd, r.code, r.stderr)
		}
		r = lockscope(t, dir, nil, "help", cmd)
		if r.code != 0 || !strings.Contains(r.stdout, "usage: lockscope") {
			t.Errorf("lockscope help %s: exit %d, stdout:\n%s", cmd, r.code, r.stdout)
		}
	}
}

func TestBadFlagIsUsageError(t *testing.T) {
	dir := t.TempDir()
	for _, cmd := range []string{"swap", "unswap", "report", "top"} {
		r := lockscope(t, dir, nil, cmd, "-no-such-flag")
		if r.code != 2 || !strings.Contains(r.stderr, "flag provided but not defined") {
			t.Errorf("lockscope %s -no-such-flag: exit %d, stderr:\n%s", cmd, r.code, r.stderr)
		}
	}
}
