//go:build !nolockscope

// Once, Do, OnceFunc, OnceValue and OnceValues are Go's (src/sync/once.go
// and src/sync/oncefunc.go, Go 1.26), on this package's Mutex:
//
// Copyright 2009 The Go Authors. All rights reserved.
// Copyright 2022 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the GO_LICENSE file.

package debugmutex

import (
	"sync/atomic"
	"unsafe"

	"github.com/lockscope/lockscope/internal/config"
	"github.com/lockscope/lockscope/internal/engine"
	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/report"
)

// Once is an object that will perform exactly one action, a drop-in for
// sync.Once.
//
// A Once must not be copied after first use (go vet's copylocks check flags
// it, as it does sync.Once).
//
// In the terminology of the Go memory model, the return from f
// "synchronizes before" the return from any call of once.Do(f).
//
// It is sync's Once on this package's Mutex: once f has returned, Do is one
// atomic load, inlined at the call site, as in sync; until then a call of
// Do while another runs f waits for the Once's Mutex, and that is what is
// recorded. The Once is named by its declaration as the caller of Do wrote
// it (cfgOnce.Do: "pkg.cfgOnce"; c.initOnce.Do in a method of *Client:
// "Client.initOnce"). A goroutine waiting in Do is in the wait-for graph: a
// cycle through a Once (f waits for a lock whose holder calls Do) is a
// deadlock report from the call that closes it, before it blocks; Do called
// again from inside f, a deadlock in sync too, is reported at once, with
// both calls' stacks (the Once's Mutex is only ever unlocked by the Do that
// locked it, so there is no hand-off to wait for). Locks f takes follow the
// Once in the lock order. A Do whose f runs longer than
// LOCKSCOPE_HOLD_THRESHOLD is reported as a long hold: every other call of
// Do waits as long. Waits in Do are contention on the Once in profiles;
// f's run is a hold of it, timed as a lock's first hold is (not, unless
// holds are asked for). The Once is 72 bytes on 64-bit platforms (64 on
// 32-bit; sync.Once: 12); a Once used once allocates nothing but itself,
// like a Mutex locked once (a local Once moves to the heap, as a local
// Mutex does).
type Once struct {
	_ noCopy

	// done indicates whether the action has been performed.
	// It is first in the struct because it is used in the hot path.
	// The hot path is inlined at every call site.
	done atomic.Bool
	m    Mutex
}

// Do calls the function f if and only if Do is being called for the
// first time for this instance of Once. In other words, given
//
//	var once Once
//
// if once.Do(f) is called multiple times, only the first call will invoke f,
// even if f has a different value in each invocation. A new instance of
// Once is required for each function to execute.
//
// Do is intended for initialization that must be run exactly once. Since f
// is niladic, it may be necessary to use a function literal to capture the
// arguments to a function to be invoked by Do:
//
//	config.once.Do(func() { config.init(filename) })
//
// Because no call to Do returns until the one call to f returns, if f causes
// Do to be called, it will deadlock (lockscope reports it before blocking).
//
// If f panics, Do considers it to have returned; future calls of Do return
// without calling f.
func (o *Once) Do(f func()) {
	// As in sync: the o.done.Store must be delayed until after f returns,
	// so that Do returns only when f has finished; hence the Mutex.
	if !o.done.Load() {
		// Outlined slow-path to allow inlining of the fast-path.
		o.doSlow(f, record.OnceType)
	}
}

// doSlow is sync's, with the Mutex locked as the Once's of type typ (a
// Once, or the Once of a OnceFunc) at doSlow's own frame: the acquire site
// is doSlow's caller, Do's (Do is inlined into it, or is a frame lockscope
// skips), or the function a OnceFunc returned, which lockscope skips too.
// Not inlined, so that its frame is its own.
//
//go:noinline
func (o *Once) doSlow(f func(), typ string) {
	fp := rt.Getfp()
	o.m.lockOnce(fp, typ)
	defer o.m.unlockOnce(fp, typ)
	if !o.done.Load() {
		defer o.done.Store(true)
		f()
	}
}

// lockOnce is Lock for the Mutex of a Once of type typ; fp is doSlow's
// frame.
func (m *Mutex) lockOnce(fp unsafe.Pointer, typ string) {
	if config.Disabled {
		m.mu.Lock()
		return
	}
	id := rt.CurGoid()
	g := record.LookupG(id)
	if m.mu.TryLock() {
		engine.Acquired(&m.c, g, id, fp, typ, report.Write, false, nil)
		return
	}
	m.lockSlow(fp, id, g, nil, typ)
}

// unlockOnce is Unlock for the Mutex of a Once of type typ, by the doSlow
// that locked it, on its goroutine; fp is doSlow's frame, so that the
// unlock is noted at the caller of Do, like the lock.
func (m *Mutex) unlockOnce(fp unsafe.Pointer, typ string) {
	if config.Disabled {
		m.mu.Unlock()
		return
	}
	id := rt.CurGoid()
	if m.c.ReleaseFast(id, fp) {
		m.mu.Unlock()
		return
	}
	if r := engine.UnlockWrite(&m.c, id, fp, typ); r != nil {
		m.mu.Unlock()
		panic(r)
	}
	m.mu.Unlock()
}

// noCopy may be added to structs which must not be copied after the first
// use: go vet's copylocks check flags copies of any type with Lock and
// Unlock methods (sync's own noCopy).
type noCopy struct{}

// Lock is a no-op used by go vet's copylocks checker.
func (*noCopy) Lock() {}

// Unlock is a no-op used by go vet's copylocks checker.
func (*noCopy) Unlock() {}

// The functions OnceFunc, OnceValue and OnceValues return call their Once's
// Do written out (the fast path, then doSlow), so that doSlow's caller is
// always the returned function, which lockscope skips: the acquire site is
// the call of the returned function (loadConfig()), and the Once is named
// by the variable or field that holds it ("pkg.loadConfig"), whether or not
// the compiler inlines Do. They are not inlined themselves: a closure of a
// function inlined into its caller is named after the caller, and would no
// longer be known as lockscope's.

// OnceFunc returns a function that invokes f only once. The returned function
// may be called concurrently.
//
// If f panics, the returned function will panic with the same value on every call.
//
//go:noinline
func OnceFunc(f func()) func() {
	// Use a struct so that there's a single heap allocation.
	d := struct {
		f     func()
		once  Once
		valid bool
		p     any
	}{
		f: f,
	}
	return func() {
		if !d.once.done.Load() {
			d.once.doSlow(func() {
				defer func() {
					d.f = nil // Do not keep f alive after invoking it.
					d.p = recover()
					if !d.valid {
						// Re-panic immediately so on the first
						// call the user gets a complete stack
						// trace into f.
						panic(d.p)
					}
				}()
				d.f()
				d.valid = true // Set only if f does not panic.
			}, record.OnceFuncType)
		}
		if !d.valid {
			panic(d.p)
		}
	}
}

// OnceValue returns a function that invokes f only once and returns the value
// returned by f. The returned function may be called concurrently.
//
// If f panics, the returned function will panic with the same value on every call.
//
//go:noinline
func OnceValue[T any](f func() T) func() T {
	// Use a struct so that there's a single heap allocation.
	d := struct {
		f      func() T
		once   Once
		valid  bool
		p      any
		result T
	}{
		f: f,
	}
	return func() T {
		if !d.once.done.Load() {
			d.once.doSlow(func() {
				defer func() {
					d.f = nil
					d.p = recover()
					if !d.valid {
						panic(d.p)
					}
				}()
				d.result = d.f()
				d.valid = true
			}, record.OnceFuncType)
		}
		if !d.valid {
			panic(d.p)
		}
		return d.result
	}
}

// OnceValues returns a function that invokes f only once and returns the values
// returned by f. The returned function may be called concurrently.
//
// If f panics, the returned function will panic with the same value on every call.
//
//go:noinline
func OnceValues[T1, T2 any](f func() (T1, T2)) func() (T1, T2) {
	// Use a struct so that there's a single heap allocation.
	d := struct {
		f     func() (T1, T2)
		once  Once
		valid bool
		p     any
		r1    T1
		r2    T2
	}{
		f: f,
	}
	return func() (T1, T2) {
		if !d.once.done.Load() {
			d.once.doSlow(func() {
				defer func() {
					d.f = nil
					d.p = recover()
					if !d.valid {
						panic(d.p)
					}
				}()
				d.r1, d.r2 = d.f()
				d.valid = true
			}, record.OnceFuncType)
		}
		if !d.valid {
			panic(d.p)
		}
		return d.r1, d.r2
	}
}
