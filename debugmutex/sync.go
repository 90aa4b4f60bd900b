package debugmutex

import "sync"

// The rest of package sync, re-exported so that replacing
//
//	import "sync"
//
// with
//
//	import sync "github.com/lockscope/lockscope/debugmutex"
//
// compiles any program unchanged. These are the sync types themselves
// (aliases), not copies: a debugmutex.WaitGroup is a sync.WaitGroup. Mutex,
// RWMutex and Once (with OnceFunc, OnceValue and OnceValues) are
// lockscope's own (mutex.go, rwmutex.go, once.go; sync's under the
// nolockscope build tag, off.go).
type (
	// Cond is sync.Cond. Its L may be a *Mutex, a *RWMutex or an RLocker()
	// of this package: the lock Wait releases and retakes is recorded.
	Cond = sync.Cond
	// Locker is sync.Locker.
	Locker = sync.Locker
	// Map is sync.Map.
	Map = sync.Map
	// Pool is sync.Pool.
	Pool = sync.Pool
	// WaitGroup is sync.WaitGroup.
	WaitGroup = sync.WaitGroup
)

// NewCond returns a new Cond with Locker l (sync.NewCond).
func NewCond(l Locker) *Cond { return sync.NewCond(l) }
