package debugmutex_test

import (
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/lockscope/lockscope/debugmutex"
)

func methodNames(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumMethod(); i++ {
		out = append(out, t.Method(i).Name)
	}
	sort.Strings(out)
	return out
}

func TestMethodSetsMatchSync(t *testing.T) {
	pairs := []struct{ ours, theirs any }{
		{(*debugmutex.Mutex)(nil), (*sync.Mutex)(nil)},
		{(*debugmutex.RWMutex)(nil), (*sync.RWMutex)(nil)},
		{debugmutex.Mutex{}, sync.Mutex{}},
	}
	for _, p := range pairs {
		got, want := methodNames(reflect.TypeOf(p.ours)), methodNames(reflect.TypeOf(p.theirs))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%T methods %v, sync's %T has %v", p.ours, got, p.theirs, want)
		}
		for _, name := range want {
			gm, _ := reflect.TypeOf(p.ours).MethodByName(name)
			wm, _ := reflect.TypeOf(p.theirs).MethodByName(name)
			// Compare signatures without the receiver.
			if gm.Type.NumIn() != wm.Type.NumIn() || gm.Type.NumOut() != wm.Type.NumOut() {
				t.Errorf("%T.%s signature %v, sync's %v", p.ours, name, gm.Type, wm.Type)
			}
		}
	}
	var _ sync.Locker = new(debugmutex.Mutex)
	var _ sync.Locker = new(debugmutex.RWMutex)
	var _ sync.Locker = new(debugmutex.RWMutex).RLocker()
}

func TestMutualExclusionZeroValue(t *testing.T) {
	var mu debugmutex.Mutex // zero value, never initialised
	var rw debugmutex.RWMutex
	counter, shared := 0, 0
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
				if i%10 == 0 {
					rw.Lock()
					shared++
					rw.Unlock()
				} else {
					rw.RLock()
					_ = shared
					rw.RUnlock()
				}
			}
		}()
	}
	wg.Wait()
	if counter != 16000 || shared != 1600 {
		t.Fatalf("counter=%d shared=%d, want 16000 and 1600", counter, shared)
	}
}

func TestTryLock(t *testing.T) {
	var mu debugmutex.Mutex
	if !mu.TryLock() {
		t.Fatal("TryLock of a free mutex failed")
	}
	if mu.TryLock() {
		t.Fatal("TryLock of a held mutex succeeded")
	}
	mu.Unlock()
	var rw debugmutex.RWMutex
	if !rw.TryRLock() || !rw.TryRLock() {
		t.Fatal("TryRLock of a read-held RWMutex failed")
	}
	if rw.TryLock() {
		t.Fatal("TryLock of a read-held RWMutex succeeded")
	}
	rw.RUnlock()
	rw.RUnlock()
	if !rw.TryLock() {
		t.Fatal("TryLock of a free RWMutex failed")
	}
	if rw.TryRLock() {
		t.Fatal("TryRLock of a write-held RWMutex succeeded")
	}
	rw.Unlock()
}

func TestCondWithMutexAndRLocker(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    sync.Locker
		w    sync.Locker // what the producer locks
	}{
		{"Mutex", new(debugmutex.Mutex), nil},
		{"RLocker", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, w := tc.l, tc.w
			if l == nil {
				rw := new(debugmutex.RWMutex)
				l, w = rw.RLocker(), rw
			} else {
				w = l
			}
			cond := debugmutex.NewCond(l)
			ready := false
			done := make(chan struct{})
			go func() {
				l.Lock()
				for !ready {
					cond.Wait()
				}
				l.Unlock()
				close(done)
			}()
			w.Lock()
			ready = true
			w.Unlock()
			cond.Broadcast()
			within(t, 5*time.Second, func() { <-done })
		})
	}
}

func TestSnapshotRecordsHolderSiteAndAge(t *testing.T) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "snapshot.mu")
	held, release, done := make(chan int), make(chan struct{}), make(chan struct{})
	var holder int64
	go func() {
		holder = goid()
		mu.Lock()
		held <- line() - 1
		<-release
		mu.Unlock()
		close(done)
	}()
	lockLine := <-held
	var readers debugmutex.RWMutex
	debugmutex.SetName(&readers, "snapshot.rw")
	readers.RLock()
	rdone := make(chan struct{})
	rheld := make(chan struct{})
	go func() { readers.RLock(); close(rheld); <-release; readers.RUnlock(); close(rdone) }()
	<-rheld

	st := debugmutex.Snapshot()
	var found bool
	nreaders := 0
	for _, h := range st.Held {
		switch h.Lock.Name {
		case "snapshot.mu":
			found = true
			if h.Goroutine != holder {
				t.Errorf("holder %d, want %d", h.Goroutine, holder)
			}
			if h.Mode != debugmutex.Write || h.Lock.Type != "Mutex" {
				t.Errorf("mode %v type %s", h.Mode, h.Lock.Type)
			}
			if h.Site.Line != lockLine || !hasFrame([]debugmutex.Frame{h.Site}, "TestSnapshotRecordsHolderSiteAndAge.func1") {
				t.Errorf("site %+v, want line %d in the test's goroutine", h.Site, lockLine)
			}
			if h.For <= 0 || h.Since.IsZero() {
				t.Errorf("age %v since %v", h.For, h.Since)
			}
		case "snapshot.rw":
			nreaders++
			if h.Mode != debugmutex.Read {
				t.Errorf("reader recorded as %v", h.Mode)
			}
		}
	}
	if !found {
		t.Fatalf("held mutex not in snapshot: %+v", st.Held)
	}
	if nreaders != 2 {
		t.Errorf("snapshot shows %d readers of snapshot.rw, want 2", nreaders)
	}
	close(release)
	readers.RUnlock()
	<-done
	<-rdone
	for _, h := range debugmutex.Snapshot().Held {
		if h.Lock.Name == "snapshot.mu" || h.Lock.Name == "snapshot.rw" {
			t.Errorf("released lock still in snapshot: %+v", h)
		}
	}
}

func TestWaitIsRecordedWithWaiterAndHolder(t *testing.T) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "wait.mu")
	mu.Lock()
	waiting := make(chan struct{})
	done := make(chan struct{})
	go func() {
		close(waiting)
		mu.Lock() // blocks: contended
		mu.Unlock()
		close(done)
	}()
	<-waiting
	// Wait until the goroutine is registered as a waiter (a poll with a
	// deadline on observable state, not a sleep).
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := debugmutex.Snapshot()
		n := 0
		for _, w := range st.Waiting {
			if w.Lock.Name == "wait.mu" {
				n++
				if w.Holder != goid() {
					t.Errorf("waiter's holder %d, want %d", w.Holder, goid())
				}
			}
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("waiter never appeared in Snapshot")
		}
		runtime_Gosched()
	}
	time.Sleep(2 * time.Millisecond) // workload: hold the lock while it waits
	mu.Unlock()
	<-done

	var wait, byHolder *debugmutex.Record
	for _, r := range debugmutex.Records() {
		if r.Lock != "wait.mu" {
			continue
		}
		r := r
		switch r.Kind {
		case debugmutex.StatWait:
			wait = &r
		case debugmutex.StatWaitByHolder:
			byHolder = &r
		}
	}
	if wait == nil || byHolder == nil {
		t.Fatalf("missing wait records: wait=%v byHolder=%v", wait, byHolder)
	}
	if wait.Count != 1 || wait.Nanos < int64(2*time.Millisecond) {
		t.Errorf("wait record count=%d nanos=%d, want 1 and >= 2ms", wait.Count, wait.Nanos)
	}
	if !hasFrame(debugmutex.Symbolize(wait.Stack), "TestWaitIsRecordedWithWaiterAndHolder.func1") {
		t.Errorf("wait stack is not the waiter's: %v", debugmutex.Symbolize(wait.Stack))
	}
	if !hasFrame(debugmutex.Symbolize(byHolder.Stack), "TestWaitIsRecordedWithWaiterAndHolder") ||
		hasFrame(debugmutex.Symbolize(byHolder.Stack), "func1") {
		t.Errorf("wait-by-holder stack is not the holder's: %v", debugmutex.Symbolize(byHolder.Stack))
	}
}

func TestTryLockFailuresCountedExactlyBySite(t *testing.T) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "try.mu")
	mu.Lock()
	const n = 1000
	failLine := 0
	for i := 0; i < n; i++ {
		if mu.TryLock() {
			t.Fatal("TryLock succeeded on a held lock")
		}
		failLine = line() - 3
	}
	mu.Unlock()
	var got int64
	for _, r := range debugmutex.Records() {
		if r.Kind == debugmutex.StatTryFail && r.Lock == "try.mu" {
			got += r.Count
			fs := debugmutex.Symbolize(r.Stack)
			if len(fs) == 0 || fs[0].Line != failLine {
				t.Errorf("TryLock failure site %v, want line %d", fs, failLine)
			}
		}
	}
	if got != n {
		t.Fatalf("TryLock failures recorded: %d, want exactly %d", got, n)
	}
}

func TestHoldStatisticsExactForLongHolds(t *testing.T) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "hold.mu")
	// The recorded hold lies between what is measured inside the critical
	// section and what is measured around Lock and Unlock.
	var inner, outer time.Duration
	const ops = 20
	for i := 0; i < ops; i++ {
		before := time.Now()
		mu.Lock()
		start := time.Now()
		time.Sleep(time.Millisecond) // workload: a long hold
		inner += time.Since(start)
		mu.Unlock()
		outer += time.Since(before)
	}
	var count, nanos int64
	for _, r := range debugmutex.Records() {
		if r.Kind == debugmutex.StatHold && r.Lock == "hold.mu" {
			count += r.Count
			nanos += r.Nanos
		}
	}
	// Long holds are timed on every acquisition, so counts are exact.
	if count != ops {
		t.Errorf("acquisitions %d, want %d", count, ops)
	}
	if got := time.Duration(nanos); got < inner || got > outer {
		t.Errorf("hold total %v, want between %v (inside) and %v (around)", got, inner, outer)
	}
}

func TestHoldStatisticsSampledUnbiased(t *testing.T) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "sampled.mu")
	const ops = 200000
	for i := 0; i < ops; i++ {
		mu.Lock()
		mu.Unlock()
	}
	var count int64
	for _, r := range debugmutex.Records() {
		if r.Kind == debugmutex.StatHold && r.Lock == "sampled.mu" {
			count += r.Count
		}
	}
	// Short holds are sampled; the weighted count estimates the truth.
	if count < ops*8/10 || count > ops*12/10 {
		t.Errorf("estimated acquisitions %d, want %d +-20%%", count, ops)
	}
}

// Short read holds are sampled per goroutine across the locks it
// read-locks; the weighted counts per lock stay unbiased, also for a lock
// read three times as often as another, and a lock whose reads are long is
// timed on every read, exactly, in between.
func TestReadHoldStatisticsSampledUnbiasedPerLock(t *testing.T) {
	var a, b, slow debugmutex.RWMutex
	debugmutex.SetName(&a, "sampled.read.a")
	debugmutex.SetName(&b, "sampled.read.b")
	debugmutex.SetName(&slow, "sampled.read.slow")
	const ops = 100000
	const slowReads = 20
	counts := func() map[string]int64 {
		c := map[string]int64{}
		for _, r := range debugmutex.Records() {
			if r.Kind == debugmutex.StatHold {
				c[r.Lock] += r.Count
			}
		}
		return c
	}
	before := counts() // the names are reused when the test is run again
	for i := 0; i < ops; i++ {
		a.RLock()
		a.RUnlock()
		if i%3 == 0 {
			b.RLock()
			b.RUnlock()
		}
		if i%(ops/slowReads) == 0 {
			slow.RLock()
			spin(200 * time.Microsecond) // a long hold: timed every time
			slow.RUnlock()
		}
	}
	count := counts()
	for k := range count {
		count[k] -= before[k]
	}
	for _, c := range []struct {
		name string
		want int64
	}{{"sampled.read.a", ops}, {"sampled.read.b", (ops + 2) / 3}} {
		if got := count[c.name]; got < c.want*8/10 || got > c.want*12/10 {
			t.Errorf("%s: estimated read acquisitions %d, want %d +-20%%", c.name, got, c.want)
		}
	}
	if got := count["sampled.read.slow"]; got != slowReads {
		t.Errorf("long read holds counted %d, want exactly %d", got, slowReads)
	}
}

// spin busy-waits for d: a hold that is long without the goroutine parking.
func spin(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
	}
}

func TestSubscriptionDeliversEventsAndCountsDrops(t *testing.T) {
	sub := debugmutex.Subscribe(debugmutex.SubscribeOptions{MinHold: time.Millisecond, MinWait: time.Millisecond, Buffer: 1})
	defer sub.Close()
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "events.mu")
	for i := 0; i < 3; i++ {
		mu.Lock()
		time.Sleep(2 * time.Millisecond) // workload
		mu.Unlock()
	}
	select {
	case ev := <-sub.C():
		if ev.Kind != debugmutex.EventHold || ev.Lock.Name != "events.mu" || ev.Duration < 2*time.Millisecond {
			t.Errorf("event %+v", ev)
		}
		if ev.Goroutine != goid() || !hasFrame(debugmutex.Symbolize(ev.Stack), "TestSubscriptionDeliversEventsAndCountsDrops") {
			t.Errorf("event goroutine %d stack %v", ev.Goroutine, debugmutex.Symbolize(ev.Stack))
		}
	default:
		t.Fatal("no hold event delivered")
	}
	if sub.Dropped() != 2 {
		t.Errorf("dropped %d, want 2 (buffer of 1, 3 events, never blocking)", sub.Dropped())
	}
}

func TestLockSizes(t *testing.T) {
	// Documented in the Mutex and RWMutex comments: 64 and 80 bytes on
	// 64-bit platforms, 56 and 72 on 32-bit ones (the two pointer-sized
	// words, meta and lastUnlockPC, are 4 bytes narrower each).
	wantMu, wantRW := uintptr(64), uintptr(80)
	if unsafe.Sizeof(uintptr(0)) == 4 {
		wantMu, wantRW = 56, 72
	}
	if s := unsafe.Sizeof(debugmutex.Mutex{}); s != wantMu {
		t.Errorf("Mutex is %d bytes, want %d; update the documentation", s, wantMu)
	}
	if s := unsafe.Sizeof(debugmutex.RWMutex{}); s != wantRW {
		t.Errorf("RWMutex is %d bytes, want %d; update the documentation", s, wantRW)
	}
}

func lockInlined(mu *debugmutex.Mutex) { mu.Lock() }

// Frames of a function a lock call was inlined into are kept.
func TestSymbolizeKeepsInlinedCallers(t *testing.T) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "inline.mu")
	lockInlined(&mu) // small enough to be inlined here
	defer mu.Unlock()
	for _, h := range debugmutex.Snapshot().Held {
		if h.Lock.Name == "inline.mu" {
			fs := debugmutex.Symbolize(h.Stack)
			if len(fs) < 2 || !strings.HasSuffix(fs[0].Function, "lockInlined") ||
				!strings.HasSuffix(fs[1].Function, "TestSymbolizeKeepsInlinedCallers") {
				t.Errorf("frames %v", fs)
			}
			return
		}
	}
	t.Fatal("lock not held")
}

// Locks made at one site (one per request, per connection) are named once
// for the site: each new lock used a few times allocates the lock itself,
// its meta (its second acquisition is timed, and timed holds are counted
// by name) and its statistics cache, and no symbolization.
func TestFreshLocksAtOneSiteAllocateOnlyTheirMeta(t *testing.T) {
	use := func() {
		mu := new(debugmutex.Mutex)
		for i := 0; i < 3; i++ {
			mu.Lock()
			mu.Unlock()
		}
	}
	use() // the site's first lock is named: symbolization, source lookup
	// What locking an existing lock allocates: nothing, unless goroutine
	// ids come from the slow fallback (-tags lockscope_slowgoid).
	var warm debugmutex.Mutex
	for range 1000 { // past its first timed holds: meta, name
		warm.Lock()
		warm.Unlock()
	}
	ops := testing.AllocsPerRun(200, func() { warm.Lock(); warm.Unlock() })
	want := 3.0
	if debugmutex.LockrankOn {
		want++ // the rank check of the statistics shard's mutex
	}
	if n := testing.AllocsPerRun(200, use) - 3*ops; n > want {
		t.Errorf("a fresh Mutex locked 3 times costs %v allocations beyond locking, want at most %v (lock, meta, statistics cache)", n, want)
	}
}
