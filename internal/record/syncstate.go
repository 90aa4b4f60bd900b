package record

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/lockscope/lockscope/report"
)

// Whether sync itself would die of an unlock.
//
// An "unlock of unlocked" report must be one that sync would die of (the
// records alone can be wrong: a hold may be untracked, or handed to another
// goroutine). So the diagnosis asks the real lock, reading sync's own state
// words the way sync's unlock paths test them (src/internal/sync/mutex.go:
// state&mutexLocked; src/sync/rwmutex.go: readerCount). The layout is
// checked once at start against locks in known states; if it ever differs
// (a future Go release), lockscope makes no such report at all and lets
// sync's fatal error speak alone.

const rwmutexMaxReaders = 1 << 30 // sync.rwmutexMaxReaders

// syncRWMutexLayout mirrors sync.RWMutex's fields.
type syncRWMutexLayout struct {
	w           sync.Mutex
	writerSem   uint32
	readerSem   uint32
	readerCount atomic.Int32
	readerWait  atomic.Int32
}

var syncLayoutOK = checkSyncLayout()

func mutexState(m *sync.Mutex) int32 { return atomic.LoadInt32((*int32)(unsafe.Pointer(m))) }

func readerCount(rw *sync.RWMutex) int32 {
	return (*syncRWMutexLayout)(unsafe.Pointer(rw)).readerCount.Load()
}

func checkSyncLayout() bool {
	if unsafe.Sizeof(sync.RWMutex{}) != unsafe.Sizeof(syncRWMutexLayout{}) || unsafe.Sizeof(sync.Mutex{}) != 8 {
		return false
	}
	var m sync.Mutex
	if mutexState(&m)&1 != 0 {
		return false
	}
	m.Lock()
	locked := mutexState(&m)&1 == 1
	m.Unlock()
	if !locked || mutexState(&m)&1 != 0 {
		return false
	}
	var rw sync.RWMutex
	rw.RLock()
	rw.RLock()
	two := readerCount(&rw) == 2
	rw.RUnlock()
	rw.RUnlock()
	if !two || readerCount(&rw) != 0 {
		return false
	}
	rw.Lock()
	w := readerCount(&rw) == -rwmutexMaxReaders
	rw.Unlock()
	return w && readerCount(&rw) == 0
}

// The real sync lock sits just before the lockCore in Mutex and RWMutex.
// The layouts of Mutex and RWMutex: the real sync lock, then the lock's
// core. The lock types declare the same fields in the same order (a test
// checks the offsets), so that from a core the real lock is found.
type (
	mutexLayout struct {
		mu sync.Mutex
		c  LockCore
	}
	rwMutexLayout struct {
		rw sync.RWMutex
		c  LockCore
	}
)

var (
	mutexCoreOffset   = unsafe.Offsetof(mutexLayout{}.c)
	rwMutexCoreOffset = unsafe.Offsetof(rwMutexLayout{}.c)
)

// SyncUnlocked reports whether sync would throw if the lock of core c were
// unlocked now in mode: Unlock of an unlocked Mutex or of an RWMutex not
// write-locked, RUnlock of an RWMutex not read-locked.
func SyncUnlocked(c *LockCore, typ string, mode report.Mode) bool {
	if !syncLayoutOK {
		return false
	}
	if typ != RwMutexType { // a Mutex, or a Once's
		m := (*sync.Mutex)(unsafe.Add(unsafe.Pointer(c), -int(mutexCoreOffset)))
		return mutexState(m)&1 == 0
	}
	rw := (*sync.RWMutex)(unsafe.Add(unsafe.Pointer(c), -int(rwMutexCoreOffset)))
	r := readerCount(rw)
	if mode == report.Write {
		return r >= 0 // no writer has announced itself
	}
	return r == 0 || r == -rwmutexMaxReaders // no reader holds it
}
