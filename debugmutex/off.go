//go:build nolockscope

package debugmutex

import (
	"context"
	"sync"

	"github.com/lockscope/lockscope/internal/record"
)

// Under the nolockscope build tag, lockscope compiles away: Mutex and RWMutex
// are the sync types themselves (aliases, so identical types and zero cost),
// and the rest of the API does nothing.
type (
	// Mutex is sync.Mutex under the nolockscope build tag.
	Mutex = sync.Mutex
	// RWMutex is sync.RWMutex under the nolockscope build tag.
	RWMutex = sync.RWMutex
)

// LockContext is l.Lock() under the nolockscope build tag.
func LockContext(_ context.Context, l sync.Locker) { l.Lock() }

// TryLockContext tries l under the nolockscope build tag, like TryLock.
func TryLockContext(_ context.Context, l sync.Locker) bool {
	switch l := l.(type) {
	case *sync.Mutex:
		return l.TryLock()
	case *sync.RWMutex:
		return l.TryLock()
	}
	return false
}

// SetName does nothing under the nolockscope build tag.
func SetName(sync.Locker, string) {}

// SetClass does nothing under the nolockscope build tag.
func SetClass(sync.Locker, string) {}

// Enabled reports false under the nolockscope build tag.
func Enabled() bool { return false }

// coreOf finds no recorded state under the nolockscope build tag.
func coreOf(sync.Locker) (*record.LockCore, string) { return nil, "" }
