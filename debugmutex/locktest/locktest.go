// Package locktest fails tests that leave lock problems behind, the way
// go.uber.org/goleak fails tests that leave goroutines behind: a test (or a
// whole test binary) fails if lockscope made a report while it ran, or if a
// lock is still held when it ends. The end of a test counts as the end for
// what it left: a lock held by a goroutine that has exited, or a goroutine
// waiting for a lock it holds itself, fails it at once, however short the
// test and whatever the thresholds (see inspect.CheckEnd).
//
//	func TestCache(t *testing.T) {
//		defer locktest.VerifyNone(t)
//		...
//	}
//
//	func TestMain(m *testing.M) {
//		locktest.VerifyTestMain(m)
//	}
//
// Code under test must use github.com/lockscope/lockscope/debugmutex locks
// (by import, or through `lockscope test`).
package locktest

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// TestingT is the part of *testing.T that VerifyNone uses.
type TestingT interface {
	Helper()
	Error(args ...any)
}

// TestingM is the part of *testing.M that VerifyTestMain uses.
type TestingM interface {
	Run() int
}

// Option changes what is checked.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	baseReports map[string]int // report key -> count to ignore
	baseHeld    map[heldKey]bool
	kinds       []report.Kind
	locks       []string
	allowHeld   bool
	wait        time.Duration
}

type heldKey struct {
	goroutine int64
	lock      uint64
}

func buildOptions(opts []Option) *options {
	o := &options{wait: 2 * time.Second}
	for _, opt := range opts {
		opt.apply(o)
	}
	return o
}

// IgnoreCurrent ignores the reports made and the locks held at the moment
// it is called: `defer locktest.VerifyNone(t, locktest.IgnoreCurrent())`
// checks only what the test itself does.
func IgnoreCurrent() Option {
	reports := map[string]int{}
	for _, r := range inspect.Reports() {
		reports[r.Key] = r.Count
	}
	held := map[heldKey]bool{}
	for _, h := range inspect.Snapshot().Held {
		held[heldKey{h.Goroutine, h.Lock.ID}] = true
	}
	return optionFunc(func(o *options) { o.baseReports, o.baseHeld = reports, held })
}

// IgnoreKinds ignores reports of these kinds.
func IgnoreKinds(kinds ...report.Kind) Option {
	return optionFunc(func(o *options) { o.kinds = append(o.kinds, kinds...) })
}

// IgnoreLocks ignores reports that name, and holds of, locks with these
// names (SetName names or first acquire sites).
func IgnoreLocks(names ...string) Option {
	return optionFunc(func(o *options) { o.locks = append(o.locks, names...) })
}

// AllowHeld does not fail on locks still held at the end.
func AllowHeld() Option {
	return optionFunc(func(o *options) { o.allowHeld = true })
}

// MaxWait is how long Find waits for held locks to be released by
// goroutines that are still finishing (default 2s). Reports are final.
func MaxWait(d time.Duration) Option {
	return optionFunc(func(o *options) { o.wait = d })
}

// Find returns an error describing every report made and every lock still
// held (after waiting up to MaxWait for holders to finish), or nil.
func Find(opts ...Option) error {
	o := buildOptions(opts)
	// The end of a test is the end for what it left behind: a lock held by
	// a goroutine that has exited, a goroutine stuck in a recursive Lock
	// within the grace are reported now, not after a threshold that a
	// short test never reaches.
	inspect.CheckEnd()
	var problems []string
	for _, r := range inspect.Reports() {
		if base, ok := o.baseReports[r.Key]; ok && r.Count <= base {
			continue
		}
		if slices.Contains(o.kinds, r.Kind) || o.namesIgnored(r) {
			continue
		}
		problems = append(problems, r.String())
	}
	if !o.allowHeld {
		deadline := time.Now().Add(o.wait)
		delay := time.Millisecond
		for {
			held := o.held()
			if len(held) == 0 {
				break
			}
			if time.Now().After(deadline) {
				for _, h := range held {
					problems = append(problems, fmt.Sprintf("%s %s still %s-held by goroutine %d, acquired at %s %v ago",
						h.Lock.Type, h.Lock.Name, h.Mode, h.Goroutine, h.Site.Site(), h.For.Round(time.Millisecond)))
				}
				break
			}
			// Holders may still be finishing: look again, backing off like
			// goleak does.
			time.Sleep(delay)
			delay = min(2*delay, 100*time.Millisecond)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New("lockscope found lock problems:\n" + strings.Join(problems, "\n"))
}

func (o *options) held() []report.Holding {
	var out []report.Holding
	for _, h := range inspect.Snapshot().Held {
		if o.baseHeld[heldKey{h.Goroutine, h.Lock.ID}] || slices.Contains(o.locks, h.Lock.Name) {
			continue
		}
		out = append(out, h)
	}
	return out
}

func (o *options) namesIgnored(r report.Report) bool {
	if len(o.locks) == 0 || len(r.Locks) == 0 {
		return false
	}
	for _, l := range r.Locks {
		if !slices.Contains(o.locks, l.Name) {
			return false
		}
	}
	return true
}

// VerifyNone fails t if Find finds anything. Use it with defer at the top
// of a test.
func VerifyNone(t TestingT, opts ...Option) {
	t.Helper()
	if err := Find(opts...); err != nil {
		t.Error(err)
	}
}

// VerifyTestMain runs the tests and then Find; if it finds anything, it
// prints it and exits with status 1 even if the tests passed. Before it
// exits it runs inspect.Exiting, so that what the end of the binary
// makes certain is reported, and profile writers registered with
// inspect.AtExit write their last profiles.
func VerifyTestMain(m TestingM, opts ...Option) {
	code := m.Run()
	if code == 0 {
		if err := Find(opts...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(inspect.Exiting(code))
}
