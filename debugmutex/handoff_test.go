package debugmutex_test

// Hand-off: Go lets one goroutine lock a Mutex or read-lock an RWMutex and
// another one unlock it. These tests port the patterns behind lockscope's
// false reports on real modules (issue 10; scripts/realmodules.sh reproduces
// them) into small programs, and fail on any report they get wrong:
//
//   - prometheus/client_golang v1.25.0, prometheus/summary.go: Observe locks
//     bufMtx, then asyncFlush locks mtx and a new goroutine unlocks it (three
//     or four false lock-order reports per `go test -short`);
//   - go.etcd.io/bbolt v1.5.0, db.go: beginTx read-locks mmaplock and the
//     transaction, with its read lock, goes to another goroutine whose
//     Rollback (removeTx, db.go:877) read-unlocks it (a false recursive-read
//     report at db.go:801 and a false RUnlock-of-unlocked at db.go:877);
//   - more read holds in one goroutine than lockscope v1 tracked (64);
//   - a lock left held by a goroutine that exited and unlocked by another;
//   - a mutex used as a baton, which its locker locks again and waits for.
//
// They use only the public API, and only reports about their own locks
// (named with SetName under a per-test prefix) count. Interleavings are made
// by channels; the only waits on the clock are for a hold or a wait to grow
// older than a threshold or grace. Each test, but the baton one, makes the
// interleaving that matters happen on the lock's first hand-off: a detector
// that is right only once it has seen a lock handed off still fails them.
//
// Each test but the baton one failed on the v1 engine (commit b78b5fe), as
// its comment says; they are acceptance tests of the v2 engine. The baton
// test, in the form chosen (the lock is a known baton before the rounds),
// passes on v1 too: see its comment for why.

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
)

// hoWatch collects the reports about the locks whose names start with prefix:
// new ones through OnReport, and repeats of problems reported before the
// test began (a repeat only raises the count of the first report; that
// happens with -count=N) by comparing Reports() counts.
type hoWatch struct {
	prefix string
	before map[string]int

	mu     sync.Mutex
	got    []debugmutex.Report
	failed map[string]bool // keys already failed on
}

func hoWatchReports(t *testing.T, prefix string) *hoWatch {
	t.Helper()
	w := &hoWatch{prefix: prefix, before: map[string]int{}, failed: map[string]bool{}}
	for _, r := range debugmutex.Reports() {
		w.before[r.Key] = r.Count
	}
	unregister := debugmutex.OnReport(func(r debugmutex.Report) {
		if w.about(r) {
			w.mu.Lock()
			w.got = append(w.got, r)
			w.mu.Unlock()
		}
	})
	t.Cleanup(unregister)
	return w
}

func (w *hoWatch) about(r debugmutex.Report) bool { return hoAboutPrefix(r, w.prefix) }

// reports runs the watchdog once more and returns the reports about the
// test's locks made since the watch began.
func (w *hoWatch) reports() []debugmutex.Report {
	debugmutex.WatchdogNow()
	w.mu.Lock()
	out := append([]debugmutex.Report(nil), w.got...)
	w.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range out {
		seen[r.Key] = true
	}
	// A repeat keeps the first report's text, which names the locks of its
	// first occurrence: for a problem at sites another handoff test (or an
	// earlier subtest) shares, that is another test's lock. The tests run one
	// at a time and leave nothing running, so a repeat about any handoff
	// lock that happens while this watch is on is this test's.
	for _, r := range debugmutex.Reports() {
		n, ok := w.before[r.Key]
		if !seen[r.Key] && (ok && r.Count > n && hoAboutPrefix(r, "handoff.")) {
			r.Summary += " [seen again in this test: the names are those of its first occurrence]"
			out = append(out, r)
		}
	}
	return out
}

func hoAboutPrefix(r debugmutex.Report, prefix string) bool {
	for _, l := range r.Locks {
		if strings.HasPrefix(l.Name, prefix) {
			return true
		}
	}
	return strings.Contains(r.Summary, prefix)
}

// fail reports, as test errors, the reports for which wrong is true, each
// printed in full (once per watch).
func (w *hoWatch) fail(t *testing.T, why string, wrong func(debugmutex.Report) bool) {
	t.Helper()
	for _, r := range w.reports() {
		if wrong(r) && !w.failed[r.Key] {
			w.failed[r.Key] = true
			t.Errorf("%s; got this %s report:\n%s", why, r.Kind, r.String())
		}
	}
}

func anyReport(debugmutex.Report) bool { return true }

func ofKind(kinds ...debugmutex.Kind) func(debugmutex.Report) bool {
	return func(r debugmutex.Report) bool {
		for _, k := range kinds {
			if r.Kind == k {
				return true
			}
		}
		return false
	}
}

// hoWait waits for ch to be closed (or to deliver), failing the test instead
// of hanging if it is not within a generous deadline.
func hoWait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// hoGoid is the calling goroutine's id, as Go prints it.
func hoGoid() int64 {
	var buf [64]byte
	s := strings.TrimPrefix(string(buf[:runtime.Stack(buf[:], false)]), "goroutine ")
	id, _ := strconv.ParseInt(s[:strings.IndexByte(s, ' ')], 10, 64)
	return id
}

// hoAwaitExit returns once goroutine id no longer exists (it has returned,
// but may not yet be gone when its last channel operation is seen).
func hoAwaitExit(t *testing.T, id int64) {
	t.Helper()
	needle := "goroutine " + strconv.FormatInt(id, 10) + " ["
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) && !strings.Contains(string(buf[:n]), needle) {
			return
		}
		if n == len(buf) {
			buf = make([]byte, 2*len(buf))
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutine %d did not exit", id)
		}
		runtime.Gosched()
	}
}

// hoAwaitWaiting returns once lockscope shows a goroutine blocked for the
// lock named name.
func hoAwaitWaiting(t *testing.T, name string) debugmutex.Waiting {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, w := range debugmutex.Snapshot().Waiting {
			if w.Lock.Name == name {
				return w
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nobody is shown waiting for %s", name)
		}
		runtime.Gosched()
	}
}

// hoEnvDuration is the value a duration setting has before tests change it:
// the environment's, or the default.
func hoEnvDuration(name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	if v == "0" {
		return 0
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return d
	}
	return def
}

// testMainRecursiveGrace is the grace TestMain (main_test.go) configures.
const testMainRecursiveGrace = 50 * time.Millisecond

// hoSummary is prometheus/client_golang's summary (prometheus/summary.go,
// v1.25.0) reduced to its locking: "Lock bufMtx before mtx if both are
// needed"; Observe appends under bufMtx and, when the buffer is full,
// asyncFlush locks mtx, swaps the buffers and leaves mtx to a new goroutine,
// which folds the cold buffer and unlocks mtx. That goroutine waits for
// release before it works: the deterministic stand-in for "it has not got
// round to it yet". It closes done once it has unlocked mtx.
type hoSummary struct {
	bufMtx debugmutex.Mutex // protects hot
	mtx    debugmutex.Mutex // protects cold and count

	hot, cold []float64
	count     int
}

func newHoSummary(name string) *hoSummary {
	s := &hoSummary{}
	debugmutex.SetName(&s.bufMtx, name+".bufMtx")
	debugmutex.SetName(&s.mtx, name+".mtx")
	return s
}

// observe is summary.Observe; with a non-nil release it is the Observe that
// fills the hot buffer and flushes it.
func (s *hoSummary) observe(v float64, release <-chan struct{}) (done <-chan struct{}) {
	s.bufMtx.Lock()
	defer s.bufMtx.Unlock()
	s.hot = append(s.hot, v)
	if release != nil {
		done = s.asyncFlush(release)
	}
	return done
}

// asyncFlush is summary.asyncFlush: it needs bufMtx locked.
func (s *hoSummary) asyncFlush(release <-chan struct{}) <-chan struct{} {
	s.mtx.Lock()
	s.hot, s.cold = s.cold, s.hot // swapBufs
	done := make(chan struct{})
	go func() {
		<-release
		s.count += len(s.cold) // flushColdBuf
		s.cold = s.cold[:0]
		s.mtx.Unlock()
		close(done)
	}()
	return done
}

// write is summary.Write: bufMtx, then mtx.
func (s *hoSummary) write() int {
	s.bufMtx.Lock()
	s.mtx.Lock()
	s.hot, s.cold = s.cold, s.hot
	s.bufMtx.Unlock()
	s.count += len(s.cold)
	s.cold = s.cold[:0]
	n := s.count
	s.mtx.Unlock()
	return n
}

// The summary's locks are always taken bufMtx before mtx. When Observe
// returns after a flush, mtx is still locked, but it is the flushing
// goroutine's to unlock, not Observe's goroutine's: the next Observe locking
// bufMtx is not "bufMtx while holding mtx". The v1 engine (b78b5fe)
// recorded mtx -> bufMtx there, on the very first hand-off (the flusher has
// not unlocked mtx yet, so nothing has been seen handed off), and reported
// the inversion bufMtx -> mtx -> bufMtx.
func TestHandoffSummaryFlushIsNoLockOrderInversion(t *testing.T) {
	w := hoWatchReports(t, "handoff.summary.")
	s := newHoSummary("handoff.summary")

	release1 := make(chan struct{})
	done1 := s.observe(1, release1) // bufMtx -> mtx; mtx left to flusher 1
	s.observe(2, nil)               // bufMtx again while flusher 1 has not unlocked mtx: the first hand-off is pending
	release2 := make(chan struct{})
	close(release1)                 // flusher 1 may finish now...
	done2 := s.observe(3, release2) // ...and this flush's mtx.Lock waits until it has
	hoWait(t, done1, "flusher 1")
	close(release2)
	hoWait(t, done2, "flusher 2")
	if n := s.write(); n != 3 {
		t.Errorf("summary counted %d observations, want 3", n)
	}
	w.fail(t, "the summary takes bufMtx before mtx only (mtx is handed to the flushing goroutine)", anyReport)
}

// client_golang's ExampleSummaryVec: two summaries observed in turn, each
// flushing, so the goroutine locks one summary's locks while the other's mtx
// waits for its flusher. The v1 engine (b78b5fe) reported cycles through
// both summaries (mtx1 -> bufMtx2 -> mtx2 -> bufMtx1 -> mtx1, and
// mtx2 -> mtx1), all from mtx holds that were handed to flushers.
func TestHandoffTwoSummariesFlushingInTurnAreNoLockOrderInversion(t *testing.T) {
	w := hoWatchReports(t, "handoff.vec.")
	s1, s2 := newHoSummary("handoff.vec.s1"), newHoSummary("handoff.vec.s2")

	r1, r2 := make(chan struct{}), make(chan struct{})
	d1 := s1.observe(1, r1) // bufMtx1 -> mtx1, mtx1 to flusher 1
	d2 := s2.observe(2, r2) // bufMtx2 -> mtx2 while flusher 1 has mtx1
	close(r1)
	r3 := make(chan struct{})
	d3 := s1.observe(3, r3) // bufMtx1 -> mtx1 (waits for flusher 1) while flusher 2 has mtx2
	hoWait(t, d1, "flusher 1")
	close(r2)
	hoWait(t, d2, "flusher 2")
	close(r3)
	hoWait(t, d3, "flusher 3")
	if n1, n2 := s1.write(), s2.write(); n1 != 2 || n2 != 1 {
		t.Errorf("summaries counted %d and %d observations, want 2 and 1", n1, n2)
	}
	w.fail(t, "each summary takes bufMtx before mtx only, and no goroutine holds two summaries' locks", anyReport)
}

// hoDB is go.etcd.io/bbolt's DB (db.go, v1.5.0) reduced to the locking of
// read transactions: beginTx locks metalock, read-locks mmaplock and unlocks
// metalock, so the transaction carries the read lock; Rollback (removeTx)
// read-unlocks mmaplock, then locks metalock. A remap write-locks mmaplock.
type hoDB struct {
	metalock debugmutex.Mutex   // protects open
	mmaplock debugmutex.RWMutex // read-held by every open read transaction
	open     int
}

type hoTx struct{ db *hoDB }

func newHoDB(name string) *hoDB {
	db := &hoDB{}
	debugmutex.SetName(&db.metalock, name+".metalock")
	debugmutex.SetName(&db.mmaplock, name+".mmaplock")
	return db
}

func (db *hoDB) beginTx() *hoTx {
	db.metalock.Lock()
	db.mmaplock.RLock() // db.go:801
	db.open++
	db.metalock.Unlock()
	return &hoTx{db}
}

func (tx *hoTx) rollback() {
	tx.db.mmaplock.RUnlock() // db.go:877
	tx.db.metalock.Lock()
	tx.db.open--
	tx.db.metalock.Unlock()
}

func (db *hoDB) remap() {
	db.mmaplock.Lock()
	db.mmaplock.Unlock()
}

// bbolt's TestDB_Concurrent_WriteTo_and_ConsistentRead: the test goroutine
// begins read transactions and hands each to a goroutine of its own, which
// rolls it back later; meanwhile the test goroutine begins the next one.
// Each read lock belongs to the goroutine the transaction went to, so the
// next RLock is not a recursive read lock, and each RUnlock unlocks a lock
// that is read-locked (sync would die otherwise; it does not). With more
// open transactions than lockscope tracked per goroutine (64), the v1
// engine (b78b5fe) also reported RUnlock of an unlocked RWMutex.
func TestHandoffReadTransactionsRolledBackByOtherGoroutines(t *testing.T) {
	for _, n := range []int{3, 100} {
		t.Run(strconv.Itoa(n)+" transactions", func(t *testing.T) {
			prefix := "handoff.bbolt" + strconv.Itoa(n) + "."
			w := hoWatchReports(t, prefix)
			db := newHoDB(strings.TrimSuffix(prefix, "."))
			release := make(chan struct{})
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				tx := db.beginTx() // RLock while earlier transactions, handed off, are still open
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-release
					tx.rollback() // RUnlock in another goroutine than the RLock
				}()
			}
			close(release)
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			hoWait(t, done, "the transactions' goroutines")
			db.remap() // every read lock was released: a writer gets in
			if db.open != 0 {
				t.Errorf("%d transactions still open", db.open)
			}
			w.fail(t, "read transactions handed to other goroutines are no recursive read lock, their RUnlocks unlock read-locked locks, "+
				"and the handed-off read holds order nothing",
				ofKind(debugmutex.KindRecursiveRead, debugmutex.KindUnlockUnlocked, debugmutex.KindLockOrder, debugmutex.KindDeadlock))
		})
	}
}

// More read holds in one goroutine than lockscope tracked per goroutine (64
// in v1): releasing them is not an unlock of an unlocked lock. The v1
// engine dropped holds beyond 64 and then reported each RUnlock it had no
// record of as one.
func TestHandoffManyReadHoldsReleasedAreNoUnlockOfUnlocked(t *testing.T) {
	const n = 200
	t.Run("distinct RWMutexes released in order", func(t *testing.T) {
		w := hoWatchReports(t, "handoff.many.distinct.")
		rws := make([]debugmutex.RWMutex, n)
		for i := range rws {
			debugmutex.SetName(&rws[i], "handoff.many.distinct."+strconv.Itoa(i))
			rws[i].RLock()
		}
		for i := range rws {
			rws[i].RUnlock()
		}
		hoAllUnlocked(t, rws)
		// Nested in one order and all released: correct Go, nothing to say.
		w.fail(t, "200 read holds taken in one order and released are correct", anyReport)
	})
	t.Run("distinct RWMutexes released by another goroutine", func(t *testing.T) {
		w := hoWatchReports(t, "handoff.many.other.")
		rws := make([]debugmutex.RWMutex, n)
		for i := range rws {
			debugmutex.SetName(&rws[i], "handoff.many.other."+strconv.Itoa(i))
			rws[i].RLock()
		}
		done := make(chan struct{})
		go func() {
			for i := range rws {
				rws[i].RUnlock()
			}
			close(done)
		}()
		hoWait(t, done, "the releasing goroutine")
		hoAllUnlocked(t, rws)
		w.fail(t, "200 read holds taken in one order and released by another goroutine are correct", anyReport)
	})
	t.Run("one RWMutex read-locked 200 times", func(t *testing.T) {
		w := hoWatchReports(t, "handoff.many.one")
		var rw debugmutex.RWMutex
		debugmutex.SetName(&rw, "handoff.many.one")
		for i := 0; i < n; i++ {
			rw.RLock() // recursive read locking: reporting that is right
		}
		for i := 0; i < n; i++ {
			rw.RUnlock()
		}
		if !rw.TryLock() {
			t.Errorf("handoff.many.one still read-locked")
		} else {
			rw.Unlock()
		}
		w.fail(t, "each RUnlock matched an RLock", ofKind(debugmutex.KindUnlockUnlocked))
	})
}

// hoAllUnlocked checks that every lock of rws is free (a writer gets it).
func hoAllUnlocked(t *testing.T, rws []debugmutex.RWMutex) {
	t.Helper()
	for i := range rws {
		if !rws[i].TryLock() {
			t.Errorf("lock %d still read-locked", i)
			continue
		}
		rws[i].Unlock()
	}
}

// A Mutex locked by a goroutine that then exits is not necessarily leaked:
// any goroutine may unlock it, and here one does. While it is held past the
// hold threshold the watchdog may say so, and that its locker has exited,
// but "the goroutine has exited, so it will never be released" is wrong.
// The v1 engine (b78b5fe) said exactly that (KindLeakedLock). The second
// case has been handed off before, so it is known to be a baton: no
// lock-leak claim at all for its locker.
func TestHandoffLockLeftByExitedGoroutineIsNotNeverReleased(t *testing.T) {
	const threshold = 20 * time.Millisecond
	debugmutex.Configure(debugmutex.HoldThreshold(threshold))
	defer debugmutex.Configure(debugmutex.HoldThreshold(hoEnvDuration(debugmutex.EnvHoldThreshold, 30*time.Second)))

	// lockAndExit is the goroutine A: each case has its own, so that the
	// cases' reports (keyed by acquire site) are not taken for repeats.
	run := func(t *testing.T, name string, batonBefore bool, lockAndExit func(*debugmutex.Mutex, chan<- int64)) {
		w := hoWatchReports(t, name)
		var mu debugmutex.Mutex
		debugmutex.SetName(&mu, name)
		if batonBefore {
			for i := 0; i < 3; i++ {
				locked := make(chan struct{})
				go func() { mu.Lock(); close(locked) }()
				hoWait(t, locked, "the locker")
				mu.Unlock() // unlocked by another goroutine than its locker
			}
		}
		lockerID := make(chan int64)
		go lockAndExit(&mu, lockerID) // A: locks and exits, leaving the unlock to B
		a := hoWait(t, lockerID, "goroutine A")
		hoAwaitExit(t, a)
		// Let the hold grow older than the threshold, with the watchdog
		// looking before (an untimed hold is dated from its first sight)
		// and after.
		debugmutex.WatchdogNow()
		<-time.After(5 * threshold)
		debugmutex.WatchdogNow()
		held := false
		for _, h := range debugmutex.Snapshot().Held {
			held = held || h.Lock.Name == name
		}
		if !held {
			t.Errorf("precondition: %s is held but not in Snapshot().Held", name)
		}
		unlocked := make(chan struct{})
		go func() { mu.Unlock(); close(unlocked) }() // B
		hoWait(t, unlocked, "goroutine B")
		if !mu.TryLock() {
			t.Errorf("%s still locked after B unlocked it", name)
		} else {
			mu.Unlock()
		}
		w.fail(t, "a lock whose locker exited can still be unlocked by any goroutine (and was)", func(r debugmutex.Report) bool {
			return strings.Contains(r.Summary, "never be released") || r.Kind == debugmutex.KindUnlockUnlocked ||
				(batonBefore && r.Kind == debugmutex.KindLeakedLock)
		})
	}
	t.Run("first hand-off", func(t *testing.T) {
		run(t, "handoff.exited.first", false, func(mu *debugmutex.Mutex, id chan<- int64) {
			mu.Lock()
			id <- hoGoid()
		})
	})
	t.Run("known baton", func(t *testing.T) {
		run(t, "handoff.exited.baton", true, func(mu *debugmutex.Mutex, id chan<- int64) {
			mu.Lock()
			id <- hoGoid()
		})
	})
}

// A mutex used as a baton: goroutine A locks it and gives it to B, which will
// unlock it; A locks it again, and waits, for longer than the recursive
// grace, until B does. A waits for a lock it locked itself, but B (alive,
// and not waiting for anything of A's) can unlock it: that is no deadlock.
// The v1 engine (b78b5fe) reported one ("which it holds itself (recursive
// locking)") when the grace had passed, unless the lock had been seen
// handed off before.
//
// Without the runtime's proof of a blocked-forever goroutine (issue 14), the
// engine cannot tell the very first hand-off of a lock, outlasting the
// grace, from a recursive lock: that is the documented limit of the grace
// (see the package documentation). So the baton is passed once, quickly,
// before the rounds: from then on it is a known baton and must stay quiet.
func TestHandoffBatonRelockedWhileOtherGoroutineHasItIsNoDeadlock(t *testing.T) {
	const grace = 20 * time.Millisecond
	debugmutex.Configure(debugmutex.RecursiveGrace(grace))
	defer debugmutex.Configure(debugmutex.RecursiveGrace(testMainRecursiveGrace))
	const name = "handoff.baton.mu"
	w := hoWatchReports(t, name)
	var baton debugmutex.Mutex
	debugmutex.SetName(&baton, name)
	baton.Lock()
	passed := make(chan struct{})
	go func() { baton.Unlock(); close(passed) }()
	hoWait(t, passed, "the first pass of the baton")

	for round := 1; round <= 2; round++ {
		handed := make(chan struct{})
		aDone := make(chan struct{})
		go func() { // A
			baton.Lock()
			close(handed) // the baton is B's now
			baton.Lock()  // waits until B unlocks it
			baton.Unlock()
			close(aDone)
		}()
		hoWait(t, handed, "A to take the baton")
		if wt := hoAwaitWaiting(t, name); wt.Mode != debugmutex.Write {
			t.Errorf("round %d: A waits in mode %v", round, wt.Mode)
		}
		// A has been waiting for longer than the grace, with the watchdog
		// looking.
		<-time.After(5 * grace)
		debugmutex.WatchdogNow()
		bDone := make(chan struct{})
		go func() { baton.Unlock(); close(bDone) }() // B
		hoWait(t, bDone, "B to pass the baton back")
		hoWait(t, aDone, "A to get the baton")
		w.fail(t, "round "+strconv.Itoa(round)+": A's wait for the baton ends when B unlocks it; nothing is deadlocked", anyReport)
	}
}
