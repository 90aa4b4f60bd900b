// Command instr runs one lock operation in a loop, and nothing else, for
// bench/instructions.sh to count its instructions under valgrind's callgrind
// (issue 20): the script runs it at two iteration counts and takes the
// difference, which cancels start-up and teardown.
//
//	instr -op lock -impl lockscope -n 400000
//	instr -op fresh -impl lockscope -n 200000 -prealloc 400000
//	instr -op fresh -impl lockscope -n 100000 -allocs   # allocations per op, no valgrind
//
// Every loop is a function of its own, reached through main.loop (both
// //go:noinline), calling the concrete types' methods: no interface dispatch
// on the measured path, so sync's inlined fast paths stay inlined, as in a
// user's program. The script counts the process totals, so what an op costs
// beyond its loop (the other goroutine of the hand-off, the scheduler) is in
// them too; callgrind's per-function costs are not reliable inside lockscope.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/lockscope/lockscope/debugmutex"
)

// An op is one operation's loop for each implementation; locks is how many
// lock operations one iteration makes (the nested ops report per lock).
type op struct {
	desc  string
	locks int
	sync  func(n int)
	ls    func(n int)
}

var ops = map[string]op{
	"lock":      {"Lock+Unlock (Mutex)", 1, lockSync, lockLS},
	"rlock":     {"RLock+RUnlock (RWMutex)", 1, rlockSync, rlockLS},
	"trylock":   {"TryLock+Unlock, success", 1, tryLockSync, tryLockLS},
	"tryfail":   {"TryLock failure (held by this goroutine)", 1, tryFailSync, tryFailLS},
	"nested4":   {"4 nested locks, per lock", 4, nested4Sync, nested4LS},
	"nested16":  {"16 nested locks, per lock", 16, nested16Sync, nested16LS},
	"fresh":     {"first use of a fresh Mutex (Lock+Unlock)", 1, freshSync, freshLS},
	"handoff":   {"contended hand-off, 2 goroutines (per hand-off)", 1, handoffSync, handoffLS},
	"lockctx":   {"LockContext+Unlock (sync: Lock+Unlock)", 1, lockCtxSync, lockCtxLS},
	"emptyloop": {"empty loop (overhead of the loop itself)", 1, emptyLoop, emptyLoop},
}

func main() {
	name := flag.String("op", "lock", "operation: "+strings.Join(opNames(), ", "))
	impl := flag.String("impl", "sync", "implementation: sync or lockscope")
	n := flag.Int("n", 200000, "iterations")
	allocs := flag.Bool("allocs", false, "print allocations per operation (runtime.MemStats), for a run without valgrind")
	verify := flag.Bool("verify", false, "handoff only: count the Locks that did not wait (they must all wait)")
	prealloc := flag.Int("prealloc", 0, "fresh only: allocate this many locks (at least n) before the loop, so that runs with different n allocate the same")
	list := flag.Bool("list", false, "print op<TAB>locks per iteration<TAB>description, one a line")
	flag.Parse()
	if *list {
		for _, k := range opNames() {
			fmt.Printf("%s\t%d\t%s\n", k, ops[k].locks, ops[k].desc)
		}
		return
	}
	o, ok := ops[*name]
	if !ok {
		fail("unknown op %q (want one of %s)", *name, strings.Join(opNames(), ", "))
	}
	run := o.sync
	switch *impl {
	case "sync":
	case "lockscope":
		run = o.ls
	default:
		fail("unknown impl %q (want sync or lockscope)", *impl)
	}
	if *name == "handoff" {
		// One P: the hand-off's schedule is then deterministic (see handoff).
		runtime.GOMAXPROCS(1)
		if *verify {
			notWaited := handoffVerify(*impl == "lockscope", *n)
			fmt.Printf("handoff %s: %d of %d Locks did not wait\n", *impl, notWaited, 2**n-1)
			if notWaited != 0 {
				os.Exit(1)
			}
			return
		}
	}
	if !*allocs {
		prepare(*name, *impl == "lockscope", max(*n, *prealloc))
		loop(run, *n)
		return
	}
	// Allocations: a first loop warms up (what lockscope does once per site
	// or per process), the second is counted.
	prepare(*name, *impl == "lockscope", 2**n)
	loop(run, *n)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	loop(run, *n)
	runtime.ReadMemStats(&after)
	ops := *n * o.locks
	if *name == "handoff" {
		ops = 2 * *n
	}
	fmt.Printf("%s\t%s\t%.3f allocs/op\t%.1f B/op\n", *name, *impl,
		float64(after.Mallocs-before.Mallocs)/float64(ops), float64(after.TotalAlloc-before.TotalAlloc)/float64(ops))
}

func opNames() []string {
	var names []string
	for k := range ops {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "instr: "+format+"\n", args...)
	os.Exit(2)
}

// loop is the one entry to every op's loop (for a profile's eyes).
//
//go:noinline
func loop(run func(int), n int) { run(n) }

//go:noinline
func emptyLoop(n int) {
	for i := 0; i < n; i++ {
		sink++
	}
}

var sink int

// Package-level locks, as most hot locks are; the nested ones in arrays.
var (
	smu  sync.Mutex
	lmu  debugmutex.Mutex
	srw  sync.RWMutex
	lrw  debugmutex.RWMutex
	sn4  [4]sync.Mutex
	ln4  [4]debugmutex.Mutex
	sn16 [16]sync.Mutex
	ln16 [16]debugmutex.Mutex

	sfresh []*sync.Mutex
	lfresh []*debugmutex.Mutex
)

// prepare does what an op needs before its loop, outside the measured loop
// but inside the process (so in both runs' totals, and cancelled).
func prepare(name string, ls bool, n int) {
	switch name {
	case "tryfail":
		if ls {
			lmu.Lock()
		} else {
			smu.Lock()
		}
	case "fresh":
		// Every lock its own object, as a lock in each new request or cache
		// entry is, all allocated before the loop (and, with GOGC=off, never
		// collected). The script's two runs allocate as many (-prealloc),
		// so that the difference of their totals does not count allocation.
		if ls {
			lfresh = make([]*debugmutex.Mutex, n)
			for i := range lfresh {
				lfresh[i] = new(debugmutex.Mutex)
			}
		} else {
			sfresh = make([]*sync.Mutex, n)
			for i := range sfresh {
				sfresh[i] = new(sync.Mutex)
			}
		}
	}
}

//go:noinline
func lockSync(n int) {
	for i := 0; i < n; i++ {
		smu.Lock()
		smu.Unlock()
	}
}

//go:noinline
func lockLS(n int) {
	for i := 0; i < n; i++ {
		lmu.Lock()
		lmu.Unlock()
	}
}

//go:noinline
func rlockSync(n int) {
	for i := 0; i < n; i++ {
		srw.RLock()
		srw.RUnlock()
	}
}

//go:noinline
func rlockLS(n int) {
	for i := 0; i < n; i++ {
		lrw.RLock()
		lrw.RUnlock()
	}
}

//go:noinline
func tryLockSync(n int) {
	for i := 0; i < n; i++ {
		if !smu.TryLock() {
			panic("TryLock of a free lock failed")
		}
		smu.Unlock()
	}
}

//go:noinline
func tryLockLS(n int) {
	for i := 0; i < n; i++ {
		if !lmu.TryLock() {
			panic("TryLock of a free lock failed")
		}
		lmu.Unlock()
	}
}

//go:noinline
func tryFailSync(n int) {
	for i := 0; i < n; i++ {
		if smu.TryLock() {
			panic("TryLock of a held lock succeeded")
		}
	}
}

//go:noinline
func tryFailLS(n int) {
	for i := 0; i < n; i++ {
		if lmu.TryLock() {
			panic("TryLock of a held lock succeeded")
		}
	}
}

//go:noinline
func nested4Sync(n int) {
	for i := 0; i < n; i++ {
		for j := range sn4 {
			sn4[j].Lock()
		}
		for j := len(sn4) - 1; j >= 0; j-- {
			sn4[j].Unlock()
		}
	}
}

//go:noinline
func nested4LS(n int) {
	for i := 0; i < n; i++ {
		for j := range ln4 {
			ln4[j].Lock()
		}
		for j := len(ln4) - 1; j >= 0; j-- {
			ln4[j].Unlock()
		}
	}
}

//go:noinline
func nested16Sync(n int) {
	for i := 0; i < n; i++ {
		for j := range sn16 {
			sn16[j].Lock()
		}
		for j := len(sn16) - 1; j >= 0; j-- {
			sn16[j].Unlock()
		}
	}
}

//go:noinline
func nested16LS(n int) {
	for i := 0; i < n; i++ {
		for j := range ln16 {
			ln16[j].Lock()
		}
		for j := len(ln16) - 1; j >= 0; j-- {
			ln16[j].Unlock()
		}
	}
}

// next is the first fresh lock not used yet.
var next int

//go:noinline
func freshSync(n int) {
	for _, m := range sfresh[next : next+n] {
		m.Lock()
		m.Unlock()
	}
	next += n
}

//go:noinline
func freshLS(n int) {
	for _, m := range lfresh[next : next+n] {
		m.Lock()
		m.Unlock()
	}
	next += n
}

// ctx is a plain background context: LockContext's own cost, without a span.
var ctx = context.Background()

//go:noinline
func lockCtxSync(n int) {
	for i := 0; i < n; i++ {
		smu.Lock()
		smu.Unlock()
	}
}

//go:noinline
func lockCtxLS(n int) {
	for i := 0; i < n; i++ {
		debugmutex.LockContext(ctx, &lmu)
		lmu.Unlock()
	}
}

// The hand-off: two goroutines take one Mutex in turn, n times each (2n
// acquisitions, the k'th by the main goroutine for odd k, by the other for
// even k), and every Lock but the very first waits: the holder yields until
// the other is queued on the lock (sync's waiter count, read from the lock's
// state word), unlocks, which wakes it, and yields until it has taken the
// lock (so as not to barge in before it). Per acquisition: one Lock that
// waits, one Unlock that wakes a waiter, and the Gosched calls of that
// coordination (the same for both implementations, usually two). The script
// divides by 2n. main sets GOMAXPROCS=1: no spinning in Lock, one schedule.
//
//go:noinline
func handoffSync(n int) {
	var mu sync.Mutex
	checkState(unsafe.Pointer(&mu), mu.Lock, mu.Unlock)
	var taken atomic.Int64
	done := make(chan struct{})
	mu.Lock() // acquisition 1, uncontended: the other is not started yet
	taken.Store(1)
	go func() {
		handoffSyncSide(&mu, &taken, 2, 2*n)
		close(done)
	}()
	handoffSyncSide(&mu, &taken, 1, 2*n)
	<-done
}

// handoffSyncSide makes acquisitions first, first+2, ... up to total; when
// first is 1, the first is made already.
//
//go:noinline
func handoffSyncSide(mu *sync.Mutex, taken *atomic.Int64, first, total int) {
	for k := first; k <= total; k += 2 {
		if k > 1 {
			mu.Lock()
			taken.Store(int64(k))
		}
		for k < total && waiters(unsafe.Pointer(mu)) == 0 {
			runtime.Gosched()
		}
		mu.Unlock()
		for k < total && taken.Load() == int64(k) {
			runtime.Gosched()
		}
	}
}

//go:noinline
func handoffLS(n int) {
	var mu debugmutex.Mutex
	checkState(unsafe.Pointer(&mu), mu.Lock, mu.Unlock)
	var taken atomic.Int64
	done := make(chan struct{})
	mu.Lock()
	taken.Store(1)
	go func() {
		handoffLSSide(&mu, &taken, 2, 2*n)
		close(done)
	}()
	handoffLSSide(&mu, &taken, 1, 2*n)
	<-done
}

//go:noinline
func handoffLSSide(mu *debugmutex.Mutex, taken *atomic.Int64, first, total int) {
	for k := first; k <= total; k += 2 {
		if k > 1 {
			mu.Lock()
			taken.Store(int64(k))
		}
		for k < total && waiters(unsafe.Pointer(mu)) == 0 {
			runtime.Gosched()
		}
		mu.Unlock()
		for k < total && taken.Load() == int64(k) {
			runtime.Gosched()
		}
	}
}

// waiters is the number of goroutines queued on the sync.Mutex at p: the
// state word of internal/sync.Mutex, its first field (and sync.Mutex is the
// first field of debugmutex.Mutex), holds it above three flag bits.
func waiters(p unsafe.Pointer) int32 {
	return atomic.LoadInt32((*int32)(p)) >> 3
}

// checkState fails unless the state word at p reads as waiters expects:
// locked bit set while held, all zero when free, no waiters either way.
func checkState(p unsafe.Pointer, lock, unlock func()) {
	state := func() int32 { return atomic.LoadInt32((*int32)(p)) }
	lock()
	held := state()
	unlock()
	if held != 1 || state() != 0 {
		fail("the lock's state word is not where waiters reads it (held %#x, free %#x)", held, state())
	}
}

// handoffVerify runs the hand-off's schedule with a TryLock before each Lock
// but the first, and counts the TryLocks that succeeded: Locks that would
// not have waited.
func handoffVerify(ls bool, n int) int {
	var l interface {
		Lock()
		Unlock()
		TryLock() bool
	} = new(sync.Mutex)
	if ls {
		l = new(debugmutex.Mutex)
	}
	p := reflect.ValueOf(l).UnsafePointer()
	checkState(p, l.Lock, l.Unlock)
	var taken, notWaited atomic.Int64
	side := func(first, total int) {
		for k := first; k <= total; k += 2 {
			if k > 1 {
				if l.TryLock() {
					notWaited.Add(1)
				} else {
					l.Lock()
				}
				taken.Store(int64(k))
			}
			for k < total && waiters(p) == 0 {
				runtime.Gosched()
			}
			l.Unlock()
			for k < total && taken.Load() == int64(k) {
				runtime.Gosched()
			}
		}
	}
	done := make(chan struct{})
	l.Lock()
	taken.Store(1)
	go func() {
		side(2, 2*n)
		close(done)
	}()
	side(1, 2*n)
	<-done
	return int(notWaited.Load())
}
