package debugmutex_test

import (
	"strings"
	"testing"

	"github.com/lockscope/lockscope/debugmutex"
)

// wrappedLocker is a type with its own Lock and Unlock that lock a field:
// every lock of this type is acquired at the same line, inside Lock.
type wrappedLocker struct{ mu debugmutex.Mutex }

func (l *wrappedLocker) Lock()   { l.mu.Lock() }
func (l *wrappedLocker) Unlock() { l.mu.Unlock() }

func lockBoth(x, y *wrappedLocker) { x.Lock(); y.Lock(); y.Unlock(); x.Unlock() }

// Two unrelated inversions, on four locks, met through one wrapper from
// different call sites: two reports, not one counted twice (the report key
// names the first frame outside lock wrappers, not the wrapper's line).
func TestInversionsThroughOneWrapperAreTwoReports(t *testing.T) {
	w := watchReports(t)
	var accounts, ledger, users, sessions wrappedLocker
	debugmutex.SetName(&accounts.mu, "wrap.accounts")
	debugmutex.SetName(&ledger.mu, "wrap.ledger")
	debugmutex.SetName(&users.mu, "wrap.users")
	debugmutex.SetName(&sessions.mu, "wrap.sessions")
	run := func(f func()) {
		done := make(chan struct{})
		go func() { defer close(done); f() }()
		<-done
	}
	run(func() { lockBoth(&accounts, &ledger) })
	run(func() { lockBoth(&ledger, &accounts) })
	run(func() { users.Lock(); sessions.Lock(); sessions.Unlock(); users.Unlock() })
	run(func() { sessions.Lock(); users.Lock(); users.Unlock(); sessions.Unlock() })
	var got []string
	for _, r := range w.all() {
		if r.Kind == debugmutex.KindLockOrder && strings.Contains(r.Summary, "wrap.") {
			got = append(got, r.Summary)
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d lock-order reports, want 2 (one per inversion):\n%s", len(got), strings.Join(got, "\n"))
	}
	if !strings.Contains(got[0]+got[1], "wrap.accounts") || !strings.Contains(got[0]+got[1], "wrap.users") {
		t.Errorf("reports do not cover both inversions:\n%s", strings.Join(got, "\n"))
	}
}

// With LOCKSCOPE_SAMPLING=1 every acquisition is timed, the first of a lock
// too: its hold has an exact start and its whole stack.
func TestSamplingOneTimesTheFirstAcquisition(t *testing.T) {
	debugmutex.Configure(debugmutex.SamplingPeriod(1))
	defer debugmutex.Configure(debugmutex.SamplingPeriod(64)) // the default
	mu := new(debugmutex.Mutex)                               // never used, nothing has asked about it
	mu.Lock()
	defer mu.Unlock()
	for _, h := range debugmutex.Snapshot().Held {
		if h.Site.Function != "github.com/lockscope/lockscope/debugmutex_test.TestSamplingOneTimesTheFirstAcquisition" {
			continue
		}
		if !h.Exact || len(h.Stack) < 2 {
			t.Errorf("first acquisition with sampling 1: exact %v, %d-frame stack; want exact, with its whole stack", h.Exact, len(h.Stack))
		}
		return
	}
	t.Fatal("the hold is not in the snapshot")
}

// A hold that was not sampled has its acquire site, not its stack: the
// report says so rather than passing the site off as the stack.
func TestSiteOnlyHolderStackIsMarked(t *testing.T) {
	w := watchReports(t)
	a, b := new(debugmutex.Mutex), new(debugmutex.Mutex) // unnamed: first acquisitions are not timed
	done := make(chan struct{})
	go func() { defer close(done); a.Lock(); b.Lock(); b.Unlock(); a.Unlock() }()
	<-done
	done = make(chan struct{})
	go func() { defer close(done); b.Lock(); a.Lock(); a.Unlock(); b.Unlock() }()
	<-done
	for _, r := range w.all() {
		if r.Kind != debugmutex.KindLockOrder || !strings.Contains(r.Edges[0].FromStack[0].Function, "TestSiteOnlyHolderStackIsMarked") {
			continue
		}
		marked := 0
		for _, e := range r.Edges {
			if e.FromSiteOnly {
				marked++
				if len(e.FromStack) != 1 {
					t.Errorf("edge %s->%s: from stack marked site-only has %d frames", e.From, e.To, len(e.FromStack))
				}
			}
		}
		if marked == 0 {
			t.Errorf("no edge's from stack is marked site-only, though neither first hold was sampled:\n%s", r.String())
		}
		if !strings.Contains(r.String(), "the acquire site only: this hold was not sampled") {
			t.Errorf("the printed report does not say the stack is a site only:\n%s", r.String())
		}
		return
	}
	t.Fatalf("no lock-order report; got %v", kinds(w.all()))
}

//go:noinline
func takeInOrder(first, second *debugmutex.Mutex) {
	first.Lock()
	second.Lock()
	second.Unlock()
	first.Unlock()
}

// An unsampled hold's site is followed by the frames below it that the
// same goroutine's stack at its next acquisition shows.
func TestSiteOnlyHolderStackGetsTheFramesBelowIt(t *testing.T) {
	w := watchReports(t)
	a, b := new(debugmutex.Mutex), new(debugmutex.Mutex) // unnamed: first acquisitions are not timed
	done := make(chan struct{})
	go func() { defer close(done); takeInOrder(a, b) }()
	<-done
	done = make(chan struct{})
	go func() { defer close(done); takeInOrder(b, a) }()
	<-done
	for _, r := range w.all() {
		if r.Kind != debugmutex.KindLockOrder || !strings.Contains(r.Edges[0].FromStack[0].Function, "takeInOrder") {
			continue
		}
		completed := 0
		for _, e := range r.Edges {
			if e.FromSiteOnly && e.FromBelow != "" {
				completed++
				if len(e.FromStack) < 2 || !strings.Contains(e.FromStack[1].Function, "TestSiteOnlyHolderStackGetsTheFramesBelowIt.func") {
					t.Errorf("edge %s->%s: from stack %v, want takeInOrder's site then the goroutine that called it", e.From, e.To, e.FromStack)
				}
			}
		}
		if completed == 0 {
			t.Errorf("no site-only from stack was completed:\n%s", r.String())
		}
		if !strings.Contains(r.String(), "the acquire site, then the frames below it in the stack where it then took") {
			t.Errorf("the printed report does not say where the frames come from:\n%s", r.String())
		}
		return
	}
	t.Fatalf("no lock-order report; got %v", kinds(w.all()))
}
