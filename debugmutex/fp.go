//go:build amd64 || arm64

package debugmutex

import "unsafe"

// getfp returns the frame pointer of its caller (fp_$GOARCH.s).
func getfp() unsafe.Pointer

const ptrSize = unsafe.Sizeof(uintptr(0))

// callerPCs returns, for the frame fp of a function that is not inlined, the
// return address into its caller (pc1) and the one above that (pc2). Cost:
// three dependent loads. Frame pointers are maintained by the Go toolchain on
// amd64 and arm64; the runtime's own execution tracer and block profiler
// unwind the same way (runtime.fpTracebackPCs).
//
//go:nosplit
//go:nocheckptr
func callerPCs(fp unsafe.Pointer) (pc1, pc2 uintptr) {
	pc1 = *(*uintptr)(unsafe.Add(fp, ptrSize))
	if next := *(*unsafe.Pointer)(fp); next != nil {
		pc2 = *(*uintptr)(unsafe.Add(next, ptrSize))
	}
	return
}

// fpStack fills buf with return addresses walking frame pointers up from the
// frame fp, innermost first, like runtime.Callers. It stops at a nil frame
// pointer (the runtime zeroes it at goroutine entry and cgo callbacks).
//
//go:nosplit
//go:nocheckptr
func fpStack(fp unsafe.Pointer, buf []uintptr) int {
	i := 0
	for i < len(buf) && fp != nil {
		buf[i] = *(*uintptr)(unsafe.Add(fp, ptrSize))
		fp = *(*unsafe.Pointer)(fp)
		i++
	}
	return i
}
