//go:build !amd64 && !arm64

package rt

import "unsafe"

// Where the Go toolchain keeps no frame-pointer chain (every GOARCH but
// amd64 and arm64), getfp is nil and the functions that would walk it ask
// runtime.Callers instead (callers.go): slower, portable, and the same
// answers. No code may dereference fp itself: callerPCs, unlockPC and
// fpStack are the only readers of it.

const ptrSize = unsafe.Sizeof(uintptr(0))

// OnOwnStack cannot tell, here, whether p is on the current goroutine's
// stack.
func OnOwnStack(uintptr) (on, known bool) { return false, false }

// Getfp has no frame pointer to give on this platform.
func Getfp() unsafe.Pointer { return nil }

// CallerPCs returns the user's call site of the lock method running (pc1,
// the first frame outside lockscope) and the return address above it.
func CallerPCs(unsafe.Pointer) (pc1, pc2 uintptr) { return CallersSite() }

// UnlockPC returns the user's call site of the unlock method running.
func UnlockPC(unsafe.Pointer) uintptr {
	pc1, _ := CallersSite()
	return pc1
}

// FpStack fills buf with the user's stack below the lock method running,
// one return address per physical frame, innermost first.
func FpStack(_ unsafe.Pointer, buf []uintptr) int { return CallersStack(buf) }
