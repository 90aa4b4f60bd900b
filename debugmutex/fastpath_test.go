//go:build !nolockscope

package debugmutex

import (
	"reflect"
	"runtime"
	"testing"
	"unsafe"
)

// entryView is what an observer (a report, the watchdog, the wait-for
// search) can read of a held entry, less what differs between two locks
// (their address and id, given as booleans: the entry names its own lock).
type entryView struct {
	n                    int32
	namesLock, namesID   bool
	namesMeta, hasSite   bool
	flags                int32
	start                int64
	stack                uint32
	weight               int32
	chain                uint64
	holderIsUs, released bool
}

func viewOf(g *gstate, c *lockCore, id int64) entryView {
	e := &g.inline[0]
	return entryView{
		n:          g.n,
		namesLock:  e.lock == uintptr(unsafe.Pointer(c)),
		namesID:    e.lockID == c.id && c.id != 0,
		namesMeta:  e.meta == c.meta,
		hasSite:    e.pc1 != 0,
		flags:      e.flags,
		start:      e.start,
		stack:      e.stack,
		weight:     e.weight,
		chain:      e.chain,
		holderIsUs: c.holder == id,
		released:   e.lock == 0 && e.meta == nil,
	}
}

// TestFastPathsRecordWhatTheGeneralPathRecords takes and releases one hold
// through the fast paths (fastAcquire, releaseFirst) and the same hold of a
// lock in the same state through the general ones (acquired, gstate.pop),
// and compares what each leaves for observers: they must not differ.
func TestFastPathsRecordWhatTheGeneralPathRecords(t *testing.T) {
	id := curGoid()
	g := lookupG(id)
	if g == nil || g.n != 0 {
		t.Fatalf("the test goroutine must hold nothing (record %p)", g)
	}
	fp := getfp()

	for _, kind := range []int{fastMutex, fastRead, fastRWWrite} {
		read := kind == fastRead
		var fast, general RWMutex
		// Past first use, contended never, read before (so its reads are
		// known), and not due for a sample on either path.
		for _, rw := range []*RWMutex{&fast, &general} {
			for range 3 {
				rw.Lock()
				rw.Unlock()
				rw.RLock()
				rw.RUnlock()
			}
			rw.c.countdown, rw.c.period = 1000, 64
		}
		g.rcount = 1000

		mode, typ := Write, mutexType
		switch kind {
		case fastRead:
			mode, typ = Read, rwMutexType
		case fastRWWrite:
			typ = rwMutexType
		}
		// For a Mutex's hold, the general path is given the same type.
		if read {
			fast.rw.RLock()
			general.rw.RLock()
		} else {
			fast.rw.Lock()
			general.rw.Lock()
		}
		if !fast.c.fastAcquire(g, id, fp, kind) {
			t.Fatalf("kind %d: fastAcquire declined a lock in the common state (state %#x, period %d)", kind, fast.c.state, fast.c.period)
		}
		gotFast := viewOf(g, &fast.c, id)
		countFast, rcountFast := fast.c.countdown, g.rcount
		if !g.canFastRelease(&fast.c, map[bool]int32{false: 0, true: flagRead}[read]) {
			t.Fatalf("kind %d: canFastRelease refuses the hold fastAcquire just took", kind)
		}
		g.releaseFirst()
		relFast := viewOf(g, &fast.c, id)
		if !read {
			fast.c.holder = 0 // as Unlock does before releaseFirst
		}

		g.rcount = 1000
		acquired(&general.c, g, id, fp, typ, mode, false, nil)
		gotGeneral := viewOf(g, &general.c, id)
		countGeneral, rcountGeneral := general.c.countdown, g.rcount
		g.pop(&g.inline[0])
		relGeneral := viewOf(g, &general.c, id)
		if !read {
			general.c.holder = 0
		}

		if gotFast != gotGeneral {
			t.Errorf("kind %d: held entry differs:\n fast    %+v\n general %+v", kind, gotFast, gotGeneral)
		}
		if countFast != countGeneral || rcountFast != rcountGeneral {
			t.Errorf("kind %d: sampling countdowns differ: fast %d/%d, general %d/%d", kind, countFast, rcountFast, countGeneral, rcountGeneral)
		}
		if relFast != relGeneral {
			t.Errorf("kind %d: released entry differs:\n fast    %+v\n general %+v", kind, relFast, relGeneral)
		}
		if !gotFast.namesLock || !gotFast.namesID || !gotFast.hasSite || gotFast.n != 1 {
			t.Errorf("kind %d: the hold does not name its lock, id and site: %+v", kind, gotFast)
		}
		if read {
			fast.rw.RUnlock()
			general.rw.RUnlock()
		} else {
			fast.rw.Unlock()
			general.rw.Unlock()
		}
	}
}

// TestFastPathDeclines: every state the fast path does not handle sends
// the acquisition to the general path, untouched.
func TestFastPathDeclines(t *testing.T) {
	id := curGoid()
	g := lookupG(id)
	fp := getfp()
	fresh := func() *RWMutex {
		rw := new(RWMutex)
		for range 3 {
			rw.Lock()
			rw.Unlock()
			rw.RLock()
			rw.RUnlock()
		}
		rw.c.countdown, rw.c.period = 1000, 64
		g.rcount = 1000
		return rw
	}
	cases := []struct {
		name  string
		kind  int
		setup func(rw *RWMutex)
	}{
		{"write due for a sample", fastMutex, func(rw *RWMutex) { rw.c.countdown = 1 }},
		{"read due for a sample", fastRead, func(*RWMutex) { g.rcount = 1 }},
		{"read of a lock whose reads are timed every time", fastRead, func(rw *RWMutex) { rw.c.period = 1 }},
		{"read of a lock whose read holds are handed off", fastRead, func(rw *RWMutex) { rw.c.state |= stateReadHandedOff }},
		{"first read of a lock", fastRead, func(rw *RWMutex) { rw.c.state &^= stateReadSeen }},
		{"a lock without an id", fastMutex,
			func(rw *RWMutex) { rw.c.id = 0 }},
		{"RWMutex write the write guard has to note", fastRWWrite,
			func(rw *RWMutex) { rw.c.state &^= stateWriteUnguarded }},
		{"RWMutex write due for a sample", fastRWWrite,
			func(rw *RWMutex) { rw.c.countdown = 1 }},
		{"a copied lock (another address's tag)", fastMutex, func(rw *RWMutex) { rw.c.state ^= 1 << 20 }},
	}
	for _, tc := range cases {
		rw := fresh()
		tc.setup(rw)
		type fields struct {
			state, countdown, period, rcount int32
			id                               uint64
			holder                           int64
		}
		snap := func() fields {
			return fields{rw.c.state, rw.c.countdown, rw.c.period, g.rcount, rw.c.id, rw.c.holder}
		}
		before := snap()
		if rw.c.fastAcquire(g, id, fp, tc.kind) {
			t.Errorf("%s: fastAcquire took it", tc.name)
			g.releaseFirst()
			continue
		}
		if snap() != before || g.n != 0 {
			t.Errorf("%s: fastAcquire declined but changed the lock or the record", tc.name)
		}
	}

	// Nested: the goroutine holds a lock already.
	var outer Mutex
	rw := fresh()
	outer.Lock()
	if rw.c.fastAcquire(g, id, fp, fastMutex) {
		t.Errorf("nested acquisition: fastAcquire took it")
	}
	outer.Unlock()
}

// TestInternalPCCacheAgreesWithSymbolization: the cached answer of
// isInternalPC, asked twice (a miss, then a hit), is framesOfPC's.
func TestInternalPCCacheAgreesWithSymbolization(t *testing.T) {
	here, _, _, _ := runtime.Caller(0)
	inLock := reflect.ValueOf((*Mutex).Lock).Pointer() + 1
	for _, tc := range []struct {
		name string
		pc   uintptr
		want bool
	}{{"the test function", here, false}, {"(*Mutex).Lock", inLock, true}} {
		if got := framesOfPC(tc.pc).internal; got != tc.want {
			t.Fatalf("%s: framesOfPC says internal=%v, want %v", tc.name, got, tc.want)
		}
		for i := range 2 {
			if got := isInternalPC(tc.pc); got != tc.want {
				t.Errorf("%s: isInternalPC (call %d) = %v, want %v", tc.name, i+1, got, tc.want)
			}
		}
	}
}
