package debugmutex_test

import (
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
)

// Two goroutines, each holding one lock and spinning on TryLock of the
// other's: they never block, and neither lets go. Reported as a livelock
// once both have spun for the window, naming both goroutines and locks.
func TestTryLockLivelockReported(t *testing.T) {
	a, b := new(debugmutex.Mutex), new(debugmutex.Mutex)
	debugmutex.SetName(a, "livelock.a")
	debugmutex.SetName(b, "livelock.b")
	got := make(chan debugmutex.Report, 4)
	defer debugmutex.OnReport(func(r debugmutex.Report) {
		if r.Kind == debugmutex.KindLivelock && strings.Contains(r.Summary, "livelock.a") {
			got <- r
		}
	})()
	stop := make(chan struct{})
	ids := make(chan int64, 2)
	var wg sync.WaitGroup
	spin := func(mine, theirs *debugmutex.Mutex, held *sync.WaitGroup) {
		defer wg.Done()
		mine.Lock()
		defer mine.Unlock()
		ids <- goid()
		held.Done()
		held.Wait() // both hold theirs before either tries
		for {
			select {
			case <-stop:
				return
			default:
			}
			if theirs.TryLock() {
				theirs.Unlock()
				t.Errorf("TryLock succeeded on a lock the other goroutine never releases")
				return
			}
			time.Sleep(time.Millisecond) // a polite spin: still a livelock
		}
	}
	var held sync.WaitGroup
	held.Add(2)
	wg.Add(2)
	start := time.Now()
	go spin(a, b, &held)
	go spin(b, a, &held)
	g1, g2 := <-ids, <-ids
	var r debugmutex.Report
	select {
	case r = <-got:
	case <-time.After(10 * time.Second):
		close(stop)
		wg.Wait()
		t.Fatal("no livelock report within 10s")
	}
	after := time.Since(start)
	close(stop)
	wg.Wait()
	t.Logf("after %v: %s\n%s", after.Round(time.Millisecond), r.Summary, r.String())
	if after < 900*time.Millisecond || after > 3*time.Second {
		t.Errorf("reported after %v, want after the 1s window and within 3s", after)
	}
	for _, id := range []int64{g1, g2} {
		if !regexp.MustCompile(fmt.Sprintf(`goroutine %d\b`, id)).MatchString(r.Summary) {
			t.Errorf("summary does not name goroutine %d: %s", id, r.Summary)
		}
	}
	if !strings.Contains(r.Summary, "livelock.b") || !strings.Contains(r.Summary, "neither has let go") {
		t.Errorf("summary: %s", r.Summary)
	}
	roles := map[string]int{}
	for _, g := range r.Goroutines {
		roles[g.Role]++
		if len(g.Stack) == 0 {
			t.Errorf("goroutine %d (%s %s) has no stack", g.ID, g.Role, g.Lock)
		} else if !strings.Contains(g.Stack[0].Function, "TestTryLockLivelockReported") {
			t.Errorf("goroutine %d (%s %s) at %s, want this test's spin", g.ID, g.Role, g.Lock, g.Stack[0].Function)
		}
	}
	if roles["spins on TryLock of"] != 2 || roles["holds"] != 2 {
		t.Errorf("roles %v, want two spinning, two holding", roles)
	}
}

// TryLock with back-off (release what you hold, retry) is correct Go, and
// stays quiet however many TryLocks fail; so does polling a lock whose
// holder is not spinning on one of ours.
func TestTryLockBackoffAndPollingAreSilent(t *testing.T) {
	a, b := new(debugmutex.Mutex), new(debugmutex.Mutex)
	debugmutex.SetName(a, "backoff.a")
	debugmutex.SetName(b, "backoff.b")
	var mu sync.Mutex
	var bad []string
	defer debugmutex.OnReport(func(r debugmutex.Report) {
		if strings.Contains(r.Summary, "backoff.") {
			mu.Lock()
			bad = append(bad, r.Summary)
			mu.Unlock()
		}
	})()
	deadline := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	fails := [2]int{}
	both := func(i int, first, second *debugmutex.Mutex) {
		defer wg.Done()
		for time.Now().Before(deadline) {
			first.Lock()
			if second.TryLock() {
				second.Unlock()
			} else {
				fails[i]++
			}
			first.Unlock()
			runtime.Gosched()
		}
	}
	wg.Add(3)
	go both(0, a, b)
	go both(1, b, a)
	// A poller: the holder of c works (sleeps), holding nothing we hold.
	go func() {
		defer wg.Done()
		c := new(debugmutex.Mutex)
		debugmutex.SetName(c, "backoff.polled")
		locked := make(chan struct{})
		go func() {
			c.Lock()
			close(locked)
			time.Sleep(1500 * time.Millisecond)
			c.Unlock()
		}()
		<-locked
		for !c.TryLock() {
			time.Sleep(time.Millisecond)
		}
		c.Unlock()
	}()
	wg.Wait()
	t.Logf("TryLock failures with back-off: %d and %d", fails[0], fails[1])
	mu.Lock()
	defer mu.Unlock()
	for _, s := range bad {
		t.Errorf("reported: %s", s)
	}
}
