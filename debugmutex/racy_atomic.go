//go:build race || !(amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x || wasm)

package debugmutex

import (
	"sync/atomic"
	"unsafe"
)

// See racy.go: under the race detector, and on platforms where an int64 is
// not one word, observer-visible fields are atomics.

func ldInt64(p *int64) int64                    { return atomic.LoadInt64(p) }
func stInt64(p *int64, v int64)                 { atomic.StoreInt64(p, v) }
func ldInt32(p *int32) int32                    { return atomic.LoadInt32(p) }
func stInt32(p *int32, v int32)                 { atomic.StoreInt32(p, v) }
func ldUintptr(p *uintptr) uintptr              { return atomic.LoadUintptr(p) }
func stUintptr(p *uintptr, v uintptr)           { atomic.StoreUintptr(p, v) }
func ldPtr(p *unsafe.Pointer) unsafe.Pointer    { return atomic.LoadPointer(p) }
func stPtr(p *unsafe.Pointer, v unsafe.Pointer) { atomic.StorePointer(p, v) }
func ldUint32(p *uint32) uint32                 { return atomic.LoadUint32(p) }
func stUint32(p *uint32, v uint32)              { atomic.StoreUint32(p, v) }
