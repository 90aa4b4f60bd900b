// Command copied is a registry whose Snapshot copies it, under its lock, for
// a consistent copy, through a generic helper (clone) that go vet's
// copylocks check cannot see into. The copy carries the lock's state: it is
// born locked, and the first call on the snapshot that locks it waits for
// ever, for a lock nobody holds.
//
// Run it with:
//
//	go run ./examples/copied
//
// lockscope reports a copied-lock before the snapshot's Count blocks:
// which lock was copied (Registry.mu), the goroutine that locks the copy
// and where, and the goroutine that held the original when it was copied
// and where it locked it (Snapshot). Where Go's goroutine leak profile is
// on (Go 1.27), a second report follows: the runtime proves the locker
// blocked forever, a deadlock. The program gives the stuck call two
// seconds, says so, and exits 1. The fix: copy the fields, not the struct
// that holds the lock.
package main

import (
	"fmt"
	"os"
	"time"

	sync "github.com/lockscope/lockscope/debugmutex"
)

// Registry counts registrations by name.
type Registry struct {
	mu    sync.Mutex
	names map[string]int
}

// Register counts one registration of name.
func (r *Registry) Register(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names[name]++
}

// Count is the number of registrations of name.
func (r *Registry) Count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.names[name]
}

// Snapshot returns a consistent copy of the registry: a copy made while the
// lock is held, lock included.
func (r *Registry) Snapshot() *Registry {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := clone(r)
	c.names = make(map[string]int, len(r.names))
	for k, v := range r.names {
		c.names[k] = v
	}
	return c
}

// clone returns a shallow copy of *v. For go vet, T is any type: it cannot
// tell that copying it copies a lock.
func clone[T any](v *T) *T {
	c := *v
	return &c
}

func main() {
	r := &Registry{names: map[string]int{}}
	r.Register("api")
	r.Register("api")
	snap := r.Snapshot()
	r.Register("api")

	got := make(chan int, 1)
	go func() { got <- snap.Count("api") }()
	select {
	case n := <-got:
		fmt.Printf("snapshot: api registered %d times, registry: %d\n", n, r.Count("api"))
	case <-time.After(2 * time.Second):
		fmt.Println("snapshot.Count is stuck: the snapshot's lock was copied locked, and nobody will unlock it")
		os.Exit(1)
	}
}
