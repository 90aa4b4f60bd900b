// Command hitcounter counts page hits in a struct that embeds its mutex,
// and shows the bug that embedding makes easy to miss: Hit forgets to
// Unlock on one path (an invalid page), so the first bad request leaves the
// lock held by a goroutine that has already exited. Every later request
// hangs. lockscope's watchdog reports the never-released lock (a
// leaked-lock report): which goroutine took it, that it has exited, and the
// line where it was taken.
//
// Run it with:
//
//	go run ./examples/hitcounter
//
// The report prints on stderr a fraction of a second after the bad request:
// the program sets a 100ms hold threshold unless LOCKSCOPE_HOLD_THRESHOLD
// says otherwise (the default, 30s, suits real programs better). main waits
// for that report, prints what it learned and exits 0, leaving the stuck
// request behind. With -fixed, Hit unlocks on every path (defer), every
// request completes, and lockscope stays silent.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	sync "github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// HitCounter counts hits per page. The embedded Mutex guards hits; its
// Lock and Unlock are HitCounter's own methods.
type HitCounter struct {
	sync.Mutex
	hits map[string]int
}

var errBadPage = errors.New("page must start with /")

// Hit counts a hit on page. BUG: the invalid-page path returns with the
// counter still locked.
func (c *HitCounter) Hit(page string) error {
	c.Lock()
	if !strings.HasPrefix(page, "/") {
		return errBadPage // forgot c.Unlock()
	}
	c.hits[page]++
	c.Unlock()
	return nil
}

// HitFixed is Hit with the Unlock deferred, so no path can skip it.
func (c *HitCounter) HitFixed(page string) error {
	c.Lock()
	defer c.Unlock()
	if !strings.HasPrefix(page, "/") {
		return errBadPage
	}
	c.hits[page]++
	return nil
}

func main() {
	fixed := flag.Bool("fixed", false, "unlock on every path")
	flag.Parse()
	if os.Getenv(inspect.EnvHoldThreshold) == "" {
		sync.Configure(sync.HoldThreshold(100 * time.Millisecond))
	}

	c := &HitCounter{hits: map[string]int{}}
	sync.SetName(&c.Mutex, "HitCounter") // the embedded mutex is c.Mutex

	found := make(chan report.Report, 1)
	inspect.OnReport(func(r report.Report) {
		select {
		case found <- r:
		default:
		}
	})

	// Each request is served by a goroutine of its own, as net/http does,
	// one after the other.
	requests := []string{"/", "/about", "about", "/", "/contact"}
	for _, page := range requests {
		done := make(chan error, 1)
		go func() {
			if *fixed {
				done <- c.HitFixed(page)
			} else {
				done <- c.Hit(page)
			}
		}()
		select {
		case err := <-done:
			if err != nil {
				fmt.Printf("GET %-9s -> 400 %v\n", page, err)
			} else {
				fmt.Printf("GET %-9s -> 200\n", page)
			}
		case r := <-found:
			fmt.Printf("GET %-9s -> (stuck)\n", page)
			explain(r)
			return
		}
	}
	c.Lock()
	fmt.Println("hits:", c.hits)
	c.Unlock()
	fmt.Printf("reports: %d\n", len(inspect.Reports()))
}

// explain prints what lockscope found, in a line or two per goroutine.
func explain(r report.Report) {
	fmt.Printf("\nlockscope found a %s problem: %s\n", r.Kind, r.Summary)
	for _, g := range r.Goroutines {
		state := "alive"
		if g.Exited {
			state = "exited"
		}
		fmt.Printf("  goroutine %d (%s) %s %s", g.ID, state, g.Role, g.Lock)
		if len(g.Stack) > 0 {
			f := g.Stack[0]
			fmt.Printf(" at %s (%s:%d)", f.Function, filepath.Base(f.File), f.Line)
		}
		fmt.Println()
	}
}
