//go:build !nolockscope

package exporter

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/lockscope/lockscope/debugmutex"
)

// These tests run the real debugmutex engine and check the spans that come
// out of it, through the SDK's span recorder.

func startRecorded(t *testing.T, opts ...Option) (*Exporter, *tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	t.Helper()
	sr, tp := newRecorder()
	e, err := Start(context.Background(), append([]Option{WithTracerProvider(tp)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return e, sr, tp
}

func flush(t *testing.T, e *Exporter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// contend makes lock() wait: another goroutine holds l while lock() is
// called. Whether lock() actually blocked before the holder let go is up to
// the scheduler, so callers retry until the exporter saw a wait (attempts
// that did not block produce no wait event and are harmless).
func contend(l sync.Locker, hold time.Duration, lock, unlock func()) {
	locked := make(chan struct{})
	released := make(chan struct{})
	go func() {
		l.Lock()
		close(locked)
		time.Sleep(hold) // the hold being waited on, not synchronisation
		l.Unlock()
		close(released)
	}()
	<-locked
	lock() // blocks until the holder lets go
	unlock()
	<-released
}

// waitSpan retries contention until a wait span for lock name exists.
func waitSpan(t *testing.T, e *Exporter, sr *tracetest.SpanRecorder, name string, attempt func()) sdktrace.ReadOnlySpan {
	t.Helper()
	for range 20 {
		attempt()
		flush(t, e)
		for _, s := range lockSpans(sr) {
			if s.Name() == SpanWait+" "+name && attrMap(s.Attributes())[AttrLockName].AsString() == name {
				return s
			}
		}
	}
	t.Fatalf("no wait span for %s after 20 contended attempts", name)
	return nil
}

func TestLockContextWaitIsChildOfRequestSpan(t *testing.T) {
	e, sr, tp := startRecorded(t)
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "test.account")
	ctx, req := tp.Tracer("test").Start(context.Background(), "GET /account")
	var line int
	s := waitSpan(t, e, sr, "test.account", func() {
		contend(&mu, 5*time.Millisecond, func() {
			_, _, line, _ = runtime.Caller(0)
			debugmutex.LockContext(ctx, &mu) // must be the line after runtime.Caller
		}, mu.Unlock)
	})
	req.End()

	if s.Parent().SpanID() != req.SpanContext().SpanID() || s.SpanContext().TraceID() != req.SpanContext().TraceID() {
		t.Errorf("wait span's parent %v, want the request span %v", s.Parent(), req.SpanContext())
	}
	a := attrMap(s.Attributes())
	if got := a["code.function.name"].AsString(); got != "github.com/lockscope/lockscope/exporter.TestLockContextWaitIsChildOfRequestSpan.func1.1" {
		t.Errorf("code.function.name = %q, want the closure calling LockContext", got)
	}
	if got := a["code.line.number"].AsInt64(); got != int64(line+1) {
		t.Errorf("code.line.number = %d, want %d", got, line+1)
	}
	if a[AttrLockMode].AsString() != "write" || a[AttrLockType].AsString() != "Mutex" || a[AttrLockID].AsInt64() == 0 {
		t.Errorf("lock attributes %v", s.Attributes())
	}
	if a[AttrGoroutine].AsInt64() == 0 || a[AttrHolder].AsInt64() == 0 || a[AttrHolder] == a[AttrGoroutine] {
		t.Errorf("goroutine %v, holder %v: want two goroutine ids", a[AttrGoroutine].Emit(), a[AttrHolder].Emit())
	}
	if site := a[AttrHolderSite].AsString(); site == "" {
		t.Errorf("no %s", AttrHolderSite)
	}
	wait := time.Duration(a[AttrWaitNanos].AsInt64())
	if wait < DefaultMinWait || s.EndTime().Sub(s.StartTime()) != wait {
		t.Errorf("wait %v, span lasts %v: want the same, at least %v", wait, s.EndTime().Sub(s.StartTime()), DefaultMinWait)
	}
}

func TestPlainLockWaitIsRootSpanOfLockscopeTracer(t *testing.T) {
	e, sr, _ := startRecorded(t)
	var rw debugmutex.RWMutex
	debugmutex.SetName(&rw, "test.cache")
	s := waitSpan(t, e, sr, "test.cache", func() {
		contend(&rw, 5*time.Millisecond, rw.RLock, rw.RUnlock)
	})
	if s.Parent().IsValid() {
		t.Errorf("parent %v, want a root span", s.Parent())
	}
	a := attrMap(s.Attributes())
	if a[AttrLockMode].AsString() != "read" || a[AttrLockType].AsString() != "RWMutex" {
		t.Errorf("mode %v type %v, want read RWMutex", a[AttrLockMode].Emit(), a[AttrLockType].Emit())
	}
}

func TestHoldAboveThresholdIsSpan(t *testing.T) {
	// Thresholds far apart, so that a loaded machine cannot stretch the
	// short hold past the threshold.
	e, sr, tp := startRecorded(t, WithMinHold(20*time.Millisecond))
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "test.ledger")
	ctx, req := tp.Tracer("test").Start(context.Background(), "POST /ledger")
	// A new lock times its first holds (see debugmutex's sampling).
	debugmutex.LockContext(ctx, &mu)
	time.Sleep(25 * time.Millisecond) // the hold being measured
	mu.Unlock()
	mu.Lock() // a short hold: under the threshold, no span
	mu.Unlock()
	req.End()
	flush(t, e)

	var holds []sdktrace.ReadOnlySpan
	for _, s := range lockSpans(sr) {
		if s.Name() == SpanHold+" test.ledger" && attrMap(s.Attributes())[AttrLockName].AsString() == "test.ledger" {
			holds = append(holds, s)
		}
	}
	if len(holds) != 1 {
		t.Fatalf("%d hold spans, want 1", len(holds))
	}
	s := holds[0]
	if s.Parent().SpanID() != req.SpanContext().SpanID() {
		t.Errorf("hold span's parent %v, want the request span", s.Parent())
	}
	a := attrMap(s.Attributes())
	if d := time.Duration(a[AttrHoldNanos].AsInt64()); d < 25*time.Millisecond || s.EndTime().Sub(s.StartTime()) != d {
		t.Errorf("hold %v, span lasts %v", d, s.EndTime().Sub(s.StartTime()))
	}
	if got := a["code.function.name"].AsString(); got != "github.com/lockscope/lockscope/exporter.TestHoldAboveThresholdIsSpan" {
		t.Errorf("code.function.name = %q, want the test (where the lock was taken)", got)
	}
}

// lockOrderReported says whether TestLockOrderReportIsErrorSpan has made its
// report in this process: debugmutex reports a problem once and counts the
// repeats, so with -count=N only the first run can see a report span.
var lockOrderReported bool

func TestLockOrderReportIsErrorSpan(t *testing.T) {
	debugmutex.Configure(debugmutex.Quiet(true)) // the report is expected
	t.Cleanup(func() { debugmutex.Configure(debugmutex.Quiet(false)) })
	e, sr, _ := startRecorded(t)
	var a, b debugmutex.Mutex
	debugmutex.SetName(&a, "test.a")
	debugmutex.SetName(&b, "test.b")
	a.Lock()
	b.Lock()
	b.Unlock()
	a.Unlock()
	b.Lock()
	a.Lock() // b then a: inverts a then b
	a.Unlock()
	b.Unlock()
	flush(t, e)

	var rep []sdktrace.ReadOnlySpan
	for _, s := range lockSpans(sr) {
		if s.Name() == "lockscope.report lock-order" {
			rep = append(rep, s)
		}
	}
	if lockOrderReported {
		// A repeat is counted by debugmutex, not exported again.
		if len(rep) != 0 {
			t.Errorf("a repeated problem made %d more report spans", len(rep))
		}
		return
	}
	lockOrderReported = true
	if len(rep) != 1 {
		t.Fatalf("%d lock-order report spans, want 1", len(rep))
	}
	s := rep[0]
	if s.Status().Code != codes.Error || s.Status().Description == "" {
		t.Errorf("status %+v, want Error with the summary", s.Status())
	}
	locks := attrMap(s.Attributes())[AttrReportLocks].AsStringSlice()
	if !slices.Contains(locks, "test.a") || !slices.Contains(locks, "test.b") {
		t.Errorf("%s = %v, want test.a and test.b", AttrReportLocks, locks)
	}
	edges := 0
	for _, ev := range s.Events() {
		if ev.Name == EventEdge {
			edges++
		}
	}
	if edges != 2 {
		t.Errorf("%d edge events, want the 2 edges of the cycle", edges)
	}
}

func TestStatsAccountForEveryEvent(t *testing.T) {
	e, _, _ := startRecorded(t, WithSampling(0.5), WithMinHold(time.Millisecond))
	var mu debugmutex.Mutex
	for range 20 {
		mu.Lock()
		time.Sleep(2 * time.Millisecond) // a hold above the threshold
		mu.Unlock()
	}
	flush(t, e)
	st := e.Stats()
	if st.Events < 20 {
		t.Errorf("%d events, want the 20 holds", st.Events)
	}
	if st.Events != st.Spans+st.SampledOut {
		t.Errorf("events %d != spans %d + sampled out %d", st.Events, st.Spans, st.SampledOut)
	}
	if st.DroppedEvents != 0 || st.Exported != 0 || st.FailedSpans != 0 || st.DroppedSpans != 0 {
		t.Errorf("stats %+v: nothing should be dropped, and export counts are the provider's", st)
	}
}

func TestStopEndsExporterAndIsIdempotent(t *testing.T) {
	sr, tp := newRecorder()
	e, err := Start(context.Background(), WithTracerProvider(tp), WithMinHold(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	var mu debugmutex.Mutex
	mu.Lock()
	mu.Unlock() // a new lock's first hold is timed: one event
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := e.Flush(context.Background()); err == nil {
		t.Error("Flush after Stop succeeded")
	}
	if n := len(lockSpans(sr)); n == 0 {
		t.Error("Stop did not turn the pending event into a span")
	}
	before := e.Stats().Events
	mu.Lock()
	mu.Unlock()
	if e.Stats().Events != before {
		t.Error("events received after Stop")
	}
}
