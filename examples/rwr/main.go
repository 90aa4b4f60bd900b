// Command rwr shows recursive read locking: Describe holds a config's read
// lock and calls the getter Get, which read-locks it again. That looks
// harmless (readers share the lock) and works most of the time, but Go's
// RWMutex makes new readers wait behind a queued writer: if Set queues
// between Describe's RLock and Get's, the reader waits for the writer, the
// writer waits for the reader, and both hang forever.
//
// lockscope reports the recursive read (a recursive-read report naming the
// goroutine and both RLock sites) the first time Get is called under
// Describe, whether or not a writer happens to queue in between; if one
// does, it reports the deadlock too. A reader and a writer run side by side
// until both finish or lockscope reports a deadlock; main then prints the
// reports and exits 0 (leaving the deadlocked goroutines behind, if any).
//
// Run it with:
//
//	go run ./examples/rwr
//
// With -fixed, Describe reads the values through an unlocked helper and
// lockscope stays silent.
package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"strconv"

	sync "github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// Config is a set of settings read often and written now and then.
type Config struct {
	mu      sync.RWMutex
	values  map[string]string
	version int
	fixed   bool
}

// Get returns the value of key.
func (c *Config) Get(key string) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.values[key]
}

// Describe formats the config. BUG: it calls Get, which read-locks c.mu
// again, while holding the read lock.
func (c *Config) Describe() string {
	if c.fixed {
		return c.describeFixed()
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return fmt.Sprintf("v%d %s:%s", c.version, c.Get("host"), c.Get("port"))
}

// describeFixed reads the values through get, which expects c.mu held.
func (c *Config) describeFixed() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return fmt.Sprintf("v%d %s:%s", c.version, c.get("host"), c.get("port"))
}

// get returns the value of key. c.mu must be held.
func (c *Config) get(key string) string { return c.values[key] }

// Set changes the value of key.
func (c *Config) Set(key, value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.values[key] = value
	c.version++
}

const rounds = 2000

func main() {
	fixed := flag.Bool("fixed", false, "do not read-lock recursively")
	flag.Parse()

	c := &Config{values: map[string]string{"host": "localhost", "port": "8080"}, fixed: *fixed}
	sync.SetName(&c.mu, "Config.mu")

	deadlock := make(chan struct{})
	var once sync.Once
	inspect.OnReport(func(r report.Report) {
		if r.Kind == report.KindDeadlock {
			once.Do(func() { close(deadlock) })
		}
	})

	var wg sync.WaitGroup
	var last string
	wg.Go(func() { // the reader
		for range rounds {
			last = c.Describe()
		}
	})
	wg.Go(func() { // the writer
		for i := range rounds {
			c.Set("port", strconv.Itoa(8080+i%10))
		}
	})
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()

	select {
	case <-finished:
		fmt.Printf("finished %d reads and %d writes; last read: %s\n", rounds, rounds, last)
	case <-deadlock:
		fmt.Println("the reader and the writer deadlocked")
	}

	reps := inspect.Reports()
	fmt.Printf("\nreports: %d\n", len(reps))
	for _, r := range reps {
		fmt.Printf("%s: %s\n", r.Kind, r.Summary)
		for _, g := range r.Goroutines {
			fmt.Printf("  goroutine %d %s %s", g.ID, g.Role, g.Lock)
			if len(g.Stack) > 0 {
				f := g.Stack[0]
				fmt.Printf(" at %s (%s:%d)", f.Function, filepath.Base(f.File), f.Line)
			}
			fmt.Println()
		}
	}
}
