package rewrite

import (
	"bytes"
	"io"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// A PathFilter copies output of the go command to w, rewriting the paths of
// the rewritten copies (under the temporary directory) to the user's own
// files. The compiler already reports positions in the user's files, but
// go vet, and the vet run by go test, name the files they were given.
//
// Whole lines are rewritten; a partial line (a prompt, a progress dot) is
// passed on unchanged once no more output has come for flushDelay, so that
// nothing waits for a newline that never comes.
type PathFilter struct {
	w   io.Writer
	old *regexp.Regexp
	new []byte

	mu    sync.Mutex
	buf   []byte
	timer *time.Timer
	// mixed is set when the output shows a debugmutex lock where a sync
	// one was wanted, or the reverse (see mixedLocks).
	mixed bool
	// buildFailed counts go test's "FAIL pkg [build failed]" lines.
	buildFailed int
}

// buildFailedLine matches go test's line for a package it could not build.
var buildFailedLine = regexp.MustCompile(`(?m)^FAIL\s+\S+\s+\[(build|setup) failed\]`)

// mixedLocks matches the compiler's complaint when a package of the module
// hands one of its (now debugmutex) locks to code outside the module that
// wants a sync lock, or takes one from it.
var mixedLocks = regexp.MustCompile(`debugmutex\.(RW)?Mutex.*\bsync"?\.(RW)?Mutex|\bsync"?\.(RW)?Mutex.*debugmutex\.(RW)?Mutex`)

const flushDelay = 50 * time.Millisecond

// NewPathFilter returns a PathFilter to w that rewrites matches of old to
// new. Old matches the copies of any lockscope run, not only this one's:
// go vet and go test replay cached output, written when an earlier run's
// temporary directory held the copies.
func NewPathFilter(w io.Writer, old *regexp.Regexp, new string) *PathFilter {
	return &PathFilter{w: w, old: old, new: []byte(new)}
}

// CopiesPattern matches the directory of the rewritten copies of a lockscope
// run: .../lockscope-NNN/src/, as an absolute path or, as go vet prints it
// when that is shorter, relative to the current directory.
func CopiesPattern() *regexp.Regexp {
	sep := regexp.QuoteMeta(string(filepath.Separator))
	return regexp.MustCompile("[^\\s\"'`]*" + sep + `lockscope-[0-9]+` + sep + `src` + sep)
}

// Write copies p to the filter's writer, whole lines at once.
func (f *PathFilter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = append(f.buf, p...)
	if i := bytes.LastIndexByte(f.buf, '\n'); i >= 0 {
		f.mixed = f.mixed || mixedLocks.Match(f.buf[:i+1])
		f.buildFailed += len(buildFailedLine.FindAllIndex(f.buf[:i+1], -1))
		if _, err := f.w.Write(f.old.ReplaceAll(f.buf[:i+1], f.new)); err != nil {
			return 0, err
		}
		f.buf = append(f.buf[:0], f.buf[i+1:]...)
	}
	if len(f.buf) > 0 {
		if f.timer == nil {
			f.timer = time.AfterFunc(flushDelay, f.Flush)
		} else {
			f.timer.Reset(flushDelay)
		}
	}
	return len(p), nil
}

// Flush writes out a pending partial line.
func (f *PathFilter) Flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.buf) > 0 {
		f.w.Write(f.old.ReplaceAll(f.buf, f.new))
		f.buf = f.buf[:0]
	}
}

// Mixed reports whether the output showed a debugmutex lock where a sync
// one was wanted, or the reverse: a lock of the module handed to code
// outside it, or taken from it.
func (f *PathFilter) Mixed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mixed
}

// BuildFailed returns the number of packages go test said it could not
// build ("FAIL pkg [build failed]").
func (f *PathFilter) BuildFailed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buildFailed
}
