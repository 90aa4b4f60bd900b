//go:build !nolockscope

package profiler

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/debugmutex"
)

// Continuous profilers scrape deltas: Grafana Pyroscope (Alloy's
// pyroscope.scrape with profile.custom and delta = true) asks for
// ?seconds=N-1 every N seconds, Parca likewise with a custom path, and both
// ask for several profiles at once. The deltas must add up to what the
// cumulative profiles gained. The workload runs only in the middle of each
// window and pauses in the gaps between them, so that the sum is exact.
func TestDeltaScrapesAddUp(t *testing.T) {
	const (
		every   = 3 * time.Second // the scrape interval N
		seconds = "2"             // N-1
		rounds  = 3
		fails   = 50 // TryLock failures per round
	)
	var try, mu debugmutex.Mutex
	debugmutex.SetName(&try, "scrape.try")
	debugmutex.SetName(&mu, "scrape.mu")
	parkHolding(t, &try, "scrape.try") // every TryLock fails
	srv := newServer(t)

	cumulative := func() (tryFails, contentions int64) {
		tp, err := Collect(TryLock)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := Collect(Contention)
		if err != nil {
			t.Fatal(err)
		}
		return countFor(tp, "scrape.try"), countFor(cp, "scrape.mu")
	}
	f0, c0 := cumulative()

	var sumFails, sumContentions int64
	for round := range rounds {
		start := time.Now()
		type result struct {
			name string
			p    *profile.Profile
		}
		results := make(chan result, 3)
		for _, name := range []string{TryLock, Contention, Hold} { // several at once
			go func() {
				resp, body := get(t, srv.URL+Prefix+name+"?seconds="+seconds)
				if resp.StatusCode != 200 {
					t.Errorf("%s?seconds=%s: %s: %s", name, seconds, resp.Status, body)
					results <- result{name, nil}
					return
				}
				p, err := profile.Parse(bytes.NewReader(body))
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
				results <- result{name, p}
			}()
		}
		// Inside the windows, away from their edges (timing the workload,
		// not synchronising with it: the server's window has no signal).
		time.Sleep(500 * time.Millisecond)
		for range fails {
			if try.TryLock() {
				t.Fatal("TryLock of a held lock succeeded")
			}
		}
		contendNamed(&mu, "scrape.mu")
		contendNamed(&mu, "scrape.mu")
		for range 3 {
			r := <-results
			if r.p == nil {
				continue
			}
			checkValid(t, r.p)
			if r.p.DurationNanos < 2e9 {
				t.Errorf("%s delta lasts %v, want the 2s asked for", r.name, time.Duration(r.p.DurationNanos))
			}
			switch r.name {
			case TryLock:
				n := countFor(r.p, "scrape.try")
				if n != fails {
					t.Errorf("round %d: trylock delta %d failures, want the %d made in its window", round, n, fails)
				}
				sumFails += n
			case Contention:
				n := countFor(r.p, "scrape.mu")
				if n < 2 {
					t.Errorf("round %d: contention delta %d, want at least the 2 made in its window", round, n)
				}
				sumContentions += n
			}
		}
		if d := time.Until(start.Add(every)); d > 0 {
			time.Sleep(d) // the scrape interval
		}
	}
	f1, c1 := cumulative()
	if sumFails != f1-f0 || sumFails != rounds*fails {
		t.Errorf("trylock deltas add up to %d; the cumulative profile gained %d; %d were made", sumFails, f1-f0, rounds*fails)
	}
	if sumContentions != c1-c0 {
		t.Errorf("contention deltas add up to %d; the cumulative profile gained %d", sumContentions, c1-c0)
	}
}
