// Command increment is the first mutex program every Go programmer writes:
// ten goroutines increment a shared counter under a mutex, with
// defer Unlock. It is correct, so lockscope reports nothing; what it shows
// is the lock's contention profile: how often the goroutines found the
// counter's lock taken, how long they waited, and where.
//
// Run it with:
//
//	go run ./examples/increment
//
// It prints the final count (10000), the counter lock's statistics, and
// the call sites that waited for it, worst first. It exits 0.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	sync "github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

const (
	workers    = 10
	increments = 1000
)

// Counter is a counter safe for concurrent use.
type Counter struct {
	mu sync.Mutex
	n  int
}

// Inc adds one to the counter.
func (c *Counter) Inc() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.n%100 == 0 {
		// Every hundredth increment is slow (think: it also flushes the
		// count somewhere), so that the other goroutines queue up.
		time.Sleep(time.Millisecond)
	}
}

// Value returns the current count.
func (c *Counter) Value() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func main() {
	// Time every hold rather than a sample, so the numbers below are exact.
	sync.Configure(sync.SamplingPeriod(1))

	var c Counter
	sync.SetName(&c.mu, "Counter.mu")

	var wg sync.WaitGroup
	start := make(chan struct{})
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range increments {
				c.Inc()
			}
		}()
	}
	close(start)
	wg.Wait()
	fmt.Printf("count: %d (want %d)\n", c.Value(), workers*increments)

	fmt.Println("\nlock statistics:")
	for _, s := range inspect.LockStats() {
		if s.Lock != "Counter.mu" {
			continue
		}
		fmt.Printf("  %s: %d acquisitions, held %v in total, %d contentions, waited %v in total\n",
			s.Lock, s.Acquisitions, s.HoldTime.Round(time.Millisecond), s.Contentions, s.WaitTime.Round(time.Millisecond))
	}

	// The contention profile: where goroutines waited for the lock.
	type site struct {
		where string
		count int64
		wait  time.Duration
	}
	bySite := map[string]*site{}
	for _, r := range inspect.Records() {
		if r.Kind != report.StatWait || r.Lock != "Counter.mu" {
			continue
		}
		where := callerOutsideLockscope(r.Stack)
		s := bySite[where]
		if s == nil {
			s = &site{where: where}
			bySite[where] = s
		}
		s.count += r.Count
		s.wait += time.Duration(r.Nanos)
	}
	sites := make([]*site, 0, len(bySite))
	for _, s := range bySite {
		sites = append(sites, s)
	}
	slices.SortFunc(sites, func(a, b *site) int { return int(b.wait - a.wait) })
	fmt.Println("\nwaits for Counter.mu by call site, worst first:")
	for _, s := range sites {
		fmt.Printf("  %-40s %5d waits %8v\n", s.where, s.count, s.wait.Round(time.Millisecond))
	}

	fmt.Printf("\nreports: %d\n", len(inspect.Reports()))
	if c.Value() != workers*increments {
		os.Exit(1)
	}
}

// callerOutsideLockscope returns the innermost frame of stack that is not
// lockscope's own, as "function (file:line)".
func callerOutsideLockscope(stack []uintptr) string {
	frames := inspect.Symbolize(stack)
	if len(frames) == 0 {
		return "(unknown)"
	}
	return fmt.Sprintf("%s (%s)", frames[0].Function, shortFile(frames[0].File, frames[0].Line))
}

func shortFile(file string, line int) string {
	return fmt.Sprintf("%s:%d", filepath.Base(file), line)
}
