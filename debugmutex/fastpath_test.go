//go:build !nolockscope

package debugmutex

import (
	"reflect"
	"runtime"
	"testing"
	"unsafe"

	"github.com/lockscope/lockscope/internal/engine"
	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/report"
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

func viewOf(g *record.Gstate, c *record.LockCore, id int64) entryView {
	e := &g.Inline[0]
	return entryView{
		n:          g.N,
		namesLock:  e.Lock == uintptr(unsafe.Pointer(c)),
		namesID:    e.LockID == c.Id && c.Id != 0,
		namesMeta:  e.Meta == c.Meta,
		hasSite:    e.Pc1 != 0,
		flags:      e.Flags,
		start:      e.Start,
		stack:      e.Stack,
		weight:     e.Weight,
		chain:      e.Chain,
		holderIsUs: c.Holder == id,
		released:   e.Lock == 0 && e.Meta == nil,
	}
}

// TestFastPathsRecordWhatTheGeneralPathRecords takes and releases one hold
// through the fast paths (fastAcquire, releaseFirst) and the same hold of a
// lock in the same state through the general ones (acquired, gstate.pop),
// and compares what each leaves for observers: they must not differ.
func TestFastPathsRecordWhatTheGeneralPathRecords(t *testing.T) {
	id := rt.CurGoid()
	g := record.LookupG(id)
	if g == nil || g.N != 0 {
		t.Fatalf("the test goroutine must hold nothing (record %p)", g)
	}
	fp := rt.Getfp()

	for _, kind := range []int{record.FastMutex, record.FastRead, record.FastRWWrite} {
		read := kind == record.FastRead
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
			rw.c.Countdown, rw.c.Period = 1000, 64
		}
		g.Rcount = 1000

		mode, typ := report.Write, record.MutexType
		switch kind {
		case record.FastRead:
			mode, typ = report.Read, record.RwMutexType
		case record.FastRWWrite:
			typ = record.RwMutexType
		}
		// For a Mutex's hold, the general path is given the same type.
		if read {
			fast.rw.RLock()
			general.rw.RLock()
		} else {
			fast.rw.Lock()
			general.rw.Lock()
		}
		if !fast.c.FastAcquire(g, id, fp, kind) {
			t.Fatalf("kind %d: fastAcquire declined a lock in the common state (state %#x, period %d)", kind, fast.c.State, fast.c.Period)
		}
		gotFast := viewOf(g, &fast.c, id)
		countFast, rcountFast := fast.c.Countdown, g.Rcount
		if !g.CanFastRelease(&fast.c, map[bool]int32{false: 0, true: record.FlagRead}[read]) {
			t.Fatalf("kind %d: canFastRelease refuses the hold fastAcquire just took", kind)
		}
		g.ReleaseFirst()
		relFast := viewOf(g, &fast.c, id)
		if !read {
			fast.c.Holder = 0 // as Unlock does before releaseFirst
		}

		g.Rcount = 1000
		engine.Acquired(&general.c, g, id, fp, typ, mode, false, nil)
		gotGeneral := viewOf(g, &general.c, id)
		countGeneral, rcountGeneral := general.c.Countdown, g.Rcount
		g.Pop(&g.Inline[0])
		relGeneral := viewOf(g, &general.c, id)
		if !read {
			general.c.Holder = 0
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
	id := rt.CurGoid()
	g := record.LookupG(id)
	fp := rt.Getfp()
	fresh := func() *RWMutex {
		rw := new(RWMutex)
		for range 3 {
			rw.Lock()
			rw.Unlock()
			rw.RLock()
			rw.RUnlock()
		}
		rw.c.Countdown, rw.c.Period = 1000, 64
		g.Rcount = 1000
		return rw
	}
	cases := []struct {
		name  string
		kind  int
		setup func(rw *RWMutex)
	}{
		{"write due for a sample", record.FastMutex, func(rw *RWMutex) { rw.c.Countdown = 1 }},
		{"read due for a sample", record.FastRead, func(*RWMutex) { g.Rcount = 1 }},
		{"read of a lock whose reads are timed every time", record.FastRead, func(rw *RWMutex) { rw.c.Period = 1 }},
		{"read of a lock whose read holds are handed off", record.FastRead, func(rw *RWMutex) { rw.c.State |= record.StateReadHandedOff }},
		{"first read of a lock", record.FastRead, func(rw *RWMutex) { rw.c.State &^= record.StateReadSeen }},
		{"a lock without an id", record.FastMutex,
			func(rw *RWMutex) { rw.c.Id = 0 }},
		{"RWMutex write the write guard has to note", record.FastRWWrite,
			func(rw *RWMutex) { rw.c.State &^= record.StateWriteUnguarded }},
		{"RWMutex write due for a sample", record.FastRWWrite,
			func(rw *RWMutex) { rw.c.Countdown = 1 }},
		{"a copied lock (another address's tag)", record.FastMutex, func(rw *RWMutex) { rw.c.State ^= 1 << 20 }},
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
			return fields{rw.c.State, rw.c.Countdown, rw.c.Period, g.Rcount, rw.c.Id, rw.c.Holder}
		}
		before := snap()
		if rw.c.FastAcquire(g, id, fp, tc.kind) {
			t.Errorf("%s: fastAcquire took it", tc.name)
			g.ReleaseFirst()
			continue
		}
		if snap() != before || g.N != 0 {
			t.Errorf("%s: fastAcquire declined but changed the lock or the record", tc.name)
		}
	}

	// Nested: the goroutine holds a lock already.
	var outer Mutex
	rw := fresh()
	outer.Lock()
	if rw.c.FastAcquire(g, id, fp, record.FastMutex) {
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
		if got := stacks.FramesOfPC(tc.pc).Internal; got != tc.want {
			t.Fatalf("%s: framesOfPC says internal=%v, want %v", tc.name, got, tc.want)
		}
		for i := range 2 {
			if got := stacks.IsInternalPC(tc.pc); got != tc.want {
				t.Errorf("%s: isInternalPC (call %d) = %v, want %v", tc.name, i+1, got, tc.want)
			}
		}
	}
}
