package debugmutex_test

import (
	"context"
	"fmt"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
)

// Swap the import and use the locks as before; what they recorded is there
// to read.
func ExampleMutex() {
	// import sync "github.com/lockscope/lockscope/debugmutex"
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "example.counter")
	counter := 0
	mu.Lock()
	counter++
	for _, h := range debugmutex.Snapshot().Held {
		if h.Lock.Name == "example.counter" {
			fmt.Println(h.Lock.Name, "held for", h.Mode, "at", h.Site.Function)
		}
	}
	mu.Unlock()
	fmt.Println(counter)
	// Output:
	// example.counter held for write at github.com/lockscope/lockscope/debugmutex_test.ExampleMutex
	// 1
}

// A handler receives every new report; here, a lock-order inversion that
// never deadlocked.
func ExampleOnReport() {
	found := make(chan debugmutex.Report, 1)
	stop := debugmutex.OnReport(func(r debugmutex.Report) {
		if r.Kind == debugmutex.KindLockOrder {
			found <- r
		}
	})
	defer stop()
	var a, b debugmutex.Mutex
	debugmutex.SetName(&a, "example.a")
	debugmutex.SetName(&b, "example.b")
	a.Lock()
	b.Lock()
	b.Unlock()
	a.Unlock()
	b.Lock()
	a.Lock() // the other order: a potential deadlock
	a.Unlock()
	b.Unlock()
	r := <-found
	fmt.Println(r.Kind, len(r.Edges), "edges")
	// Output: lock-order 2 edges
}

// Subscribe receives notable events, never blocking the locking goroutine.
func ExampleSubscribe() {
	sub := debugmutex.Subscribe(debugmutex.SubscribeOptions{MinHold: 5 * time.Millisecond})
	defer sub.Close()
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "example.slow")
	mu.Lock()
	time.Sleep(10 * time.Millisecond)
	mu.Unlock()
	ev := <-sub.C()
	fmt.Println(ev.Kind, ev.Lock.Name, ev.Duration >= 10*time.Millisecond)
	// Output: hold example.slow true
}

// LockContext attaches a request's context to a lock's wait and hold, so
// that package exporter can put their spans under the request's span.
func ExampleLockContext() {
	var mu debugmutex.Mutex
	ctx := context.Background() // a request's context in a real service
	debugmutex.LockContext(ctx, &mu)
	defer mu.Unlock()
	fmt.Println("locked")
	// Output: locked
}

// Records are the aggregated statistics the profiler turns into profiles.
func ExampleRecords() {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "example.records")
	mu.Lock()
	for i := 0; i < 3; i++ {
		mu.TryLock() // fails: held
	}
	mu.Unlock()
	for _, r := range debugmutex.Records() {
		if r.Lock == "example.records" && r.Kind == debugmutex.StatTryFail {
			fmt.Println(r.Kind, r.Count)
		}
	}
	// Output: trylock-fail 3
}
