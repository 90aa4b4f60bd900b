package stacks

import (
	"iter"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/report"
)

// Stacks are captured by walking frame pointers (a load per frame; see
// fp.go), interned once per distinct stack, and referred to by a uint32 id
// everywhere else. Symbolisation (runtime.CallersFrames, which expands
// inlined calls into frames of their own) happens only when a report or a
// profile is made, and its per-PC answers are cached.

const (
	maxStackDepth = 64
	stackShards   = 64
	// maxStacksPerShard bounds the table: 64 shards x 4096 stacks. A stack
	// seen when its shard is full gets id 0 ("not recorded") and is counted.
	maxStacksPerShard = 4096
)

type stackShard struct {
	mu     sync.Mutex
	ids    map[string]uint32
	stacks [][]uintptr
}

var (
	stackTab     [stackShards]stackShard
	StacksFull   int64 // stacks not interned because a shard was full (guarded by shard mutexes; read racily)
	StacksFullMu sync.Mutex
)

// CaptureStack returns the interned acquire stack of the caller of the lock
// method whose frame is fp, without lockscope's own frames on top.
func CaptureStack(fp unsafe.Pointer) uint32 {
	var buf [maxStackDepth]uintptr
	n := rt.FpStack(fp, buf[:])
	pcs := buf[:n]
	for len(pcs) > 0 && IsInternalPC(pcs[0]) {
		pcs = pcs[1:]
	}
	return InternStack(pcs)
}

// SiteStack returns the interned one-frame stack of an acquire site.
func SiteStack(pc1, pc2 uintptr) uint32 {
	pc := SitePC(pc1, pc2)
	if pc == 0 {
		return 0
	}
	return InternStack([]uintptr{pc})
}

// SitePC picks the user's call site out of the two return addresses above a
// lock method: pc1 is it when the exported method was inlined into the
// user's function, pc2 when pc1 is inside a method of ours.
func SitePC(pc1, pc2 uintptr) uintptr {
	if pc1 != 0 && IsInternalPC(pc1) {
		return pc2
	}
	return pc1
}

func HashPCs(pcs []uintptr) uint64 {
	h := uint64(14695981039346656037)
	for _, pc := range pcs {
		h ^= uint64(pc)
		h *= 1099511628211
	}
	return h
}

// internCache answers internStack for a stack seen before without the
// shard's mutex (a cache line every contended wait in the program wrote,
// when they share a stack) or a hash of the PCs as a string: a
// direct-mapped table of interned stacks by hashPCs, each entry immutable
// (replaced, never changed) and its PCs compared in full.
const InternCacheBits = 12

// InternSlot is the cache slot of a stack's hash: its top bits after a
// Fibonacci multiply (hashPCs' own high bits vary little with the low bits
// of PCs, where stacks differ).
func InternSlot(h uint64) uint64 { return (h * 0x9E3779B97F4A7C15) >> (64 - InternCacheBits) }

type internedStack struct {
	hash uint64
	id   uint32
	Pcs  []uintptr // the interned copy: never modified
}

var InternCache [1 << InternCacheBits]atomic.Pointer[internedStack]

func InternStack(pcs []uintptr) uint32 {
	if len(pcs) == 0 {
		return 0
	}
	h := HashPCs(pcs)
	base := InternSlot(h)
	free := -1
	for w := range uint64(rt.CacheWays) {
		e := InternCache[(base+w)%(1<<InternCacheBits)].Load()
		if e == nil {
			free = max(free, int(w))
			continue
		}
		if e.hash == h && slices.Equal(e.Pcs, pcs) {
			return e.id
		}
	}
	slot := &InternCache[(base+rt.CacheWay(free))%(1<<InternCacheBits)]
	key := unsafe.String((*byte)(unsafe.Pointer(&pcs[0])), len(pcs)*int(unsafe.Sizeof(uintptr(0))))
	shard := h % stackShards
	s := &stackTab[shard]
	s.mu.Lock()
	id, ok := s.ids[key]
	if !ok {
		if len(s.stacks) >= maxStacksPerShard {
			s.mu.Unlock()
			StacksFullMu.Lock()
			StacksFull++
			StacksFullMu.Unlock()
			return 0
		}
		if s.ids == nil {
			s.ids = make(map[string]uint32)
		}
		cp := append([]uintptr(nil), pcs...)
		s.stacks = append(s.stacks, cp)
		id = uint32(shard)<<24 | uint32(len(s.stacks))
		s.ids[unsafe.String((*byte)(unsafe.Pointer(&cp[0])), len(key))] = id
	}
	interned := s.stacks[int(id&0xFFFFFF)-1]
	s.mu.Unlock()
	slot.Store(&internedStack{hash: h, id: id, Pcs: interned})
	return id
}

// StackPCs returns the program counters of an interned stack (shared: do not
// modify), or nil for id 0.
func StackPCs(id uint32) []uintptr {
	if id == 0 {
		return nil
	}
	s := &stackTab[id>>24]
	i := int(id&0xFFFFFF) - 1
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.stacks) {
		return nil
	}
	return s.stacks[i]
}

// Per-PC symbolisation cache.
var (
	pcInfoMu sync.RWMutex
	pcInfo   = map[uintptr]pcFrames{}
)

type pcFrames struct {
	frames   []report.Frame // the PC's frames, innermost first (inlined calls expanded)
	Internal bool           // every frame is one of lockscope's lock methods
	// outer holds, for frames[1:], the "virtual" PC runtime.Callers puts
	// after pc for each inlined caller (its PC as CallersFrames reports it,
	// + 1), by which CallFrames folds them into the call.
	outer []uintptr
}

// internalMethods are the functions of package debugmutex whose frames are
// lockscope's own lock methods, skipped (with every function of the engine's
// internal packages) when finding the user's acquire site: a Once's Do and
// the closures of OnceFunc, OnceValue and OnceValues (generic: named
// "OnceValue[...].func1") lock its Mutex for the user.
var internalMethods = []string{"(*Mutex).", "(*RWMutex).", "(*rlocker).", "LockContext", "TryLockContext",
	"(*Once).", "OnceFunc.", "OnceValue[", "OnceValues["}

// IsInternalFunc reports whether the function named name is one of
// lockscope's lock methods or of its engine.
func IsInternalFunc(name string) bool {
	if rest, ok := strings.CutPrefix(name, rt.LockscopePkg); ok {
		for _, p := range internalMethods {
			if strings.HasPrefix(rest, p) {
				return true
			}
		}
		return false
	}
	return rt.IsLockscopeInternal(name)
}

func FramesOfPC(pc uintptr) pcFrames {
	pcInfoMu.RLock()
	f, ok := pcInfo[pc]
	pcInfoMu.RUnlock()
	if ok {
		return f
	}
	// Given a single PC, CallersFrames expands only the innermost inlined
	// call: it expects runtime.Callers output, where each inlined call has a
	// PC of its own. Our stacks hold one physical PC per frame (frame-pointer
	// walks); a trailing 0, which no function contains, makes it expand all.
	frames := runtime.CallersFrames([]uintptr{pc, 0})
	f.Internal = true
	for {
		fr, more := frames.Next()
		if (fr.Function == "" && fr.File == "") || fr.Function == "runtime.goexit" {
			if !more {
				break
			}
			continue
		}
		f.frames = append(f.frames, report.Frame{Function: fr.Function, File: fr.File, Line: fr.Line})
		if len(f.frames) > 1 {
			f.outer = append(f.outer, fr.PC+1)
		}
		if !IsInternalFunc(fr.Function) {
			f.Internal = false
		}
		if !more {
			break
		}
	}
	if len(f.frames) == 0 {
		f.Internal = false
	}
	pcInfoMu.Lock()
	if len(pcInfo) < 1<<16 {
		pcInfo[pc] = f
	}
	pcInfoMu.Unlock()
	return f
}

// IsInternalPC reports whether pc is in one of lockscope's lock methods
// (every frame of it, inlined ones included). Every contended wait asks it
// of the top of the waiter's stack: the answer comes from a lock-free
// direct-mapped cache, and framesOfPC (a shared mutex, a map, symbolization)
// only on a miss.
func IsInternalPC(pc uintptr) bool {
	base := (uint64(pc) * 0x9E3779B97F4A7C15) >> (64 - internalPCBits)
	free := -1
	for w := range uint64(rt.CacheWays) {
		v := internalPCs[(base+w)%(1<<internalPCBits)].Load()
		if v == 0 {
			free = max(free, int(w))
			continue
		}
		if v>>1 == pc {
			return v&1 != 0
		}
	}
	slot := &internalPCs[(base+rt.CacheWay(free))%(1<<internalPCBits)]
	internal := FramesOfPC(pc).Internal
	v := pc << 1
	if internal {
		v |= 1
	}
	if v>>1 == pc { // a pc too large to shift is answered uncached
		slot.Store(v)
	}
	return internal
}

// internalPCs caches isInternalPC: pc<<1 | internal per slot, 0 if empty.
const internalPCBits = 10

var internalPCs [1 << internalPCBits]atomic.Uintptr

// Symbolize turns return program counters (as in Record.Stack, Holding.Stack
// and Event.Stack, or from runtime.Callers) into frames, innermost first,
// one per call including inlined calls, without lockscope's own lock methods.
func Symbolize(pcs []uintptr) []report.Frame {
	var out []report.Frame
	for _, frames := range CallFrames(pcs) {
		for _, f := range frames {
			if len(out) == 0 && IsInternalFunc(f.Function) {
				continue
			}
			out = append(out, f)
		}
	}
	return out
}

// CallFrames walks a stack of return program counters, innermost first (as
// in Record.Stack, Holding.Stack and Event.Stack, or from runtime.Callers),
// one physical call at a time. For each it yields the call's return program
// counter and its frames, innermost first, one per call including inlined
// calls, the physical function last. Stacks from frame-pointer walks hold
// one PC per physical call; runtime.Callers adds a "virtual" PC per inlined
// caller, which CallFrames folds into the call it belongs to, so both forms
// give the same calls. PCs in no Go function (0, runtime.goexit) are
// skipped; lockscope's own frames are kept. The frames are cached and
// shared: do not modify them.
//
// It is for callers that need the calls themselves (a pprof Location per
// physical PC with a Line per inlined call) or lockscope's frames.
func CallFrames(pcs []uintptr) iter.Seq2[uintptr, []report.Frame] {
	return func(yield func(uintptr, []report.Frame) bool) {
		for i := 0; i < len(pcs); {
			pc := pcs[i]
			f := FramesOfPC(pc)
			i++
			if len(f.frames) == 0 {
				continue
			}
			for _, v := range f.outer {
				if i >= len(pcs) || pcs[i] != v {
					break
				}
				i++
			}
			if !yield(pc, f.frames) {
				return
			}
		}
	}
}

// SiteOf returns the user's frame at an acquire site.
func SiteOf(pc1, pc2 uintptr) report.Frame {
	pc := SitePC(pc1, pc2)
	if pc == 0 {
		return report.Frame{Function: "(unknown)"}
	}
	fs := Symbolize([]uintptr{pc})
	if len(fs) == 0 {
		return report.Frame{Function: "(unknown)"}
	}
	return fs[0]
}

// KeySite is the acquire site a report's key names: the first frame of the
// interned stack stk outside lock wrappers (functions and methods named
// like the lock methods: a type's own Lock that locks a field, a lock()
// helper, go-deadlock's), so that problems met through one wrapper from
// different call sites are told apart; the site pc1, pc2 where the stack
// is unknown, and the stack's first frame where all of it is wrappers.
func KeySite(stk uint32, pc1, pc2 uintptr) string {
	fs := StackFrames(stk)
	for _, f := range fs {
		if !lockWrapperName(f.Function) {
			return f.Site()
		}
	}
	if len(fs) > 0 {
		return fs[0].Site()
	}
	return SiteOf(pc1, pc2).Site()
}

// lockWrapperName says whether the function named fn (as runtime.Frame
// names it) is named like a lock method: Lock, RLock, TryLock, TryRLock,
// Unlock or RUnlock, in any case.
func lockWrapperName(fn string) bool {
	name := fn[strings.LastIndexByte(fn, '.')+1:]
	for _, m := range [...]string{"lock", "rlock", "trylock", "tryrlock", "unlock", "runlock"} {
		if strings.EqualFold(name, m) {
			return true
		}
	}
	return false
}

// StackFrames symbolises an interned stack.
func StackFrames(id uint32) []report.Frame { return Symbolize(StackPCs(id)) }
