//go:build !race

package debugmutex

// Word-sized fields that the locking goroutine writes and observers (the
// watchdog, Snapshot, waiters) read without holding the lock go through these
// helpers. Without the race detector they are plain loads and stores: Go's
// memory model guarantees that a word-sized racy read observes some value
// actually written (no tearing), which is all an observer needs, and plain
// stores keep the fast path free of the ~2 ns XCHG an atomic store costs.
// Under -race (racy_race.go) they are atomics, so the race detector reports
// races in the user's code and never in lockscope's bookkeeping.

import "unsafe"

func ldInt64(p *int64) int64                    { return *p }
func stInt64(p *int64, v int64)                 { *p = v }
func ldInt32(p *int32) int32                    { return *p }
func stInt32(p *int32, v int32)                 { *p = v }
func ldUintptr(p *uintptr) uintptr              { return *p }
func stUintptr(p *uintptr, v uintptr)           { *p = v }
func ldPtr(p *unsafe.Pointer) unsafe.Pointer    { return *p }
func stPtr(p *unsafe.Pointer, v unsafe.Pointer) { *p = v }
func ldUint32(p *uint32) uint32                 { return *p }
func stUint32(p *uint32, v uint32)              { *p = v }
