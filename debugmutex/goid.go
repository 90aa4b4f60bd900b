package debugmutex

import (
	"bytes"
	"runtime"
	"strconv"

	"github.com/petermattis/goid"
)

// goidFast is true when github.com/petermattis/goid agrees with the runtime
// on this Go release. goid reads the id out of the runtime's g struct at an
// offset it knows per release; when a release moves the field, it returns
// garbage and every holder check becomes a false alarm. So at start we check
// it once against the id the runtime itself prints in a stack header, and if
// they disagree we take the slow, always-right way.
var goidFast = checkGoid()

func checkGoid() bool {
	// Run the check on a fresh goroutine too: a constant answer on the main
	// goroutine alone (id 1) would not catch an offset that happens to work.
	ok := goid.Get() == goidSlow()
	done := make(chan bool)
	go func() { done <- goid.Get() == goidSlow() }()
	return ok && <-done
}

// curGoid returns the current goroutine's id. (The lock methods' fast
// paths write out its body instead: with goidSlow's call in it, it is just
// over the inliner's budget.)
func curGoid() int64 {
	if goidFast {
		return goid.Get()
	}
	return goidSlow()
}

// goidSlow parses
//
//go:noinline "goroutine 123 [" from runtime.Stack: about a microsecond.
func goidSlow() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return -1
	}
	return id
}
