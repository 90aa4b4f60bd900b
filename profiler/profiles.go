package profiler

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/inspect"
)

// The profile names, as used by Collect, WriteProfile, the HTTP handler's
// paths (/debug/locks/<name>) and the file writer's file names.
const (
	// Contention is where goroutines waited for locks, by the waiter's
	// stack: sample types contentions/count and delay/nanoseconds.
	Contention = "contention"
	// ContentionByHolder is the same waiting charged to the acquire stack of
	// the goroutine that held the lock when the wait began.
	ContentionByHolder = "contention-by-holder"
	// Hold is acquisitions and hold time by acquire stack: sample types
	// acquisitions/count and hold/nanoseconds. Short holds are sampled and
	// weighted (unbiased estimates); holds of 10µs or more are all timed.
	Hold = "hold"
	// TryLock is failed TryLock/TryRLock calls by call site: sample type
	// failures/count. Exact.
	TryLock = "trylock"
	// Held is a snapshot of the locks held right now, by acquire stack:
	// sample types locks/count and age/nanoseconds, one sample per hold.
	Held = "held"
)

// Names returns the names of the profiles, in a fixed order.
func Names() []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.name
	}
	return out
}

// UnknownProfileError is returned for a profile name that is not one of
// Names.
type UnknownProfileError struct{ Name string }

// Error says which names are known.
func (e *UnknownProfileError) Error() string {
	return fmt.Sprintf("lockscope: unknown profile %q (want one of %s)", e.Name, strings.Join(Names(), ", "))
}

func specFor(name string) (*spec, error) {
	sp := lookupSpec(name)
	if sp == nil {
		return nil, &UnknownProfileError{Name: name}
	}
	return sp, nil
}

// Collect returns the profile name as it is now: cumulative since the
// program started, or, for Held, a snapshot.
func Collect(name string) (*profile.Profile, error) {
	sp, err := specFor(name)
	if err != nil {
		return nil, err
	}
	if sp.snapshot {
		return buildHeld(inspect.Snapshot(), readMappings()), nil
	}
	return buildRecords(sp, inspect.Records(), readMappings(), time.Now(), 0, inspect.DroppedCounts()), nil
}

// CollectDelta returns the activity recorded in profile name during the next
// d: it waits d (or until ctx is done, which returns ctx's error). Held is a
// snapshot and has no delta: asking for one is an error.
func CollectDelta(ctx context.Context, name string, d time.Duration) (*profile.Profile, error) {
	sp, err := specFor(name)
	if err != nil {
		return nil, err
	}
	if sp.snapshot {
		return nil, fmt.Errorf("lockscope: profile %q is a snapshot and has no delta", name)
	}
	if d <= 0 {
		return nil, fmt.Errorf("lockscope: delta of %v: want a positive duration", d)
	}
	before := inspect.Records()
	if f := deltaBegan.Load(); f != nil {
		(*f)()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
	}
	after := inspect.Records()
	return buildRecords(sp, subtractRecords(before, after), readMappings(), time.Now(), d, inspect.DroppedCounts()), nil
}

// deltaBegan, when set, is called by CollectDelta once it has read the
// starting records (tests use it to know when to act).
var deltaBegan atomic.Pointer[func()]

// WriteProfile writes the profile name (see Collect), gzipped protobuf as
// `go tool pprof` reads it, to w.
func WriteProfile(w io.Writer, name string) error {
	p, err := Collect(name)
	if err != nil {
		return err
	}
	return p.Write(w)
}
