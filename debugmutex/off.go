//go:build nolockscope

package debugmutex

import (
	"context"
	"sync"

	"github.com/lockscope/lockscope/internal/record"
)

// Under the nolockscope build tag, lockscope compiles away: Mutex, RWMutex
// and Once are the sync types themselves (aliases, so identical types and
// zero cost), OnceFunc, OnceValue and OnceValues are sync's, and the rest of
// the API does nothing.
type (
	// Mutex is sync.Mutex under the nolockscope build tag.
	Mutex = sync.Mutex
	// RWMutex is sync.RWMutex under the nolockscope build tag.
	RWMutex = sync.RWMutex
	// Once is sync.Once under the nolockscope build tag.
	Once = sync.Once
)

// OnceFunc is sync.OnceFunc under the nolockscope build tag.
func OnceFunc(f func()) func() { return sync.OnceFunc(f) }

// OnceValue is sync.OnceValue under the nolockscope build tag.
func OnceValue[T any](f func() T) func() T { return sync.OnceValue(f) }

// OnceValues is sync.OnceValues under the nolockscope build tag.
func OnceValues[T1, T2 any](f func() (T1, T2)) func() (T1, T2) { return sync.OnceValues(f) }

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
