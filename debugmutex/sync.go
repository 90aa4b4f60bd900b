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
// (aliases), not copies: a debugmutex.WaitGroup is a sync.WaitGroup.
type (
	// Cond is sync.Cond. Its L may be a *Mutex, a *RWMutex or an RLocker()
	// of this package: the lock Wait releases and retakes is recorded.
	Cond = sync.Cond
	// Locker is sync.Locker.
	Locker = sync.Locker
	// Map is sync.Map.
	Map = sync.Map
	// Once is sync.Once.
	Once = sync.Once
	// Pool is sync.Pool.
	Pool = sync.Pool
	// WaitGroup is sync.WaitGroup.
	WaitGroup = sync.WaitGroup
)

// NewCond returns a new Cond with Locker l (sync.NewCond).
func NewCond(l Locker) *Cond { return sync.NewCond(l) }

// OnceFunc returns a function that invokes f only once (sync.OnceFunc).
func OnceFunc(f func()) func() { return sync.OnceFunc(f) }

// OnceValue returns a function that invokes f only once and returns the
// value returned by f (sync.OnceValue).
func OnceValue[T any](f func() T) func() T { return sync.OnceValue(f) }

// OnceValues returns a function that invokes f only once and returns the
// values returned by f (sync.OnceValues).
func OnceValues[T1, T2 any](f func() (T1, T2)) func() (T1, T2) { return sync.OnceValues(f) }
