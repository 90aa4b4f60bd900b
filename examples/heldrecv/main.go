// Command heldrecv is a read-through cache whose Get holds the cache's lock
// while it waits for a fetch on a channel: the shape of grpc#1460,
// etcd#6873 and a dozen other real hangs. The fetcher has the classic bug
// of an error path that returns without sending, so the Get that asked for
// the missing key waits forever, holding Cache.mu, and every Get after it
// waits forever for Cache.mu.
//
// No lock-order cycle, no threshold: nothing a wait-for graph of locks
// alone can decide. Go's goroutine leak profile proves that both
// goroutines are blocked forever, and lockscope reports, within about a
// second of the hang, the waiter, the lock, its holder and the line the
// holder is stuck on. main waits for that report, prints it briefly and
// exits 0, leaving the two goroutines stuck.
//
// Run it with Go 1.27:
//
//	go run ./examples/heldrecv
//
// or with Go 1.26 and the experiment:
//
//	GOEXPERIMENT=goroutineleakprofile go run ./examples/heldrecv
//
// Without the proof (Go 1.26 without the experiment) the hang is reported
// when the wait threshold runs out (LOCKSCOPE_WAIT_THRESHOLD, 30s by
// default), and lockscope says how to get the proof.
//
// With -fixed, the fetcher sends an error on the failing path too, every
// Get returns, and lockscope stays silent.
//
// The requests run in order (each waits for the previous to have the lock
// or be done) so that every run ends the same way; in a real server the
// same interleaving happens by chance.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	sync "github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// Cache is a read-through cache.
type Cache struct {
	mu    sync.Mutex
	items map[string]string
	fetch func(key string, out chan<- result)
	// fetching is closed when a fetch starts, for the requests' order.
	fetching chan struct{}
}

type result struct {
	val string
	err error
}

// Get returns the value of key, fetching it on a miss.
func (c *Cache) Get(key string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.items[key]; ok {
		return v, nil
	}
	out := make(chan result)
	go c.fetch(key, out)
	r := <-out // the lock is held across the receive
	if r.err != nil {
		return "", r.err
	}
	c.items[key] = r.val
	return r.val, nil
}

// fetcher returns the backend's fetch, which fails on "missing".
func fetcher(fixed bool, fetching chan struct{}) func(string, chan<- result) {
	return func(key string, out chan<- result) {
		if key == "missing" {
			close(fetching)
			if fixed {
				out <- result{err: errors.New("missing: not found")}
			}
			return // BUG (without -fixed): the error path does not send
		}
		out <- result{val: "value of " + key}
	}
}

// serve starts the three requests, in order, on a cache of its own: once
// it returns, only the requests' goroutines can reach the cache.
func serve(fixed bool, replies chan<- string) {
	fetching := make(chan struct{})
	c := &Cache{items: map[string]string{}, fetching: fetching, fetch: fetcher(fixed, fetching)}
	sync.SetName(&c.mu, "Cache.mu")
	get := func(key string) {
		v, err := c.Get(key)
		if err != nil {
			v = "error: " + err.Error()
		}
		replies <- fmt.Sprintf("get %-8s -> %s", key, v)
	}
	go func() {
		get("a")
		go get("missing")
		<-c.fetching // "missing" holds the lock and waits for its fetch
		get("b")
	}()
}

func main() {
	fixed := flag.Bool("fixed", false, "send an error from the failing fetch")
	flag.Parse()

	reported := make(chan report.Report, 1)
	inspect.OnReport(func(rep report.Report) {
		if rep.Kind == report.KindDeadlock || rep.Kind == report.KindLongWait {
			select {
			case reported <- rep:
			default:
			}
		}
	})

	replies := make(chan string)
	start := time.Now()
	serve(*fixed, replies)
	for n := 0; n < 3; n++ {
		select {
		case s := <-replies:
			fmt.Println(s)
		case rep := <-reported:
			fmt.Printf("no reply: lockscope reported a %s %.1fs after the requests began\n", rep.Kind, time.Since(start).Seconds())
			explain(rep)
			fmt.Printf("reports: %d\n", len(inspect.Reports()))
			return
		case <-time.After(2 * time.Minute):
			fmt.Println("no reply and no report within 2 minutes")
			os.Exit(1)
		}
	}
	fmt.Printf("reports: %d\n", len(inspect.Reports()))
}

// explain prints the report in a few lines.
func explain(rep report.Report) {
	fmt.Printf("\nlockscope found a %s: %s\n", rep.Kind, rep.Summary)
	for _, g := range rep.Goroutines {
		fmt.Printf("  goroutine %d %s %s", g.ID, g.Role, g.Lock)
		if len(g.Stack) > 0 {
			f := g.Stack[0]
			fmt.Printf(" at %s (%s:%d)", f.Function, filepath.Base(f.File), f.Line)
		}
		if g.State != "" {
			fmt.Printf(" [%s]", g.State)
		}
		fmt.Println()
	}
}
