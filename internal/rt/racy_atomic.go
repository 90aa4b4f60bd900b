//go:build race || !(amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x || wasm)

package rt

import (
	"sync/atomic"
	"unsafe"
)

// See racy.go: under the race detector, and on platforms where an int64 is
// not one word, observer-visible fields are atomics.

func LdInt64(p *int64) int64                    { return atomic.LoadInt64(p) }
func StInt64(p *int64, v int64)                 { atomic.StoreInt64(p, v) }
func LdInt32(p *int32) int32                    { return atomic.LoadInt32(p) }
func StInt32(p *int32, v int32)                 { atomic.StoreInt32(p, v) }
func LdUintptr(p *uintptr) uintptr              { return atomic.LoadUintptr(p) }
func StUintptr(p *uintptr, v uintptr)           { atomic.StoreUintptr(p, v) }
func LdPtr(p *unsafe.Pointer) unsafe.Pointer    { return atomic.LoadPointer(p) }
func StPtr(p *unsafe.Pointer, v unsafe.Pointer) { atomic.StorePointer(p, v) }
func LdUint32(p *uint32) uint32                 { return atomic.LoadUint32(p) }
func StUint32(p *uint32, v uint32)              { atomic.StoreUint32(p, v) }
