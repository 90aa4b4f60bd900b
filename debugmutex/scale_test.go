package debugmutex_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
)

// Detection at service scale: 200,000 live goroutines each holding a lock
// of its own (more than the first version's 64K-slot goroutine table), and
// then a real deadlock and a lock-order inversion among the goroutines
// started last. Both must still be reported: a full table may make lockscope
// stop tracking new goroutines' statistics, but never blind it to a deadlock
// (DESIGN.md, "Never wrong").
//
// The goroutines live in a child process (this test binary run again), so
// that neither their memory nor what they leave in lockscope's tables
// reaches the tests that run after this one.

// scaleGoroutines is how many goroutines hold a lock each: 200,000, or
// 70,000 (still more than 65,536) under -short and -race (the race detector
// needs ~20 KiB per goroutine: 200,000 would take 4 GiB).
func scaleGoroutines() int {
	if testing.Short() || scaleRace() {
		return 70_000
	}
	return 200_000
}

func scaleRace() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// reexecEnv, set in a child's environment, names the test the child runs.
const reexecEnv = "LOCKSCOPE_TEST_REEXEC"

// inReexec says whether this process is a child started by reexecTest for test.
func inReexec(test string) bool { return os.Getenv(reexecEnv) == test }

// reexecTest runs test (this very test function) in a child process with env
// added, and returns its combined output and error.
func reexecTest(t *testing.T, test string, env ...string) (string, error) {
	t.Helper()
	args := []string{"-test.run=^" + test + "$", "-test.v", "-test.count=1"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	timeout := 10 * time.Minute
	if d, ok := t.Deadline(); ok && time.Until(d) < timeout+10*time.Second {
		timeout = time.Until(d) - 10*time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), reexecEnv+"="+test, "LOCKSCOPE_CHILD=1"), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var reexecLine = regexp.MustCompile(`^\s*(--- |\w+_test\.go:\d+: )`)

// reexecLog logs the child's own lines (its t.Log output and its verdict).
func reexecLog(t *testing.T, out string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if reexecLine.MatchString(l) {
			t.Log(strings.TrimSpace(l))
		}
	}
}

func TestDetectionBeyondGoroutineTable(t *testing.T) {
	const name = "TestDetectionBeyondGoroutineTable"
	if !inReexec(name) {
		out, err := reexecTest(t, name)
		reexecLog(t, out)
		if err != nil {
			if len(out) > 20000 {
				out = out[:10000] + "\n…\n" + out[len(out)-10000:]
			}
			t.Fatalf("child process failed (%v):\n%s", err, out)
		}
		return
	}

	n := scaleGoroutines()
	reports := make(chan debugmutex.Report, 64)
	defer debugmutex.OnReport(func(r debugmutex.Report) {
		select {
		case reports <- r:
		default:
		}
	})()

	// n-4 plain holders, then 4 actors (the goroutines started last), each
	// holding a lock of its own and parked on a channel.
	start := time.Now()
	release := make(chan struct{})
	var ready, done sync.WaitGroup
	for i := 0; i < n-4; i++ {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			mu := new(debugmutex.Mutex)
			mu.Lock()
			ready.Done()
			<-release
			mu.Unlock()
		}()
	}
	type actor struct {
		own *debugmutex.Mutex
		do  chan func()
	}
	actors := make([]actor, 4)
	for i := range actors {
		a := actor{own: new(debugmutex.Mutex), do: make(chan func())}
		debugmutex.SetName(a.own, fmt.Sprintf("scale.actor%d", i))
		actors[i] = a
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			a.own.Lock()
			ready.Done()
			for {
				select {
				case f := <-a.do:
					f()
				case <-release:
					return // a.own is unlocked by whoever took it over (see below)
				}
			}
		}()
	}
	ready.Wait()
	t.Logf("%d goroutines each hold a lock of their own (started in %v); lockscope dropped %+v",
		n, time.Since(start).Round(time.Millisecond), debugmutex.DroppedCounts())
	defer func() {
		close(release)
		finished := make(chan struct{})
		go func() { done.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(time.Minute):
			t.Error("the goroutines did not all finish within a minute of being released")
		}
	}()

	awaitReport := func(kind debugmutex.Kind, locks ...string) *debugmutex.Report {
		deadline := time.After(10 * time.Second)
		for {
			select {
			case r := <-reports:
				if r.Kind != kind {
					continue
				}
				all := true
				for _, l := range locks {
					all = all && strings.Contains(r.Summary, l)
				}
				if all {
					t.Logf("reported: %s", r.Summary)
					return &r
				}
			case <-deadline:
				return nil
			}
		}
	}

	t.Run("deadlock", func(t *testing.T) {
		// Actor 0 holds actor0's lock and waits for actor1's; actor 1 holds
		// actor1's and waits for actor0's: a real deadlock.
		a0, a1 := actors[0], actors[1]
		finished := make(chan struct{}, 2)
		a0.do <- func() {
			a1.own.Lock()
			a1.own.Unlock()
			// a0.own was unlocked by the test, to end the deadlock.
			finished <- struct{}{}
		}
		time.Sleep(100 * time.Millisecond) // only to make the order deterministic: actor 0 waits first
		a1.do <- func() {
			a0.own.Lock()
			a0.own.Unlock()
			a1.own.Unlock()
			finished <- struct{}{}
		}
		if r := awaitReport(debugmutex.KindDeadlock, "scale.actor0", "scale.actor1"); r == nil {
			t.Errorf("no deadlock report within 10s for goroutines deadlocked on scale.actor0 and scale.actor1, with %d goroutines holding locks; dropped: %+v",
				n, debugmutex.DroppedCounts())
		} else {
			// As at any scale, the report says where each holder took its lock.
			for _, l := range []string{"scale.actor0", "scale.actor1"} {
				found := false
				for _, g := range r.Goroutines {
					found = found || (g.Role == "holds" && g.Lock == l && len(g.Stack) > 0)
				}
				if !found {
					t.Errorf("the deadlock report does not say where %s was acquired (no goroutine \"holds\" it with a stack):\n%s", l, r)
				}
			}
		}
		// End it as sync allows: another goroutine unlocks actor 0's lock.
		a0.own.Unlock()
		for i := 0; i < 2; i++ {
			select {
			case <-finished:
			case <-time.After(10 * time.Second):
				t.Fatal("the deadlocked goroutines did not finish after actor0's lock was unlocked")
			}
		}
	})

	t.Run("lock-order", func(t *testing.T) {
		// Actor 2 takes C then D, and later actor 3 takes D then C (both
		// while holding their own lock): an inversion, though nothing blocks.
		var c, d debugmutex.Mutex
		debugmutex.SetName(&c, "scale.C")
		debugmutex.SetName(&d, "scale.D")
		a2, a3 := actors[2], actors[3]
		finished := make(chan struct{})
		a2.do <- func() {
			c.Lock()
			d.Lock()
			d.Unlock()
			c.Unlock()
			finished <- struct{}{}
		}
		<-finished
		a3.do <- func() {
			d.Lock()
			c.Lock()
			c.Unlock()
			d.Unlock()
			finished <- struct{}{}
		}
		<-finished
		if awaitReport(debugmutex.KindLockOrder, "scale.C", "scale.D") == nil {
			t.Errorf("no lock-order report for scale.C -> scale.D -> scale.C, with %d goroutines holding locks; dropped: %+v",
				n, debugmutex.DroppedCounts())
		}
		// The actors' own locks are still held: release them for the end.
		a2.do <- func() { a2.own.Unlock() }
		a3.do <- func() { a3.own.Unlock() }
	})
}
