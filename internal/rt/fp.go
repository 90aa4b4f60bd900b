//go:build amd64 || arm64

package rt

import "unsafe"

// Frame pointers. On amd64 and arm64 the Go toolchain keeps a frame-pointer
// chain: every Go function with a frame saves its caller's frame pointer at
// 0(fp) and has its return address at ptrSize(fp). The runtime's execution
// tracer and block profiler unwind the same way (runtime.fpTracebackPCs).
//
// The lock methods hand down the frame pointer of their own frame (getfp,
// called by the exported method, which is not inlined). Everything that
// uses it goes through callerPCs, unlockPC and fpStack, which are the only
// functions that dereference it; on other platforms (fp_other.go) getfp is
// nil and they use runtime.Callers instead (callers.go).

// Getfp returns the frame pointer of its caller (fp_$GOARCH.s).
func Getfp() unsafe.Pointer

// getg returns the current goroutine's runtime.g (fp_$GOARCH.s), as
// github.com/petermattis/goid does: TLS on amd64, the g register on arm64.
// Only its first field is read (stackBounds).
func getg() unsafe.Pointer

const PtrSize = unsafe.Sizeof(uintptr(0))

// CallerPCs returns, for the frame fp of a lock method that is not inlined,
// the return address into its caller (pc1) and the one above that (pc2).
// Cost: three dependent loads.
//
// Both loads are of frames the Go toolchain made: fp is the lock method's
// own frame, and its caller is Go code (the exported methods are only ever
// called from Go, also in a cgo callback, where C calls an exported Go
// function that calls them), whose frame pointer the compiler (or the
// assembler, for Go assembly with a frame) keeps. Junk frame pointers
// only come further up, past a cgo callback's runtime frames: fpStack
// checks every step there. The checks below cost a compare and keep pc2
// from being read out of a chain that is not a chain.
//
//go:nosplit
//go:nocheckptr
func CallerPCs(fp unsafe.Pointer) (pc1, pc2 uintptr) {
	pc1 = *(*uintptr)(unsafe.Add(fp, PtrSize))
	if next := *(*uintptr)(fp); next > uintptr(fp) && next%PtrSize == 0 {
		pc2 = *(*uintptr)(unsafe.Add(fp, next-uintptr(fp)+PtrSize))
	}
	return
}

// UnlockPC returns, for the frame fp of a lock method that is not inlined,
// the return address into its caller: callerPCs's pc1, in one load.
//
//go:nosplit
//go:nocheckptr
func UnlockPC(fp unsafe.Pointer) uintptr {
	return *(*uintptr)(unsafe.Add(fp, PtrSize))
}

// FpStack fills buf with return addresses walking frame pointers up from
// the frame fp (a lock method's), innermost first, one per physical frame,
// like runtime.fpTracebackPCs. It returns the number written.
//
// Only frames on the current goroutine's stack are followed. The chain of a
// goroutine ends with a zero saved frame pointer (the runtime zeroes it
// where it starts a goroutine), but not every chain stays on the goroutine
// stack: in a cgo callback (C calling an exported Go function) the runtime's
// cgocallbackg frame links to cgocallback's frame on the system stack, and
// that to whatever the C code had in the frame-pointer register, which C
// compiled with -fomit-frame-pointer (gcc's default at -O2 on amd64) uses
// as a general-purpose register: following it faults ("unexpected fault
// address"). The runtime itself refuses frame-pointer unwinding when cgo is
// on the stack (runtime/tracestack.go traceStack and runtime/mprof.go
// saveblockevent check m.hasCgoOnStack, m.ncgo > 0 || m.isextra), but m is
// out of reach here and its layout changes between releases. The stack
// bounds are not: they are runtime.g's first field (g.stack, [lo, hi),
// "offset known to runtime/cgo"), checked against a real frame at start
// (fpWalkOK). So each step must land in [lo, hi), aligned, strictly above
// the previous frame (a stack grows down, so callers' frames are higher;
// this also ends any loop).
//
// A chain that leaves the goroutine stack that way is one with cgo (or
// something else not Go) on it: the walk stops there, without reading
// anything off the stack, and the stack is taken again with
// runtime.Callers, which knows how the runtime links a callback to the Go
// code that called C. That costs a microsecond or so, on slow paths, in
// cgo callbacks only. A junk value that happens to fall inside the
// goroutine's stack is read as memory that is mapped: at worst it gives a
// wrong PC, never a fault.
func FpStack(fp unsafe.Pointer, buf []uintptr) int {
	if !FpWalkOK {
		return CallersStack(buf)
	}
	n, off := FpWalk(fp, buf)
	if off {
		return CallersStack(buf)
	}
	return n
}

// FpWalk is fpStack's walk. off reports that it stopped at a frame pointer
// off the goroutine stack (or misaligned, or not above the last one)
// rather than at the end of the chain or of buf.
//
// The goroutine's stack does not move during the walk: stacks move only
// when they grow (in a function prologue; this function is nosplit and
// calls nothing in the loop) or shrink (at a synchronous safe point).
//
//go:nosplit
//go:nocheckptr
func FpWalk(fp unsafe.Pointer, buf []uintptr) (n int, off bool) {
	lo, hi := StackBounds()
	// Frame addresses are kept as uintptrs and read as fp plus an offset:
	// a value not yet checked must never sit in a pointer-typed variable
	// (the garbage collector would see it).
	base := uintptr(fp)
	p := base
	for n < len(buf) {
		if p < lo || p >= hi-PtrSize || p%PtrSize != 0 {
			return n, true
		}
		buf[n] = *(*uintptr)(unsafe.Add(fp, p-base+PtrSize))
		n++
		next := *(*uintptr)(unsafe.Add(fp, p-base))
		if next == 0 { // a goroutine's first frame
			return n, false
		}
		if next <= p {
			return n, true
		}
		p = next
	}
	return n, false
}

// StackBounds returns the current goroutine's stack, [lo, hi): runtime.g's
// first field, g.stack (runtime/runtime2.go).
//
//go:nosplit
//go:nocheckptr
func StackBounds() (lo, hi uintptr) {
	g := getg()
	return *(*uintptr)(g), *(*uintptr)(unsafe.Add(g, PtrSize))
}

// OnOwnStack reports whether p is on the current goroutine's stack, and
// whether that is known (stackBounds checked at start).
func OnOwnStack(p uintptr) (on, known bool) {
	if !FpWalkOK {
		return false, false
	}
	lo, hi := StackBounds()
	return p >= lo && p < hi, true
}

// FpWalkOK says that stackBounds reads the runtime's g.stack: checked at
// start on two goroutines, like goidFast. If a Go release moved the field,
// fpStack falls back to runtime.Callers rather than walk unchecked.
var FpWalkOK = checkStackBounds()

func checkStackBounds() bool {
	ok := stackBoundsHold()
	done := make(chan bool)
	go func() { done <- stackBoundsHold() }()
	return <-done && ok
}

// stackBoundsHold reports whether stackBounds contains this function's
// frame and its caller's: frames the Go toolchain made, on the goroutine
// stack.
//
//go:noinline
//go:nocheckptr
func stackBoundsHold() bool {
	lo, hi := StackBounds()
	fp := Getfp()
	p := uintptr(fp)
	if lo == 0 || lo >= hi || lo%PtrSize != 0 || hi%PtrSize != 0 || p < lo || p >= hi-PtrSize {
		return false
	}
	next := *(*uintptr)(fp)
	return next > p && next < hi
}
