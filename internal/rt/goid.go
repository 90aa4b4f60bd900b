package rt

import (
	"runtime"

	"github.com/lockscope/lockscope/internal/config"

	"github.com/petermattis/goid"
)

// Goroutine ids. The convention, for every table and field that stores
// one: an id is the runtime's own goroutine id, always >= 1 (the runtime
// numbers goroutines from 1). Values <= 0 are free for sentinels (0 "none",
// negative tombstones and the like): neither goid.Get nor goidSlow returns
// one. goidSlow panics rather than return a value that is not a goroutine's
// id (see below).

// GoidFast is true when github.com/petermattis/goid agrees with the runtime
// on this Go release. goid reads the id out of the runtime's g struct at an
// offset it knows per release; when a release moves the field, it returns
// garbage and every holder check becomes a false alarm. So at start we check
// it once against the id the runtime itself prints in a stack header, and if
// they disagree we take the slow, always-right way. The lockscope_slowgoid
// build tag forces the slow way (goid_slowtag.go), so that tests can run
// the whole package on it.
var GoidFast = !config.Disabled && !SlowGoidForced && checkGoid()

func checkGoid() bool {
	// Run the check on a fresh goroutine too: a constant answer on the main
	// goroutine alone (id 1) would not catch an offset that happens to work.
	ok := goid.Get() == GoidSlow()
	done := make(chan bool)
	go func() { done <- goid.Get() == GoidSlow() }()
	return <-done && ok
}

// CurGoid returns the current goroutine's id. (The lock methods' fast
// paths write out its body instead: with goidSlow's call in it, it is just
// over the inliner's budget.)
func CurGoid() int64 {
	if GoidFast {
		return goid.Get()
	}
	return GoidSlow()
}

// GoidSlow returns the current goroutine's id, >= 1, parsed from the
// header of runtime.Stack ("goroutine 123 [running]:", or with
// GOTRACEBACK=system "goroutine 123 gp=0x... m=0 mp=0x... [running]:"):
// about a microsecond. It never returns a value that is not an id: if the
// header cannot be read (a Go release changed its format), it panics with a
// message that says so, rather than let two goroutines share a made-up id
// (false reports) or collide with a sentinel. checkGoid calls it at start,
// so that a format change stops the program at start and not in a Lock.
//
//go:noinline
func GoidSlow() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	id, ok := ParseGoroutineHeader(b)
	if !ok {
		panic("lockscope: cannot read the goroutine id from runtime.Stack's header " + quoteHeader(b) +
			" (has this Go release changed its format?); build with -tags nolockscope or set LOCKSCOPE=off to run without lockscope")
	}
	return id
}

// ParseGoroutineHeader reads the id out of "goroutine <id> " or
// "goroutine <id> [". It accepts only a decimal id in 1..MaxInt64.
func ParseGoroutineHeader(b []byte) (int64, bool) {
	const prefix = "goroutine "
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return 0, false
	}
	b = b[len(prefix):]
	var id int64
	n := 0
	for ; n < len(b) && '0' <= b[n] && b[n] <= '9'; n++ {
		d := int64(b[n] - '0')
		if id > (1<<63-1-d)/10 {
			return 0, false // overflows int64
		}
		id = id*10 + d
	}
	if n == 0 || n == len(b) || b[n] != ' ' || id < 1 {
		return 0, false
	}
	return id, true
}

func quoteHeader(b []byte) string {
	out := make([]byte, 0, len(b)+2)
	out = append(out, '"')
	for _, c := range b {
		if c < ' ' || c > '~' || c == '"' || c == '\\' {
			c = '?'
		}
		out = append(out, c)
	}
	return string(append(out, '"'))
}
