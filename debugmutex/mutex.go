//go:build !nolockscope

package debugmutex

import (
	// The watchdog, the runtime's proof and the end-of-program checks: their
	// package arms the watchdog's timer at start.
	_ "github.com/lockscope/lockscope/internal/verdict"

	"context"
	"sync"
	"unsafe"

	"github.com/lockscope/lockscope/internal/config"
	"github.com/lockscope/lockscope/internal/engine"
	"github.com/lockscope/lockscope/internal/misuse"
	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/report"

	"github.com/petermattis/goid"
)

// A Mutex is a mutual exclusion lock, a drop-in for sync.Mutex. The zero
// value for a Mutex is an unlocked mutex.
//
// A Mutex must not be copied after first use (go vet's copylocks check flags
// it, as it does sync.Mutex).
//
// The real sync.Mutex sits inside and does all the locking, so Go's memory
// model holds unchanged: the n'th call to Unlock "synchronizes before" the
// m'th call to Lock for any n < m, a successful TryLock is equivalent to a
// call to Lock, and the race detector sees exactly what it would see with
// sync.Mutex (including starvation mode).
//
// What it records, and what that costs: each acquisition records the holder
// goroutine and the acquire site in the lock and in the holder's per-goroutine
// record (a few plain stores, no allocation, no global lock); a sample of
// acquisitions is timed (every acquisition of a lock whose holds are long);
// contended acquisitions record the wait, the waiter's stack and the holder,
// and are checked against the wait-for graph for deadlocks; nested
// acquisitions are checked against the lock-order graph once per distinct
// chain of held locks. The lock is 64 bytes on 64-bit platforms, one cache
// line (56 on 32-bit; sync.Mutex: 8). See the package documentation for measured costs, the switches that turn it off, and what
// is reported.
type Mutex struct {
	mu sync.Mutex
	c  record.LockCore
}

// Lock locks m. If the lock is already in use, the calling goroutine blocks
// until the mutex is available.
//
//go:noinline
func (m *Mutex) Lock() {
	if config.Disabled {
		m.mu.Lock()
		return
	}
	// The body of lock(fp, nil), written out: this is the path the
	// uncontended benchmarks measure, and the call it saves is ~3% of it.
	fp := rt.Getfp()
	id := goid.Get()
	if !rt.GoidFast {
		id = rt.GoidSlow()
	}
	g := record.ProbeG(id)
	if g == nil {
		g = record.LookupG(id)
	}
	if m.mu.TryLock() {
		if g == nil || !m.c.FastAcquire(g, id, fp, record.FastMutex) {
			engine.Acquired(&m.c, g, id, fp, record.MutexType, report.Write, false, nil)
		}
		return
	}
	m.lockSlow(fp, id, g, nil, record.MutexType)
}

// TryLock tries to lock m and reports whether it succeeded.
//
// Note that while correct uses of TryLock do exist, they are rare, and use
// of TryLock is often a sign of a deeper problem in a particular use of
// mutexes.
//
//go:noinline
func (m *Mutex) TryLock() bool {
	if config.Disabled {
		return m.mu.TryLock()
	}
	return m.tryLock(rt.Getfp(), nil)
}

// Unlock unlocks m. It is a run-time error if m is not locked on entry to
// Unlock; lockscope prints its diagnosis (who unlocked it last, and where)
// before sync's fatal error.
//
// A locked Mutex is not associated with a particular goroutine. It is allowed
// for one goroutine to lock a Mutex and then arrange for another goroutine to
// unlock it.
//
//go:noinline
func (m *Mutex) Unlock() {
	if config.Disabled {
		m.mu.Unlock()
		return
	}
	id := goid.Get()
	if !rt.GoidFast {
		id = rt.GoidSlow()
	}
	if m.c.ReleaseFast(id, rt.Getfp()) {
		m.mu.Unlock()
		return
	}
	if r := engine.UnlockWrite(&m.c, id, rt.Getfp(), record.MutexType); r != nil {
		m.mu.Unlock()
		panic(r)
	}
	m.mu.Unlock()
}

func (m *Mutex) lock(fp unsafe.Pointer, ctx context.Context) {
	id := rt.CurGoid()
	g := record.LookupG(id)
	if m.mu.TryLock() {
		engine.Acquired(&m.c, g, id, fp, record.MutexType, report.Write, false, ctx)
		return
	}
	m.lockSlow(fp, id, g, ctx, record.MutexType)
}

// lockSlow waits for the lock: outlined so that Lock stays small. typ is
// the lock's type: a Mutex, or a Once's (once.go).
func (m *Mutex) lockSlow(fp unsafe.Pointer, id int64, g *record.Gstate, ctx context.Context, typ string) {
	misuse.WaitCopied(&m.c, g, id, fp, typ, report.Write)
	w, r := engine.BeginWait(&m.c, g, id, fp, typ, report.Write)
	if r != nil {
		panic(r) // LOCKSCOPE_ON_REPORT=panic: before blocking, the lock untouched
	}
	m.mu.Lock()
	stk := record.EndWait(&m.c, w, id, report.Write, ctx)
	engine.AcquiredStack(&m.c, g, id, fp, typ, report.Write, false, ctx, true, stk)
}

func (m *Mutex) tryLock(fp unsafe.Pointer, ctx context.Context) bool {
	if m.mu.TryLock() {
		id := rt.CurGoid()
		engine.Acquired(&m.c, record.LookupG(id), id, fp, record.MutexType, report.Write, true, ctx)
		return true
	}
	engine.TryFailed(&m.c, fp, record.MutexType, report.Write)
	return false
}

// Compile-time checks that the drop-in types are sync.Lockers.
var (
	_ sync.Locker = (*Mutex)(nil)
	_ sync.Locker = (*RWMutex)(nil)
)

// LockContext locks l (a *Mutex, a *RWMutex for writing, or an RLocker() for
// reading) like l.Lock(), and attaches ctx to the wait and the hold: package
// exporter makes their spans children of the span in ctx. sync's API has no
// context; a service that wants its lock waits under its request spans calls
// LockContext(ctx, &mu) where it used to call mu.Lock(). Other Lockers are
// just locked. Under the nolockscope build tag it is l.Lock().
//
//go:noinline
func LockContext(ctx context.Context, l sync.Locker) {
	if config.Disabled {
		l.Lock()
		return
	}
	switch l := l.(type) {
	case *Mutex:
		l.lock(rt.Getfp(), ctx)
	case *RWMutex:
		l.lock(rt.Getfp(), ctx)
	case *rlocker:
		(*RWMutex)(l).rlock(rt.Getfp(), ctx)
	default:
		l.Lock()
	}
}

// TryLockContext is TryLock (TryRLock for an RLocker()) with a context, like
// LockContext. For Lockers of other types it reports false without locking.
//
//go:noinline
func TryLockContext(ctx context.Context, l sync.Locker) bool {
	if config.Disabled {
		return tryLocker(l)
	}
	switch l := l.(type) {
	case *Mutex:
		return l.tryLock(rt.Getfp(), ctx)
	case *RWMutex:
		return l.tryLock(rt.Getfp(), ctx)
	case *rlocker:
		return (*RWMutex)(l).tryRLock(rt.Getfp(), ctx)
	}
	return false
}

func tryLocker(l sync.Locker) bool {
	switch l := l.(type) {
	case *Mutex:
		return l.mu.TryLock()
	case *RWMutex:
		return l.rw.TryLock()
	case *rlocker:
		return l.rw.TryRLock()
	}
	return false
}

// coreOf returns the recorded state of a lockscope lock, or nil.
func coreOf(l sync.Locker) (*record.LockCore, string) {
	switch l := l.(type) {
	case *Mutex:
		return &l.c, record.MutexType
	case *RWMutex:
		return &l.c, record.RwMutexType
	case *rlocker:
		return &l.c, record.RwMutexType
	}
	return nil, ""
}

// SetName gives a lock a name that reports, profiles and spans use instead
// of its first acquire site, e.g. SetName(&c.mu, "cache.mu"). l is a *Mutex,
// a *RWMutex or an RLocker() of one; other Lockers are ignored. Call it
// before or after first use; it is cheap and safe from any goroutine.
func SetName(l sync.Locker, name string) {
	c, typ := coreOf(l)
	if c == nil {
		return
	}
	c.SetName(typ, name)
}

// SetClass puts a lock in a lock class of its own naming, instead of the
// class of its declaration (the struct field or package variable its lock
// call names: "example.com/bank.Bank.accounts"). Lock classes are how
// lockscope finds a lock-order inversion taken on different instances (one
// Bank locked accounts then ledger, another ledger then accounts): every
// Bank on which both run at once deadlocks. Give two locks of one
// declaration different classes where their order is by design (a tree's
// parent and child nodes: SetClass(&child.mu, "Node.mu/child")), or two
// declarations one class where they are one lock in spirit. l is a *Mutex,
// a *RWMutex or an RLocker() of one; other Lockers are ignored. Call it
// before the lock is first held with another.
func SetClass(l sync.Locker, class string) {
	c, typ := coreOf(l)
	if c == nil {
		return
	}
	c.SetClass(typ, class)
}

// Enabled reports whether lockscope is recording: false under the
// nolockscope build tag or when LOCKSCOPE=off.
func Enabled() bool { return !config.Disabled }
