package autoprofile

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/profiler"
	"github.com/lockscope/lockscope/report"
)

// The tests run this test binary again as a program that only swapped its
// locks and imported autoprofile, configured by the environment; childMode
// says what that program does.
const childMode = "LOCKSCOPE_AUTOPROFILE_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childMode); mode != "" {
		child(mode)
		return
	}
	os.Exit(m.Run())
}

// child is the program: one contended acquisition of "child.mu", then:
//
//	signal: hold "child.held", say "ready", and wait forever (to be killed)
//	stop:   call Stop while holding "child.stop", then return from main
//	exit:   return from main (os.Exit(0)) without calling Stop
func child(mode string) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "child.mu")
	mu.Lock()
	done := make(chan struct{})
	go func() { mu.Lock(); mu.Unlock(); close(done) }()
	for !waiting("child.mu") {
		<-time.After(time.Millisecond) // polling for the waiter to block
	}
	mu.Unlock()
	<-done

	switch mode {
	case "signal":
		var held debugmutex.Mutex
		debugmutex.SetName(&held, "child.held")
		held.Lock()
		fmt.Println("ready")
		os.Stdin.Read(make([]byte, 1)) // until killed
	case "stop":
		var held debugmutex.Mutex
		debugmutex.SetName(&held, "child.stop")
		held.Lock()
		if err := Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		held.Unlock()
	case "exit":
	case "exiting":
		os.Exit(inspect.Exiting(0))
	case "reportexit":
		// A recursive read lock, reported; LOCKSCOPE_ON_REPORT=exit ends
		// the program with it.
		var b debugmutex.RWMutex
		debugmutex.SetName(&b, "child.b")
		b.RLock()
		b.RLock()
		b.RUnlock()
		b.RUnlock()
		fmt.Fprintln(os.Stderr, "not ended by the report")
		os.Exit(4)
	}
	os.Exit(0)
}

func waiting(name string) bool {
	for _, w := range inspect.Snapshot().Waiting {
		if w.Lock.Name == name {
			return true
		}
	}
	return false
}

// startChild starts the child program writing profiles to a new directory.
func startChild(t *testing.T, mode string, env ...string) (cmd *exec.Cmd, dir string, stdout *bufio.Reader) {
	t.Helper()
	dir = t.TempDir()
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childMode+"="+mode, EnvDir+"="+dir, EnvInterval+"=1h", "LOCKSCOPE_QUIET=1"), env...)
	cmd.Stderr = os.Stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, dir, bufio.NewReader(pipe)
}

// childProfile reads profile name written by the child.
func childProfile(t *testing.T, dir string, pid int, name string) *profile.Profile {
	t.Helper()
	path := childPath(dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		entries, _ := os.ReadDir(dir)
		t.Fatalf("%v (directory: %v)", err, entries)
	}
	p, err := profile.ParseData(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return p
}

// childPath is where the child writes profile name: a test binary (this
// one, run as the child) names its files by package.
func childPath(dir, name string) string {
	return filepath.Join(dir, "github.com_lockscope_lockscope_profiler_autoprofile.test-"+name+".pb.gz")
}

func count(p *profile.Profile, lock string) int64 {
	var n int64
	for _, s := range p.Sample {
		if s.Label["lock"][0] == lock {
			n += s.Value[0]
		}
	}
	return n
}

func TestSIGTERMWritesTheProfilesThenEndsTheProgram(t *testing.T) {
	cmd, dir, out := startChild(t, "signal")
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !exit.Sys().(syscall.WaitStatus).Signaled() || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("child ended with %v, want killed by SIGTERM as without autoprofile", err)
	}
	// The periodic writes (interval 1h, first ones at 100ms, 300ms, ...)
	// all predate the signal: a snapshot taken after it was written by the
	// signal handler.
	held := childProfile(t, dir, cmd.Process.Pid, profiler.Held)
	if held.TimeNanos < sent.UnixNano() {
		t.Errorf("the held profile was taken %v before the signal: not written on SIGTERM", time.Duration(sent.UnixNano()-held.TimeNanos))
	}
	if n := count(held, "child.held"); n != 1 {
		t.Errorf("held profile has %d holds of child.held, want 1", n)
	}
	if n := count(childProfile(t, dir, cmd.Process.Pid, profiler.Contention), "child.mu"); n != 1 {
		t.Errorf("contention profile has %d contentions of child.mu, want 1", n)
	}
}

func TestStopWritesTheProfilesOnTheWayOut(t *testing.T) {
	cmd, dir, _ := startChild(t, "stop")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	// child.stop is held only around the call to Stop.
	if n := count(childProfile(t, dir, cmd.Process.Pid, profiler.Held), "child.stop"); n != 1 {
		t.Errorf("held profile has %d holds of child.stop, want 1: Stop did not write", n)
	}
	if n := count(childProfile(t, dir, cmd.Process.Pid, profiler.Contention), "child.mu"); n != 1 {
		t.Errorf("contention profile has %d contentions of child.mu, want 1", n)
	}
}

func TestAProgramThatJustExitsStillLeavesValidProfiles(t *testing.T) {
	cmd, dir, _ := startChild(t, "exit")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	// Written at start (and maybe later): every file is there and whole;
	// what happened since the last write is lost, as documented.
	for _, name := range profiler.Names() {
		childProfile(t, dir, cmd.Process.Pid, name)
	}
	// Returning from main during a periodic write (a loaded machine makes
	// the child slow enough to meet the one at 100ms) leaves that write's
	// hidden temporary file, and nothing else.
	entries, _ := os.ReadDir(dir)
	want := map[string]bool{}
	for _, name := range profiler.Names() {
		want[filepath.Base(childPath(dir, name))] = true
	}
	for _, e := range entries {
		if want[e.Name()] {
			continue
		}
		if base, _, ok := strings.Cut(strings.TrimPrefix(e.Name(), "."), ".tmp"); !ok || !strings.HasPrefix(e.Name(), ".") || !want[base] {
			t.Errorf("directory has %s: want only the profiles and, if the program ended during a write, that write's hidden temporary file", e.Name())
		}
	}
}

func TestExitingWritesTheLastProfiles(t *testing.T) {
	cmd, dir, _ := startChild(t, "exiting")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	// The contention came after the first write (at start) and long before
	// the second (100ms later): only the write in Exiting has it.
	if n := count(childProfile(t, dir, cmd.Process.Pid, profiler.Contention), "child.mu"); n != 1 {
		t.Errorf("contention profile has %d contentions of child.mu, want 1: Exiting did not write", n)
	}
}

func TestAReportThatEndsTheProgramWritesTheProfilesFirst(t *testing.T) {
	cmd, dir, _ := startChild(t, "reportexit", "LOCKSCOPE_ON_REPORT=exit")
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != report.ExitCode {
		t.Fatalf("child: %v, want exit status %d (ended by the report)", err, report.ExitCode)
	}
	if n := count(childProfile(t, dir, cmd.Process.Pid, profiler.Contention), "child.mu"); n != 1 {
		t.Errorf("contention profile has %d contentions of child.mu, want 1: not written before the exit", n)
	}
	// The held snapshot is taken at the report, child.b held.
	if n := count(childProfile(t, dir, cmd.Process.Pid, profiler.Held), "child.b"); n == 0 {
		t.Errorf("held profile has no hold of child.b: not written at the report")
	}
}

func TestNothingHappensWithoutTheEnvironment(t *testing.T) {
	if os.Getenv(EnvDir) != "" {
		t.Fatalf("%s is set in the test's environment", EnvDir)
	}
	if Dir() != "" || Path(profiler.Hold) != "" || Stop() != nil {
		t.Errorf("autoprofile is writing to %q without %s", Dir(), EnvDir)
	}
}
