package events

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/report"
)

// Subscriptions. The locking goroutine delivers events with a non-blocking
// send; a full channel drops the event and counts it. Thresholds of all
// subscriptions are folded into two atomics so that, with no subscriber, a
// release costs one load to find out there is nothing to send.

// Subscription receives Events; see Subscribe.
type Subscription struct {
	opts    Options
	ch      chan report.Event
	dropped atomic.Uint64
	closed  atomic.Bool
}

var (
	subsMu  rt.RankedMutex[rt.RSubs]
	subs    atomic.Pointer[[]*Subscription] // copy-on-write
	minWait atomic.Int64                    // smallest MinWait subscribed, MaxInt64 if none
	minHold atomic.Int64
	AnyRep  atomic.Bool
)

func init() {
	minWait.Store(math.MaxInt64)
	minHold.Store(math.MaxInt64)
}

// Subscribe starts delivering events to a new Subscription. Events are
// never waited for: when the channel is full they are dropped and counted
// (Dropped). Close the subscription when done.
func Subscribe(opts Options) *Subscription {
	if opts.Buffer <= 0 {
		opts.Buffer = 1024
	}
	s := &Subscription{opts: opts, ch: make(chan report.Event, opts.Buffer)}
	subsMu.Lock()
	var list []*Subscription
	if p := subs.Load(); p != nil {
		list = append(list, *p...)
	}
	list = append(list, s)
	subs.Store(&list)
	recomputeThresholds(list)
	subsMu.Unlock()
	return s
}

// C returns the channel events arrive on. It is closed by Close.
func (s *Subscription) C() <-chan report.Event { return s.ch }

// Dropped returns how many events did not fit in the channel.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close stops delivery and closes the channel.
func (s *Subscription) Close() {
	subsMu.Lock()
	defer subsMu.Unlock()
	if s.closed.Swap(true) {
		return
	}
	var list []*Subscription
	if p := subs.Load(); p != nil {
		for _, x := range *p {
			if x != s {
				list = append(list, x)
			}
		}
	}
	subs.Store(&list)
	recomputeThresholds(list)
	// Senders check closed under no lock; a send racing with close must not
	// panic, so the channel is closed only after senders can no longer see s.
	// publishEvent recovers from that one race.
	close(s.ch)
}

func recomputeThresholds(list []*Subscription) {
	w, h := int64(math.MaxInt64), int64(math.MaxInt64)
	rep := false
	for _, s := range list {
		if s.opts.MinWait > 0 && int64(s.opts.MinWait) < w {
			w = int64(s.opts.MinWait)
		}
		if s.opts.MinHold > 0 && int64(s.opts.MinHold) < h {
			h = int64(s.opts.MinHold)
		}
		rep = rep || s.opts.Reports
	}
	minWait.Store(w)
	minHold.Store(h)
	AnyRep.Store(rep)
}

func MinWaitSubscribed() int64 { return minWait.Load() }
func MinHoldSubscribed() int64 { return minHold.Load() }

// eventContext is SetEventContext's function, or nil.
var eventContext atomic.Pointer[func(goroutine int64) context.Context]

// SetEventContext installs f to give a context to the wait and hold events
// that have none (the lock was taken with Lock, not LockContext): f receives
// the goroutine that waited or held and returns a context carrying its
// current span, or nil. For a wait it is asked about the holder too
// (Event.HolderContext), at the wait's end, when the holder has just let go. The exporter installs its table of the spans active
// per goroutine so. f is called on the locking goroutine, only for events
// some subscription wants (waits and holds above a threshold), never on the
// uncontended path; it must be fast, must not block and must not take a
// debugmutex lock. nil removes it.
func SetEventContext(f func(goroutine int64) context.Context) {
	if f == nil {
		eventContext.Store(nil)
		return
	}
	eventContext.Store(&f)
}

// GoroutineID returns the current goroutine's id, the one events and
// reports name (and Go's stack dumps print).
func GoroutineID() int64 { return rt.CurGoid() }

// PublishEvent offers ev to every subscription that wants it, never blocking.
func PublishEvent(ev report.Event) {
	p := subs.Load()
	if p == nil {
		return
	}
	looked := ev.Kind == report.EventReport
	for _, s := range *p {
		if !s.Wants(ev) {
			continue
		}
		if !looked {
			looked = true
			if f := eventContext.Load(); f != nil {
				if ev.Context == nil {
					ev.Context = (*f)(ev.Goroutine)
				}
				if ev.Kind == report.EventWait && ev.Holder != 0 {
					ev.HolderContext = (*f)(ev.Holder)
				}
			}
		}
		s.send(ev)
	}
}

func (s *Subscription) Wants(ev report.Event) bool {
	switch ev.Kind {
	case report.EventWait:
		return s.opts.MinWait > 0 && ev.Duration >= s.opts.MinWait
	case report.EventHold:
		return s.opts.MinHold > 0 && ev.Duration >= s.opts.MinHold
	case report.EventReport:
		return s.opts.Reports
	}
	return false
}

func (s *Subscription) send(ev report.Event) {
	defer func() {
		// Close raced with this send after wants() saw s: drop the event.
		if recover() != nil {
			s.dropped.Add(1)
		}
	}()
	if s.closed.Load() {
		return
	}
	select {
	case s.ch <- ev:
	default:
		s.dropped.Add(1)
	}
}

// Options says which events a Subscription receives.
type Options struct {
	// MinWait: waits at least this long are delivered (0: none).
	MinWait time.Duration
	// MinHold: holds at least this long are delivered (0: none).
	MinHold time.Duration
	// Reports: deliver every Report.
	Reports bool
	// Buffer is the channel capacity (default 1024). When it is full,
	// events are dropped and counted, never waited for.
	Buffer int
}
