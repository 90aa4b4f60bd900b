package profiler

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// Locks sharing a name (issue 10, point 7): debugmutex's statistics are
// sharded by lock id, so many locks with one name (SetName, or every lock
// made at one site) are several rows of one key (kind, stack, lock, mode).

var runs sync.Map // name -> *atomic.Int32

// runName is name, suffixed from the second run of a test on (go test
// -count=N): statistics are cumulative for the whole test binary.
func runName(name string) string {
	n, _ := runs.LoadOrStore(name, new(atomic.Int32))
	if i := n.(*atomic.Int32).Add(1); i > 1 {
		return fmt.Sprintf("%s#%d", name, i)
	}
	return name
}

// sharedLocks returns n locks all named name. Each is locked once before
// it is named (SetName may be called before or after first use): a lock
// first used by a goroutine gets the next id of that goroutine's batch, so
// the locks' ids are consecutive and their rows spread over the shards. (A
// lock named before first use gets a whole batch of ids to itself, and
// batches are all one shard.)
func sharedLocks(n int, name string) []*debugmutex.Mutex {
	locks := make([]*debugmutex.Mutex, n)
	for i := range locks {
		locks[i] = new(debugmutex.Mutex)
		locks[i].Lock()
		locks[i].Unlock()
		debugmutex.SetName(locks[i], name)
	}
	return locks
}

// waitForWaiters returns once n goroutines are waiting for locks named
// name: lockscope registers a waiter only after its Lock found the lock
// busy, so each of them is a contention that will be recorded when its
// Lock returns. It yields, never sleeps.
func waitForWaiters(t *testing.T, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := 0
		for _, w := range inspect.Snapshot().Waiting {
			if w.Lock.Name == name {
				got++
			}
		}
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			t.Fatalf("%d goroutines waiting for %s, want %d", got, name, n)
		}
		runtime.Gosched()
	}
}

// contendEach makes exactly one contended acquisition of each lock (all
// named name), all from the same stacks: it holds them all, starts one
// waiter per lock, lets them go once every waiter is registered, and returns
// when every waiter has locked and unlocked (its wait is recorded by then).
func contendEach(t *testing.T, locks []*debugmutex.Mutex, name string) {
	t.Helper()
	for _, mu := range locks {
		mu.Lock()
	}
	done := make(chan struct{}, len(locks))
	for _, mu := range locks {
		go func() {
			mu.Lock()
			mu.Unlock()
			done <- struct{}{}
		}()
	}
	waitForWaiters(t, name, len(locks))
	for _, mu := range locks {
		mu.Unlock()
	}
	for range locks {
		<-done
	}
}

func TestDeltaOfLocksSharingANameCountsEachContentionOnce(t *testing.T) {
	if !inspect.Enabled() {
		t.Fatal("this test measures lockscope's records: run it with lockscope on (not LOCKSCOPE=off)")
	}
	name := runName("pool.mu")
	locks := sharedLocks(50, name)
	// Activity before the window, uneven across the locks, so that the
	// starting records hold several different rows of the same key.
	contendEach(t, locks[:10], name)
	contendEach(t, locks[:3], name)

	// The window's 100 contentions happen inside it by construction:
	// CollectDelta calls the hook after reading its starting records and
	// before its timer starts, and the hook returns when all are recorded.
	hook := func() {
		contendEach(t, locks, name)
		contendEach(t, locks, name)
	}
	deltaBegan.Store(&hook)
	defer deltaBegan.Store(nil)
	p, err := CollectDelta(context.Background(), Contention, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	checkValid(t, p)
	var count, samples int
	for _, s := range p.Sample {
		for i, v := range s.Value {
			if v < 0 {
				t.Errorf("negative %s: %d in %v (lock %v)", p.SampleType[i].Type, v, s.Value, s.Label["lock"])
			}
		}
		if s.Label["lock"][0] == name {
			count += int(s.Value[0])
			samples++
		}
	}
	if count != 100 {
		t.Errorf("the delta has %d contentions/count of %s over %d samples, want exactly 100:\n%s", count, name, samples, p)
	}
	if samples != 1 {
		t.Errorf("%d samples of %s, want 1 (one waiter stack)", samples, name)
	}
}

func TestRecordsHaveOneRowPerKeyForLocksSharingAName(t *testing.T) {
	if !inspect.Enabled() {
		t.Fatal("this test measures lockscope's records: run it with lockscope on (not LOCKSCOPE=off)")
	}
	name := runName("records.shared")
	locks := sharedLocks(50, name)
	contendEach(t, locks, name)
	for _, mu := range locks {
		mu.Lock()
	}
	failed := make(chan bool, len(locks))
	for _, mu := range locks {
		go func() { failed <- !mu.TryLock() }() // one call site for all 50
	}
	for range locks {
		if !<-failed {
			t.Fatal("TryLock of a held lock succeeded")
		}
	}
	for _, mu := range locks {
		mu.Unlock()
	}

	seen := map[string]*report.Record{}
	sums := map[report.StatKind]int64{}
	dups := 0
	recs := inspect.Records()
	for i := range recs {
		r := &recs[i]
		if r.Lock != name {
			continue
		}
		k := recordKey(r)
		if d := seen[k]; d != nil {
			if dups == 0 {
				t.Errorf("two rows of one key: %+v and %+v", *d, *r)
			}
			dups++
		}
		seen[k] = r
		sums[r.Kind] += r.Count
	}
	if dups > 0 {
		t.Errorf("%d rows repeat a key", dups)
	}
	if sums[report.StatWait] != 50 || sums[report.StatWaitByHolder] != 50 || sums[report.StatTryFail] != 50 {
		t.Errorf("counts by kind %v, want 50 waits, 50 waits by holder, 50 TryLock failures", sums)
	}
}

func TestSubtractRecordsMergesDuplicatesAndNeverGoesNegative(t *testing.T) {
	stk := []uintptr{1, 2}
	w := func(lock string, stack []uintptr, count, nanos int64) report.Record {
		return report.Record{Kind: report.StatWait, Lock: lock, LockType: "Mutex", Stack: stack, Count: count, Nanos: nanos}
	}
	before := []report.Record{
		w("pool", stk, 2, 20), w("pool", stk, 7, 70), w("pool", stk, 1, 10), // 10, 100 in all
		w("back", stk, 5, 50),
		w("same", stk, 3, 30), w("same", stk, 4, 40),
		w("gone", stk, 9, 90),
	}
	after := []report.Record{
		w("pool", stk, 3, 30), w("pool", []uintptr{1, 2}, 1, 10), w("pool", stk, 9, 90), w("pool", stk, 100, 1000), // 113, 1130
		w("back", stk, 2, 20), // went backwards: ignored
		w("same", stk, 7, 70),
		w("new", stk, 1, 5), w("new", stk, 2, 5),
		w("half", stk, 0, 0), // zero
	}
	got := subtractRecords(before, after)
	want := []report.Record{w("pool", stk, 103, 1030), w("new", stk, 3, 10)}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if compareRecords(&got[i], &want[i]) != 0 || got[i].Count != want[i].Count || got[i].Nanos != want[i].Nanos {
			t.Errorf("record %d: got %+v, want %+v", i, got[i], want[i])
		}
	}

	// A row whose count grew while its time went backwards (or the other
	// way round) is not trusted either.
	got = subtractRecords([]report.Record{w("x", stk, 1, 100)}, []report.Record{w("x", stk, 2, 50)})
	if len(got) != 0 {
		t.Errorf("a row that went backwards in time: %+v, want nothing", got)
	}
}

func TestCumulativeProfileMergesDuplicateRecords(t *testing.T) {
	stk := callersHere()
	recs := []report.Record{
		{Kind: report.StatWait, Lock: "dup", LockType: "Mutex", Stack: stk, Count: 1, Nanos: 5},
		{Kind: report.StatWait, Lock: "dup", LockType: "Mutex", Stack: append([]uintptr(nil), stk...), Count: 2, Nanos: 7},
		{Kind: report.StatWait, Lock: "dup", LockType: "Mutex", Mode: report.Read, Stack: stk, Count: 4, Nanos: 1},
	}
	p := buildRecords(lookupSpec(Contention), recs, readMappings(), time.Now(), 0, report.Dropped{})
	checkValid(t, p)
	if len(p.Sample) != 2 {
		t.Fatalf("%d samples, want 2 (write merged, read):\n%s", len(p.Sample), p)
	}
	for _, s := range p.Sample {
		want := []int64{3, 12}
		if s.Label["mode"][0] == report.Read.String() {
			want = []int64{4, 1}
		}
		if s.Value[0] != want[0] || s.Value[1] != want[1] {
			t.Errorf("mode %s: values %v, want %v", s.Label["mode"][0], s.Value, want)
		}
	}
}
