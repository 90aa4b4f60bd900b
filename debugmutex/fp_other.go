//go:build !amd64 && !arm64

package debugmutex

import (
	"runtime"
	"unsafe"
)

const ptrSize = unsafe.Sizeof(uintptr(0))

// getfp has no frame pointer to give on this platform: the functions below
// fall back to runtime.Callers, which is portable and slower.
func getfp() unsafe.Pointer { return nil }

func callerPCs(unsafe.Pointer) (pc1, pc2 uintptr) {
	var pcs [2]uintptr
	// Skip runtime.Callers, callerPCs and the recording function.
	runtime.Callers(3, pcs[:])
	return pcs[0], pcs[1]
}

func fpStack(_ unsafe.Pointer, buf []uintptr) int {
	return runtime.Callers(3, buf)
}
