package rt

import (
	"runtime"
	"strings"
	"sync/atomic"
)

// The runtime.Callers fallback for callerPCs, unlockPC and fpStack, used
// where there is no frame-pointer chain (fp_other.go) and where the stack
// bounds that make a frame-pointer walk safe cannot be read (fp.go,
// fpWalkOK). A frame-pointer walk starts at the lock method's frame, so it
// knows where the user's code begins; runtime.Callers starts wherever it is
// called, however deep inside lockscope that is (Lock -> lockSlow ->
// beginWait -> captureStack -> fpStack...). So these skip every frame of
// lockscope's own code, innermost first, and start at the first frame that
// is not: the caller of the lock method, whatever the path that got here.
// A frame is lockscope's when its function is in this package and is not
// defined in a _test.go file (the package's own tests lock like users do).

// LockscopePkg is the path of package debugmutex and a dot, as it prefixes
// its functions' names ("github.com/lockscope/lockscope/debugmutex."), and
// lockscopeInternal that of the engine's packages ("github.com/lockscope/
// lockscope/internal/"): found at start from this package's own path rather
// than written out, so that a fork or a vendored copy agrees.
var LockscopePkg, lockscopeInternal = func() (string, string) {
	const fallback = "github.com/lockscope/lockscope/"
	root := fallback
	pc, _, _, _ := runtime.Caller(0)
	if f := runtime.FuncForPC(pc); f != nil {
		name := f.Name() // <root>internal/rt.init.func1
		if i := strings.LastIndex(name, "internal/rt."); i >= 0 {
			root = name[:i]
		}
	}
	return root + "debugmutex.", root + "internal/"
}()

// IsLockscopeInternal reports whether function is of the engine's internal
// packages.
func IsLockscopeInternal(function string) bool { return strings.HasPrefix(function, lockscopeInternal) }

// IsLockscopeFrame reports whether a frame is of lockscope's own code: the
// lock methods (package debugmutex) and the engine (its internal packages),
// outside _test.go files (the package's own tests lock like users do).
func IsLockscopeFrame(function, file string) bool {
	return (strings.HasPrefix(function, LockscopePkg) || strings.HasPrefix(function, lockscopeInternal)) &&
		!strings.HasSuffix(file, "_test.go")
}

// What pcClass knows about a PC from runtime.Callers: the logical frame it
// stands for (runtime.Callers gives one PC per call, inlined calls too).
const (
	pcInternal = 1 << 61 // the frame is lockscope's own code
	pcPhysical = 1 << 62 // the frame is its physical function: not inlined into the next one
	pcValid    = 1 << 63
	pcKeyMask  = 1<<61 - 1

	pcClassBits = 12
)

// pcClassTab caches pcClass: direct-mapped, one word per entry (the PC and
// its class), so lookups are a load and never block; a collision evicts.
// PCs too high to share a word with their class are not cached.
var pcClassTab [1 << pcClassBits]atomic.Uint64

func pcClass(pc uintptr) uint64 {
	k := uint64(pc)
	base := (k * 0x9E3779B97F4A7C15) >> (64 - pcClassBits)
	free := -1
	for w := range uint64(CacheWays) {
		e := pcClassTab[(base+w)%(1<<pcClassBits)].Load()
		if e&pcValid == 0 {
			free = max(free, int(w))
			continue
		}
		if e&pcKeyMask == k {
			return e &^ pcKeyMask
		}
	}
	slot := &pcClassTab[(base+CacheWay(free))%(1<<pcClassBits)]
	// One PC on its own: CallersFrames reads it as runtime.Callers meant
	// it (a "virtual" PC of an inlined call gives the caller's frame).
	fr, _ := runtime.CallersFrames([]uintptr{pc}).Next()
	e := uint64(pcValid)
	if fr.Func != nil || fr.Function == "" {
		e |= pcPhysical
	}
	if IsLockscopeFrame(fr.Function, fr.File) {
		e |= pcInternal
	}
	if k&^pcKeyMask == 0 {
		slot.Store(e | k)
	}
	return e
}

// firstUserFrame returns the index of the first PC in pcs whose frame is
// not lockscope's, or len(pcs).
func firstUserFrame(pcs []uintptr) int {
	for i, pc := range pcs {
		if pcClass(pc)&pcInternal == 0 {
			return i
		}
	}
	return len(pcs)
}

// CallersSite returns the user's call site of the running lock method (the
// return address into the first frame that is not lockscope's) and the
// return address above it, as callerPCs does on a frame-pointer walk.
// Cost: runtime.Callers over lockscope's frames and two more (about a
// microsecond), and a cached lookup per frame.
func CallersSite() (pc1, pc2 uintptr) {
	var buf [16]uintptr
	pcs := buf[:runtime.Callers(2, buf[:])] // from callersSite's caller
	if i := firstUserFrame(pcs); i < len(pcs)-1 || (i < len(pcs) && len(pcs) < len(buf)) {
		return at(pcs, i), at(pcs, i+1)
	}
	if len(pcs) < len(buf) {
		return 0, 0 // lockscope's frames only
	}
	var big [128]uintptr // lockscope deeper than 16 frames: rare
	pcs = big[:runtime.Callers(2, big[:])]
	i := firstUserFrame(pcs)
	return at(pcs, i), at(pcs, i+1)
}

func at(pcs []uintptr, i int) uintptr {
	if i < len(pcs) {
		return pcs[i]
	}
	return 0
}

// CallersStack fills buf with the user's stack below the running lock
// method, innermost first, as fpStack does: one return address per physical
// frame (runtime.Callers's "virtual" PCs for inlined calls dropped, as
// runtime.CallersFrames and Symbolize expand a physical PC into its inlined
// calls). The first one may be the PC of an inlined call, when a lockscope
// function was inlined into the user's: it stands for the rest of its
// physical frame. It returns the number written.
func CallersStack(buf []uintptr) int {
	var tmp [maxCallersDepth]uintptr
	pcs := tmp[:runtime.Callers(2, tmp[:])]
	i := firstUserFrame(pcs)
	n := 0
	for i < len(pcs) && n < len(buf) {
		buf[n] = pcs[i]
		n++
		for i < len(pcs) && pcClass(pcs[i])&pcPhysical == 0 {
			i++ // an inlined call: its physical frame goes on
		}
		i++
	}
	return n
}

// maxCallersDepth bounds the runtime.Callers walk of callersStack: room for
// lockscope's frames and a full stack (maxStackDepth) of inlined calls.
const maxCallersDepth = 192
