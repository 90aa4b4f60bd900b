package profiler

import (
	"runtime"
	"sync"
)

// pcExpansion is what one return program counter stands for: the frames of
// the physical call at pc, innermost first, one per inlined call.
type pcExpansion struct {
	frames []runtime.Frame
}

// The per-PC expansion cache, shared by every profile built by the process.
// Program counters of one binary are few (those of call sites that lock), so
// the cache stays small; it stops growing at maxCachedPCs entries anyway.
var (
	pcCacheMu sync.Mutex
	pcCache   = map[uintptr]pcExpansion{}
)

const maxCachedPCs = 1 << 16

// expandPC returns the frames of the call whose return address is pc, every
// inlined call included.
//
// runtime.CallersFrames, given a single PC, reports only the innermost
// inlined frame: it expands the outer ones only while more PCs follow (it
// assumes the caller passed runtime.Callers output, where each inlined call
// has a "virtual" PC of its own). A trailing 0, which no function contains,
// makes it expand them all.
func expandPC(pc uintptr) pcExpansion {
	pcCacheMu.Lock()
	e, ok := pcCache[pc]
	pcCacheMu.Unlock()
	if ok {
		return e
	}
	frames := runtime.CallersFrames([]uintptr{pc, 0})
	for {
		f, more := frames.Next()
		// runtime.goexit, the bottom of every goroutine, says nothing
		// (runtime/pprof leaves it out too).
		if (f.Function != "" || f.File != "") && f.Function != "runtime.goexit" {
			e.frames = append(e.frames, f)
		}
		if !more {
			break
		}
	}
	pcCacheMu.Lock()
	if len(pcCache) < maxCachedPCs {
		pcCache[pc] = e
	}
	pcCacheMu.Unlock()
	return e
}

// physicalCalls splits a stack of return PCs, innermost first, into
// physical calls: for each, the index in stk of its real PC and its
// expansion. Stacks come in two forms: from frame-pointer walking (one PC
// per physical frame, debugmutex on amd64 and arm64) and from
// runtime.Callers (also one virtual PC, call site + 1, per inlined call,
// elsewhere). The virtual PCs that follow a real one are exactly those of its
// expansion's outer frames, and are skipped, so both forms give the same
// calls.
func physicalCalls(stk []uintptr, fn func(pc uintptr, e pcExpansion)) {
	for i := 0; i < len(stk); {
		pc := stk[i]
		e := expandPC(pc)
		i++
		if len(e.frames) == 0 {
			continue // not a Go function (e.g. runtime.goexit's caller), or 0
		}
		// Skip the virtual PCs of the outer inlined frames, if present.
		for j := 1; j < len(e.frames) && i < len(stk) && stk[i] == e.frames[j].PC+1; j++ {
			i++
		}
		fn(pc, e)
	}
}
