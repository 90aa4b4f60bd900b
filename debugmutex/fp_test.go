//go:build amd64 || arm64

package debugmutex

import (
	"runtime"
	"slices"
	"testing"
	"unsafe"

	"github.com/lockscope/lockscope/internal/rt"
)

// The frame-pointer walk's own guards, on the platforms that walk frame
// pointers. (TestCgoCallback, cgo_test.go, has real junk from C.)

func TestStackBoundsAreTheRuntimes(t *testing.T) {
	if !rt.FpWalkOK {
		t.Fatal("stackBounds does not read runtime.g's stack bounds on this Go release: fpStack is falling back to runtime.Callers (update stackBounds)")
	}
	check := func() string {
		lo, hi := rt.StackBounds()
		var local [4]uintptr
		p := uintptr(unsafe.Pointer(&local[0]))
		if p < lo || p >= hi {
			return "a local variable is not inside the stack bounds"
		}
		if fp := uintptr(rt.Getfp()); fp < lo || fp >= hi {
			return "the frame pointer is not inside the stack bounds"
		}
		return ""
	}
	if msg := check(); msg != "" {
		t.Fatal(msg)
	}
	done := make(chan string)
	go func() { done <- check() }()
	if msg := <-done; msg != "" {
		t.Fatal("new goroutine:", msg)
	}
	// After the stack has grown (copied to a bigger one), the bounds are
	// the new stack's.
	go func() { done <- deep(200, check) }()
	if msg := <-done; msg != "" {
		t.Fatal("grown stack:", msg)
	}
}

//go:noinline
func deep(n int, f func() string) string {
	var pad [64]byte
	if n == 0 {
		return f()
	}
	return deep(n-1, f) + string(pad[:0])
}

// A Go goroutine's chain ends at a zero frame pointer, on its own stack: the
// walk must not mistake that end for a chain that left the stack (which
// would send every stack capture to runtime.Callers).
func TestFPWalkEndsAtTheGoroutinesFirstFrame(t *testing.T) {
	check := func() (int, bool) {
		var buf [256]uintptr
		return rt.FpWalk(rt.Getfp(), buf[:])
	}
	if n, off := check(); off || n == 0 {
		t.Fatalf("test goroutine: %d frames, off the stack: %v", n, off)
	}
	type res struct {
		n   int
		off bool
	}
	done := make(chan res)
	go func() { n, off := check(); done <- res{n, off} }()
	if r := <-done; r.off || r.n == 0 {
		t.Fatalf("new goroutine: %d frames, off the stack: %v", r.n, r.off)
	}
}

// chainEnd says what the last fake frame's saved frame pointer is: abs, or
// if rel is set the address of the rel'th word of the fake frames, plus add.
type chainEnd struct {
	abs uintptr
	rel bool
	w   uintptr
	add uintptr
}

// fakeChain lays out frame records in a local array (on this goroutine's
// stack), linked as a real chain would be, the last one's saved frame
// pointer set by end, and walks it. Between taking the array's address and
// the walk nothing is called that may grow (and so move) the stack.
//
//go:noinline
func fakeChain(t *testing.T, end chainEnd) ([]uintptr, bool) {
	var frames [8]uintptr
	var buf [8]uintptr
	base := uintptr(unsafe.Pointer(&frames[0]))
	lo, hi := rt.StackBounds()
	last := end.abs
	if end.rel {
		last = base + end.w*rt.PtrSize + end.add
	}
	frames[0] = base + 2*rt.PtrSize // saved frame pointer
	frames[1] = 0x111               // return address
	frames[2] = base + 4*rt.PtrSize
	frames[3] = 0x222
	frames[4] = last
	frames[5] = 0x333
	n, off := rt.FpWalk(unsafe.Pointer(&frames[0]), buf[:])
	if base < lo || base >= hi {
		t.Fatal("the fake frames are not on the goroutine stack: the test is broken")
	}
	return buf[:n], off
}

var fakeHeapFrame = new([2]uintptr)

func TestFPWalkStopsAtFramePointersOffTheStack(t *testing.T) {
	for _, c := range []struct {
		name string
		end  chainEnd
		off  bool
	}{
		{"end of chain", chainEnd{abs: 0}, false},
		{"unmapped", chainEnd{abs: 0x1008}, true},
		{"misaligned", chainEnd{rel: true, w: 6, add: 1}, true},
		{"below", chainEnd{rel: true, w: 0}, true},
		{"loop", chainEnd{rel: true, w: 4}, true},
		{"heap", chainEnd{abs: uintptr(unsafe.Pointer(fakeHeapFrame))}, true},
		{"far above", chainEnd{abs: ^uintptr(15)}, true},
	} {
		got, off := fakeChain(t, c.end)
		if want := []uintptr{0x111, 0x222, 0x333}; !slices.Equal(got, want) || off != c.off {
			t.Errorf("%s: walked %#x (off the stack: %v), want %#x (%v)", c.name, got, off, want, c.off)
		}
	}
	// A first frame pointer off the stack yields nothing.
	var buf [4]uintptr
	if n, off := rt.FpWalk(unsafe.Pointer(fakeHeapFrame), buf[:]); n != 0 || !off {
		t.Errorf("walk from a heap frame: %d frames, off %v", n, off)
	}
}

// fpStack gives the stack runtime.Callers gives, from the caller of the
// frame it starts at, one PC per physical frame; so do callersSite (its
// first two frames) and callersStack: the fallback of other platforms,
// checked here against the walk it stands in for.
func TestCallersFallbackMatchesTheFramePointerWalk(t *testing.T) {
	fromFP, fromCallers, pc1, pc2 := lockMethodLike()
	if len(fromFP) < 3 || len(fromCallers) < 3 {
		t.Fatalf("short stacks: %#x, %#x", fromFP, fromCallers)
	}
	// callersStack starts at lockMethodLike itself (a test file's frame is
	// the user's); the walk at its caller. (Further up, runtime.Callers
	// leaves out wrapper functions that the walk sees, such as
	// testing.(*T).Run.gowrap1.)
	if !slices.Equal(fromCallers[1:3], fromFP[:2]) {
		t.Errorf("frame-pointer walk %v\nruntime.Callers    %v", funcNames(fromFP), funcNames(fromCallers))
	}
	if got := funcNames(fromFP[:2]); !slices.Equal(got, []string{"github.com/lockscope/lockscope/debugmutex.TestCallersFallbackMatchesTheFramePointerWalk", "testing.tRunner"}) {
		t.Errorf("frame-pointer walk from lockMethodLike: %v", got)
	}
	if funcNames([]uintptr{pc1})[0] != "github.com/lockscope/lockscope/debugmutex.lockMethodLike" || pc2 != fromCallers[1] {
		t.Errorf("callersSite = %v, want lockMethodLike's PC and then %v", funcNames([]uintptr{pc1, pc2}), funcNames(fromCallers[1:2]))
	}
}

//go:noinline
func lockMethodLike() (fromFP, fromCallers []uintptr, pc1, pc2 uintptr) {
	var a, b [32]uintptr
	fp := rt.Getfp()
	n := rt.FpStack(fp, a[:])
	m := rt.CallersStack(b[:])
	pc1, pc2 = rt.CallersSite()
	return a[:n], b[:m], pc1, pc2
}

func funcNames(pcs []uintptr) []string {
	var out []string
	for _, pc := range pcs {
		if f := runtime.FuncForPC(pc - 1); f != nil {
			out = append(out, f.Name())
		} else {
			out = append(out, "?")
		}
	}
	return out
}

// callerPCs and unlockPC read the lock method's frame and its caller's.
func TestCallerPCsReadTheCallersFrame(t *testing.T) {
	pc1, pc2, upc := frameOfCallee()
	if pc1 == 0 || pc2 == 0 || upc != pc1 {
		t.Fatalf("callerPCs = %#x, %#x; unlockPC = %#x", pc1, pc2, upc)
	}
	if n := funcNames([]uintptr{pc1})[0]; n != "github.com/lockscope/lockscope/debugmutex.TestCallerPCsReadTheCallersFrame" {
		t.Errorf("pc1 is in %s, want the caller", n)
	}
	if n := funcNames([]uintptr{pc2})[0]; n != "testing.tRunner" {
		t.Errorf("pc2 is in %s, want the caller's caller", n)
	}
}

//go:noinline
func frameOfCallee() (pc1, pc2, upc uintptr) {
	fp := rt.Getfp()
	pc1, pc2 = rt.CallerPCs(fp)
	return pc1, pc2, rt.UnlockPC(fp)
}
