//go:build !nolockscope

package profiler

import (
	"context"
	rpprof "runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
)

// The pprof labels of LockContext's context land on that wait's and hold's
// samples, so that go tool pprof -tagfocus selects them.
func TestLockContextPprofLabelsOnSamples(t *testing.T) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "labels.mu")
	checkout := rpprof.WithLabels(context.Background(), rpprof.Labels("endpoint", "/checkout"))
	browse := rpprof.WithLabels(context.Background(), rpprof.Labels("endpoint", "/browse"))

	// A contended wait under each label, and a timed hold (a new lock
	// times its first holds).
	for _, ctx := range []context.Context{checkout, browse} {
		mu.Lock()
		done := make(chan struct{})
		go func() {
			debugmutex.LockContext(ctx, &mu)
			time.Sleep(time.Millisecond) // the hold
			mu.Unlock()
			close(done)
		}()
		for !hasWaiter("labels.mu") {
			<-time.After(time.Millisecond) // polling for the waiter to block
		}
		mu.Unlock()
		<-done
	}

	for _, name := range []string{Contention, ContentionByHolder, Hold} {
		p, err := Collect(name)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, s := range p.Sample {
			if s.Label["lock"][0] == "labels.mu" && len(s.Label["endpoint"]) == 1 {
				got[s.Label["endpoint"][0]] += s.Value[0]
			}
		}
		if got["/checkout"] < 1 || got["/browse"] < 1 {
			t.Errorf("%s: samples of labels.mu by endpoint %v, want both endpoints", name, got)
		}
	}

	path := writeTemp(t, Contention)
	out := pprof(t, "-top", "-sample_index=contentions", "-tagfocus=endpoint=/checkout", path)
	if !strings.Contains(out, "profiler.TestLockContextPprofLabelsOnSamples.func1") || !strings.Contains(out, "Showing nodes accounting for 1, ") {
		t.Errorf("go tool pprof -tagfocus=endpoint=/checkout: want the one /checkout wait:\n%s", out)
	}
}
