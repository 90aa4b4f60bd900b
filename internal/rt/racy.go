//go:build !race && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x || wasm)

package rt

// Fields that the locking goroutine writes and observers (the watchdog,
// Snapshot, waiters) read without holding the lock go through these helpers.
// Without the race detector, on 64-bit platforms, they are plain loads and
// stores: Go's memory model guarantees that a racy read of a word-sized (or
// smaller) memory location observes some value actually written (no
// tearing), which is all an observer needs, and plain stores keep the fast
// path free of the ~2 ns XCHG an atomic store costs.
//
// Elsewhere they are atomics (racy_atomic.go): under -race, so that the race
// detector reports races in the user's code and never in lockscope's
// bookkeeping; and on 32-bit platforms (386, arm, mips, mipsle, ...), where
// an int64 is two words and a plain load may see half of one store and half
// of another. The list of 64-bit GOARCHes above is written out (there is no
// build tag for the word size); a GOARCH not in it gets the atomics, which
// are right everywhere. On 32-bit platforms a 64-bit atomic needs its
// operand 8-byte aligned (sync/atomic's "bugs" section): fields passed to
// ldInt64/stInt64 must be, or it panics ("unaligned 64-bit atomic
// operation").

import "unsafe"

func LdInt64(p *int64) int64                    { return *p }
func StInt64(p *int64, v int64)                 { *p = v }
func LdInt32(p *int32) int32                    { return *p }
func StInt32(p *int32, v int32)                 { *p = v }
func LdUintptr(p *uintptr) uintptr              { return *p }
func StUintptr(p *uintptr, v uintptr)           { *p = v }
func LdPtr(p *unsafe.Pointer) unsafe.Pointer    { return *p }
func StPtr(p *unsafe.Pointer, v unsafe.Pointer) { *p = v }
func LdUint32(p *uint32) uint32                 { return *p }
func StUint32(p *uint32, v uint32)              { *p = v }
