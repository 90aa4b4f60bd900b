//go:build unix

package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// leftBehind returns the lockscope temporary directories in dir.
func leftBehind(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "lockscope-") {
			left = append(left, e.Name())
		}
	}
	return left
}

// startLockscope starts the built command in dir with its standard output
// and error on one pipe, which the caller reads.
// It runs in a process group of its own, as a terminal's job does. A
// minute is the most it may take: then it is killed.
func startLockscope(t *testing.T, dir string, env []string, args ...string) (*exec.Cmd, *os.File) {
	t.Helper()
	if err := buildOnce(); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(lockscopeBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	pid := cmd.Process.Pid
	stuck := time.AfterFunc(time.Minute, func() { syscall.Kill(-pid, syscall.SIGKILL) })
	t.Cleanup(func() { stuck.Stop() })
	return cmd, r
}

func TestTempDirRemovedOnSIGPIPE(t *testing.T) {
	tmp := t.TempDir()
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{
		"go.mod": "module example.com/pipe\n\ngo 1.22\n",
		"a.go":   "package a\n\nimport (\n\t\"fmt\"\n\t\"sync\"\n)\n\nvar Mu sync.Mutex\n\nfunc Show() { fmt.Println(Mu) }\n",
	})
	env := []string{"TMPDIR=" + tmp, "LOCKSCOPE_MODULE_DIR=" + repoRoot, "GOFLAGS=-count=1"}
	// lockscope -v vet . 2>&1 | head -1: the reader goes away after the
	// first line, before go vet has said anything.
	cmd, r := startLockscope(t, mod, env, "-v", "vet", ".")
	line, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if err != nil {
		t.Fatalf("reading the first line: %v", err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("lockscope vet with a finding: %v, want an exit status (first line %q)", err, line)
	}
	if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
		t.Errorf("lockscope was killed by %v", ws.Signal())
	}
	if left := leftBehind(t, tmp); len(left) > 0 {
		t.Errorf("temporary directories left behind after SIGPIPE: %v", left)
	}
}

func TestTempDirRemovedOnSIGINT(t *testing.T) {
	tmp := t.TempDir()
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{
		"go.mod": "module example.com/intr\n\ngo 1.22\n",
		"a.go":   "package a\n\nimport \"sync\"\n\nvar Mu sync.Mutex\n",
		"a_test.go": `package a

import (
	"fmt"
	"testing"
)

func TestWaitsForever(t *testing.T) {
	fmt.Println("READY")
	select {}
}
`,
	})
	env := []string{"TMPDIR=" + tmp, "LOCKSCOPE_MODULE_DIR=" + repoRoot}
	cmd, r := startLockscope(t, mod, env, "test", "-count=1", "-v", ".")
	defer r.Close()
	br := bufio.NewReader(r)
	var out strings.Builder
	for !strings.Contains(out.String(), "READY\n") {
		line, err := br.ReadString('\n')
		out.WriteString(line)
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the test never started:\n%s", out.String())
		}
	}
	// ^C at a terminal: SIGINT to every process of the job (lockscope,
	// go test, the test binary).
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rest, _ := bufio.NewReader(br).ReadString(0)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signaled() {
		t.Errorf("lockscope after SIGINT: %v, want an exit status of its own\n%s%s", err, out.String(), rest)
	}
	if left := leftBehind(t, tmp); len(left) > 0 {
		t.Errorf("temporary directories left behind after SIGINT: %v", left)
	}
}
