// Command cgocallback locks lockscope locks from Go functions that C calls
// back, with junk in the frame-pointer register: C code compiled with
// -fomit-frame-pointer uses it as a general register, and whatever it holds
// is what the runtime's cgo callback frames link to. A frame-pointer walk
// that follows it faults ("unexpected fault address"). TestCgoCallback
// (cgo_test.go) builds and runs it; it prints "ok" and exits 0 when every
// walk stopped where it should (-v: and prints the recorded wait stacks).
// Run from a goroutine's thread (Go -> C -> Go) and from a thread C made.
package main

/*
#cgo CFLAGS: -O2 -fomit-frame-pointer
#include <stdint.h>
void fromGoThread(uintptr_t junk);
void fromCThread(uintptr_t junk);
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"github.com/lockscope/lockscope/debugmutex"
)

var (
	mu   debugmutex.Mutex
	rw   debugmutex.RWMutex
	fail bool
)

// Junk frame pointers for C to hold when it calls back: unmapped and
// aligned (in the first page, below any mmap_min_addr), misaligned, and
// one that points at mapped memory that is no stack: a Go global laid out
// as a frame record whose saved frame pointer is junk again.
var (
	junks     = []uintptr{0x1008, 0xdeadbeef, 0}
	fakeFrame [4]uintptr
)

//export goLockContended
func goLockContended() {
	contend(&mu)
	contend(&rw)
	contendRead(&rw)
	nested()
}

type locker interface {
	Lock()
	Unlock()
}

// contend makes l busy in another goroutine, then locks it here: the wait
// captures this goroutine's stack (a walk from a lock method's frame up
// through the cgo callback frames).
func contend(l locker) {
	held, release, done := make(chan bool), make(chan bool), make(chan bool)
	go func() {
		l.Lock()
		held <- true
		<-release
		time.Sleep(20 * time.Millisecond)
		l.Unlock()
		done <- true
	}()
	<-held
	release <- true
	l.Lock()
	l.Unlock()
	<-done
}

func contendRead(l *debugmutex.RWMutex) {
	held, release, done := make(chan bool), make(chan bool), make(chan bool)
	go func() {
		l.Lock()
		held <- true
		<-release
		time.Sleep(20 * time.Millisecond)
		l.Unlock()
		done <- true
	}()
	<-held
	release <- true
	l.RLock()
	l.RUnlock()
	<-done
}

// nested takes two locks in order: the lock-order check captures the stack.
func nested() {
	var a, b debugmutex.Mutex
	for range 3 {
		a.Lock()
		b.Lock()
		b.Unlock()
		a.Unlock()
	}
}

func main() {
	verbose := len(os.Args) > 1 && os.Args[1] == "-v"
	fakeFrame[0] = uintptr(unsafe.Pointer(&fakeFrame[2])) // saved frame pointer
	fakeFrame[1] = 0x1234                                 // "return address"
	fakeFrame[2] = 0x1008
	junks[2] = uintptr(unsafe.Pointer(&fakeFrame[0]))
	for _, junk := range junks {
		C.fromGoThread(C.uintptr_t(junk))
		C.fromCThread(C.uintptr_t(junk))
	}
	// Every wait was recorded with a stack that names the callback and
	// holds only Go functions (a walk that read junk would add PCs that
	// are in no function, or stop before the callback).
	waits := 0
	for _, r := range debugmutex.Records() {
		if r.Kind != debugmutex.StatWait {
			continue
		}
		waits++
		frames := runtime.CallersFrames(r.Stack)
		var names []string
		for {
			f, more := frames.Next()
			names = append(names, f.Function)
			if !more {
				break
			}
		}
		s := strings.Join(names, " < ")
		if verbose {
			fmt.Println("wait stack:", s)
		}
		if !strings.Contains(s, "main.goLockContended") {
			fmt.Println("wait stack without the callback:", s)
			fail = true
		}
		for _, n := range names {
			if n == "" {
				fmt.Println("wait stack with a PC in no function:", s)
				fail = true
				break
			}
		}
	}
	if waits == 0 {
		fmt.Println("no wait recorded")
		fail = true
	}
	if fail {
		os.Exit(1)
	}
	fmt.Println("ok")
}
