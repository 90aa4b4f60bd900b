package debugmutex_test

import (
	"context"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
)

// Nothing lockscope keeps after a wait or a hold ends may keep the user's
// objects or contexts alive (DESIGN.md, "Never the cause"). These tests lock
// 200 objects of 1 MiB each, each with a context carrying 1 MiB more, drop
// them, and require every object's cleanup to run and the heap to come back
// to within 1 MiB of where it started: once for contended waits, once for
// holds, once for locks that were part of a lock-order report.

const (
	memObjects = 200
	memSlack   = 1 << 20
)

type memObject struct {
	mu   debugmutex.Mutex
	data [1 << 20]byte
}

type memCtxKey struct{}

// memCtx returns a context carrying 1 MiB, whose cleanup signals ctxFreed.
func memCtx(ctxFreed chan<- struct{}) context.Context {
	payload := make([]byte, 1<<20)
	runtime.AddCleanup(&payload[0], func(ch chan<- struct{}) { ch <- struct{}{} }, ctxFreed)
	return context.WithValue(context.Background(), memCtxKey{}, payload)
}

// memNew returns a new object whose cleanup signals freed.
func memNew(freed chan<- struct{}) *memObject {
	o := new(memObject)
	o.data[0], o.data[len(o.data)-1] = 1, 1
	runtime.AddCleanup(o, func(ch chan<- struct{}) { ch <- struct{}{} }, freed)
	return o
}

// memHeap is the bytes in live heap objects after a few collections.
func memHeap() uint64 {
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// memCheckFreed waits (collecting) until n cleanups arrived on freed and
// n on ctxFreed, or a generous deadline passes, then compares the heap
// with base.
func memCheckFreed(t *testing.T, base uint64, freed, ctxFreed <-chan struct{}, n int) {
	t.Helper()
	// Cleanups run on one goroutine after the collection that frees their
	// object; under emulation (qemu-user in CI) they lag by seconds. The
	// wait ends as soon as all have run: a long bound costs only failures.
	const bound = 60 * time.Second
	end := time.Now().Add(bound)
	deadline := time.After(bound)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	objs, ctxs := 0, 0
wait:
	for objs < n || ctxs < n {
		select {
		case <-freed:
			objs++
		case <-ctxFreed:
			ctxs++
		case <-tick.C:
			runtime.GC()
		case <-deadline:
			break wait
		}
	}
	// lockscope's own side state goes with cleanups of its own (the
	// lock-order graph's nodes go when their lock's meta is collected),
	// which may run after the user's: the heap must come back, so it is
	// measured again, collecting, until it has or the deadline passes.
	after := memHeap()
	for int64(after)-int64(base) > memSlack && time.Now().Before(end) {
		<-tick.C
		after = memHeap()
	}
	if objs < n {
		t.Errorf("%d of %d objects were freed (their cleanups ran) within %v: lockscope keeps the rest alive", objs, n, bound)
	}
	if ctxs < n {
		t.Errorf("%d of %d contexts passed to LockContext were freed within %v", ctxs, n, bound)
	}
	grown := int64(after) - int64(base)
	t.Logf("heap objects: %d KiB before, %d KiB after (%+d KiB); %d/%d objects and %d/%d contexts freed",
		base>>10, after>>10, grown>>10, objs, n, ctxs, n)
	if grown > memSlack {
		t.Errorf("heap grew by %d KiB (%d MiB): after %d objects of 1 MiB (and as many contexts of 1 MiB) were dropped, it should be within %d KiB of where it started",
			grown>>10, grown>>20, n, memSlack>>10)
	}
}

// memGoid returns the calling goroutine's id as Go prints it.
func memGoid() string {
	var buf [64]byte
	s := strings.TrimPrefix(string(buf[:runtime.Stack(buf[:], false)]), "goroutine ")
	return s[:strings.IndexByte(s, ' ')]
}

// memAwaitParked waits until goroutine id is parked (not running or
// runnable): having found the lock busy, it is waiting for it.
func memAwaitParked(t *testing.T, id string) {
	t.Helper()
	head := "goroutine " + id + " ["
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		for {
			n := runtime.Stack(buf, true)
			if n < len(buf) {
				buf = buf[:n]
				break
			}
			buf = make([]byte, 2*len(buf))
		}
		dump := string(buf)
		buf = buf[:cap(buf)]
		if i := strings.Index(dump, head); i >= 0 {
			state := dump[i+len(head):]
			state = state[:strings.IndexByte(state, ']')]
			if !strings.HasPrefix(state, "running") && !strings.HasPrefix(state, "runnable") {
				return
			}
		}
		time.Sleep(100 * time.Microsecond)
	}
	t.Fatalf("goroutine %s did not block on the lock within 10s", id)
}

// memContended locks each object's mutex in this goroutine and has another
// goroutine wait for it with LockContext, until that goroutine is parked
// in the wait; then unlocks it and lets the waiter take and release it.
//
//go:noinline
func memContended(t *testing.T, n int, freed, ctxFreed chan<- struct{}, big bool) {
	for i := 0; i < n; i++ {
		o := memNew(freed)
		var ctx context.Context
		if big {
			ctx = memCtx(ctxFreed)
		} else {
			ctx = context.Background()
		}
		o.mu.Lock()
		id := make(chan string, 1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			id <- memGoid()
			debugmutex.LockContext(ctx, &o.mu)
			o.mu.Unlock()
		}()
		memAwaitParked(t, <-id)
		o.mu.Unlock()
		<-done
	}
}

// memHolds locks each object's mutex with LockContext, holds it, unlocks
// it: every other one in this goroutine, which lives on, the others in a
// goroutine that exits afterwards.
//
//go:noinline
func memHolds(n int, freed, ctxFreed chan<- struct{}, big bool) {
	for i := 0; i < n; i++ {
		o := memNew(freed)
		ctx := context.Background()
		if big {
			ctx = memCtx(ctxFreed)
		}
		hold := func() {
			debugmutex.LockContext(ctx, &o.mu)
			runtime.Gosched()
			o.mu.Unlock()
		}
		if i%2 == 0 {
			hold()
			continue
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			hold()
		}()
		<-done
	}
}

// memInverted takes n pairs of objects' mutexes in both orders, one order in
// each of two goroutines one after the other (so nothing blocks): a
// lock-order inversion per pair, the first of them reported.
//
//go:noinline
func memInverted(n int, freed, ctxFreed chan<- struct{}, big bool) {
	ctx := func() context.Context {
		if big {
			return memCtx(ctxFreed)
		}
		return context.Background()
	}
	for i := 0; i < n; i += 2 {
		a, b := memNew(freed), memNew(freed)
		ctxA, ctxB := ctx(), ctx()
		done := make(chan struct{})
		go func() {
			defer close(done)
			debugmutex.LockContext(ctxA, &a.mu)
			debugmutex.LockContext(ctxB, &b.mu)
			b.mu.Unlock()
			a.mu.Unlock()
		}()
		<-done
		done = make(chan struct{})
		go func() {
			defer close(done)
			b.mu.Lock()
			a.mu.Lock()
			a.mu.Unlock()
			b.mu.Unlock()
		}()
		<-done
	}
}

func TestMemoryFreedAfterContendedWaits(t *testing.T) {
	freed := make(chan struct{}, 2*memObjects)
	ctxFreed := make(chan struct{}, 2*memObjects)
	warm := make(chan struct{}, 64) // the warm-up's cleanups, not counted
	// Warm up (lockscope's tables for waits, stacks and statistics are
	// allocated on first use, and bounded): the same, on small contexts.
	memContended(t, 8, warm, warm, false)

	base := memHeap()
	memContended(t, memObjects, freed, ctxFreed, true)
	memCheckFreed(t, base, freed, ctxFreed, memObjects)
}

func TestMemoryFreedAfterHolds(t *testing.T) {
	freed := make(chan struct{}, 2*memObjects)
	ctxFreed := make(chan struct{}, 2*memObjects)
	warm := make(chan struct{}, 64) // the warm-up's cleanups, not counted
	memHolds(8, warm, warm, false)

	base := memHeap()
	memHolds(memObjects, freed, ctxFreed, true)
	memCheckFreed(t, base, freed, ctxFreed, memObjects)
}

func TestMemoryFreedAfterLockOrderReport(t *testing.T) {
	freed := make(chan struct{}, 2*memObjects)
	ctxFreed := make(chan struct{}, 2*memObjects)
	warm := make(chan struct{}, 64) // the warm-up's cleanups, not counted
	// The warm-up makes the report; the measured pairs repeat it (counted,
	// not printed: same kind, same sites).
	reported := make(chan debugmutex.Report, 16)
	unregister := debugmutex.OnReport(func(r debugmutex.Report) {
		if r.Kind == debugmutex.KindLockOrder && memReportFromHere(r) {
			select {
			case reported <- r:
			default:
			}
		}
	})
	defer unregister()
	memInverted(8, warm, warm, false)
	select {
	case <-reported:
	default:
		if memLockOrderCount() == 0 {
			t.Fatalf("no lock-order report for the inverted pairs; reports: %v", debugmutex.Reports())
		}
	}

	before := memLockOrderCount()
	base := memHeap()
	memInverted(memObjects, freed, ctxFreed, true)
	if after := memLockOrderCount(); after <= before {
		t.Errorf("the measured inversions were not seen (the report's count stayed at %d)", after)
	} else {
		t.Logf("the lock-order report's count went from %d to %d", before, after)
	}
	memCheckFreed(t, base, freed, ctxFreed, memObjects)
}

// memReportFromHere says whether a lock-order report is about memInverted's locks.
func memReportFromHere(r debugmutex.Report) bool {
	for _, e := range r.Edges {
		for _, f := range append(append([]debugmutex.Frame(nil), e.FromStack...), e.ToStack...) {
			if strings.Contains(f.Function, "memInverted") {
				return true
			}
		}
	}
	for _, g := range r.Goroutines {
		for _, f := range g.Stack {
			if strings.Contains(f.Function, "memInverted") {
				return true
			}
		}
	}
	return strings.Contains(r.Summary, "memInverted")
}

// memLockOrderCount is how many times memInverted's inversion was seen.
func memLockOrderCount() int {
	n := 0
	for _, r := range debugmutex.Reports() {
		if r.Kind == debugmutex.KindLockOrder && memReportFromHere(r) {
			n += r.Count + 1
		}
	}
	return n
}
