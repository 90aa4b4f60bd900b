package main

import (
	"strings"
	"testing"
)

// leaky's tests pass, and each leaves a lock behind in a goroutine that
// has exited, then ends long before any threshold: only the end of the
// test binary can tell. Package own has a TestMain of its own, plain has
// none, and ret's TestMain returns instead of calling os.Exit.
var leaky = map[string]string{
	"go.mod": "module example.com/leaky\n\ngo 1.22\n",
	"leak.go": `package leaky

import "sync"

// Leak locks mu in a goroutine that exits without unlocking it.
func Leak(mu *sync.Mutex) {
	done := make(chan struct{})
	go func() { mu.Lock(); close(done) }()
	<-done
}
`,
	"plain/plain_test.go": `package plain

import (
	"sync"
	"testing"
)

var plainMu sync.Mutex

func TestLeak(t *testing.T) {
	done := make(chan struct{})
	go func() { plainMu.Lock(); close(done) }()
	<-done
}
`,
	"own/own_test.go": `package own

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
)

var ownMu sync.Mutex

func TestMain(m *testing.M) {
	code := m.Run()
	os.Exit(code)
}

func TestLeak(t *testing.T) {
	done := make(chan struct{})
	go func() { ownMu.Lock(); close(done) }()
	<-done
	_, _, line, _ := runtime.Caller(0)
	fmt.Println("LINE", line)
}
`,
	"ret/ret_test.go": `package ret_test

import (
	"sync"
	"testing"
)

var retMu sync.Mutex

func TestMain(m *testing.M) { m.Run() }

func TestLeak(t *testing.T) {
	done := make(chan struct{})
	go func() { retMu.Lock(); close(done) }()
	<-done
}
`,
}

func TestEndOfTestBinaryReportsWhatItLeft(t *testing.T) {
	mod := t.TempDir()
	writeTree(t, mod, leaky)
	before := snapshot(t, mod)
	env := []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot}
	r := lockscope(t, mod, env, "test", "-count=1", "-v", "./...")
	if r.code != 0 {
		t.Fatalf("lockscope test: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, lock := range []string{"plain.plainMu", "own.ownMu", "ret_test.retMu"} {
		if !strings.Contains(r.stderr, "LOCKSCOPE: Mutex "+lock+" has been write-held") || !strings.Contains(r.stderr, "that goroutine has exited without unlocking it") {
			t.Errorf("the lock %s left by an exited goroutine is not reported at the end of its test binary:\n%s", lock, r.stderr)
		}
		if strings.Contains(r.stderr, "for at least 0s") {
			t.Errorf("a hold first seen at the end is said to be at least 0s old:\n%s", r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "lockscope: 3 problems: 3 leaked-lock") {
		t.Errorf("summary: want 3 leaked locks\n%s", r.stderr)
	}
	// The user's TestMain file keeps its positions.
	if !strings.Contains(r.stdout, "LINE 22\n") {
		t.Errorf("runtime.Caller in the rewritten TestMain file says another line:\n%s", r.stdout)
	}
	sameTree(t, before, snapshot(t, mod))
}

func TestShortThresholdIsMetInAShortTest(t *testing.T) {
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{
		"go.mod":  leaky["go.mod"],
		"leak.go": leaky["leak.go"],
		"short/short_test.go": `package short

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/leaky"
)

var shortMu sync.Mutex

// With a 100ms hold threshold the watchdog reports the leak while the
// test runs, well within the second its first run used to wait.
func TestLeakReportedWhileRunning(t *testing.T) {
	leaky.Leak(&shortMu)
	path := os.Getenv("LOCKSCOPE_REPORT_FILE")
	for deadline := time.Now().Add(900 * time.Millisecond); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if data, _ := os.ReadFile(path); strings.Contains(string(data), "leaked-lock") {
			return
		}
	}
	t.Fatal("no leaked-lock report within 900ms of a 100ms threshold")
}
`,
	})
	env := []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot, "LOCKSCOPE_HOLD_THRESHOLD=100ms"}
	r := lockscope(t, mod, env, "test", "-count=1", "./...")
	if r.code != 0 {
		t.Errorf("lockscope test: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// A TestMain that leaves m.Run to goleak.VerifyTestMain (which exits
// itself) still ends with the check: goleak gets a wrapper of m whose Run
// checks the end. goleak here is a stand-in with its API, by replace.
func TestEndCheckedUnderGoleakVerifyTestMain(t *testing.T) {
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{
		"go.mod":            "module example.com/gl\n\ngo 1.22\n\nrequire go.uber.org/goleak v1.3.0\n\nreplace go.uber.org/goleak => ./goleakstub\n",
		"goleakstub/go.mod": "module go.uber.org/goleak\n\ngo 1.20\n",
		"goleakstub/goleak.go": `package goleak

import (
	"fmt"
	"os"
)

type TestingM interface{ Run() int }

type Option interface{}

func VerifyTestMain(m TestingM, options ...Option) {
	code := m.Run()
	fmt.Println("GOLEAK CHECKED")
	os.Exit(code)
}
`,
		"gl/gl_test.go": `package gl

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	leakcheck "go.uber.org/goleak"
)

var glMu sync.Mutex

func TestMain(m *testing.M) {
	leakcheck.VerifyTestMain(m)
}

func TestLeak(t *testing.T) {
	done := make(chan struct{})
	go func() { glMu.Lock(); close(done) }()
	<-done
	_, _, line, _ := runtime.Caller(0)
	fmt.Println("LINE", line)
}
`,
	})
	before := snapshot(t, mod)
	env := []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot}
	r := lockscope(t, mod, env, "test", "-count=1", "-v", "./gl")
	if r.code != 0 {
		t.Fatalf("lockscope test: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "LOCKSCOPE: Mutex gl.glMu has been write-held") {
		t.Errorf("the lock left by an exited goroutine is not reported at the end of the test binary:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "GOLEAK CHECKED") {
		t.Errorf("goleak.VerifyTestMain did not run to its end:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "LINE 22\n") {
		t.Errorf("runtime.Caller in the rewritten TestMain file says another line:\n%s", r.stdout)
	}
	sameTree(t, before, snapshot(t, mod))
}

// An Example whose output is its stack down to main.main (as conc's panics
// package has) would fail with a TestMain frame added below testing's
// (*M).Run: such a package gets none, says so, and passes as under go test.
func TestNoTestMainAddedWhereTestsNameMainMain(t *testing.T) {
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{
		"go.mod": "module example.com/stk\n\ngo 1.22\n",
		"stk/stk_test.go": `package stk

import (
	"fmt"
	"runtime"
	"sync"
)

var mu sync.Mutex

func ExampleCallers() {
	mu.Lock()
	defer mu.Unlock()
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])
	for {
		f, more := frames.Next()
		fmt.Println(f.Function)
		if !more {
			break
		}
	}
	// Output:
	// example.com/stk/stk.ExampleCallers
	// testing.runExample
	// testing.runExamples
	// testing.(*M).Run
	// main.main
	// runtime.main
	// runtime.goexit
}
`,
	})
	env := []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot}
	if code, out := plainGo(t, mod, "test", "-count=1", "./stk"); code != 0 {
		t.Fatalf("plain go test fails (exit %d), so the test proves nothing:\n%s", code, out)
	}
	r := lockscope(t, mod, env, "test", "-count=1", "./stk")
	if r.code != 0 {
		t.Fatalf("lockscope test: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "stk: its tests name the frames below TestMain (main.main), so lockscope adds none") {
		t.Errorf("no note that the end of stk's test binary is not checked:\n%s", r.stderr)
	}
}
