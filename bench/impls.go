// Package bench compares lockscope's locks with sync's and with
// github.com/sasha-s/go-deadlock, side by side in one run. It is a module of
// its own so that the main module does not depend on the peers it is
// measured against. Run ./run.sh for the ratio tables (benchstat).
package bench

import (
	"sync"

	deadlock "github.com/sasha-s/go-deadlock"

	"github.com/lockscope/lockscope/debugmutex"
)

// locker is what every benchmark needs of a mutex implementation.
type locker interface {
	Lock()
	Unlock()
	TryLock() bool
}

type rwlocker interface {
	RLock()
	RUnlock()
}

// impl is one implementation under test.
type impl struct {
	name  string
	newMu func() locker
	newRW func() rwlocker
}

// impls are the implementations each benchmark runs, as sub-benchmarks
// named impl=<name> (benchstat -col /impl makes them columns).
var impls = []impl{
	{"sync", func() locker { return new(sync.Mutex) }, func() rwlocker { return new(sync.RWMutex) }},
	{"lockscope", func() locker { return new(debugmutex.Mutex) }, func() rwlocker { return new(debugmutex.RWMutex) }},
	{"go-deadlock", func() locker { return new(deadlock.Mutex) }, func() rwlocker { return new(deadlock.RWMutex) }},
}
