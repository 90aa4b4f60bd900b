//go:build !nolockscope

package exporter

import (
	"context"
	"encoding/binary"
	"strconv"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// activeProvider is a provider that feeds a fresh table (not the process's)
// so that tests can count its entries exactly.
func activeProvider(t *testing.T) (*activeTable, *sdktrace.TracerProvider) {
	t.Helper()
	tab := newActiveTable()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(&activeProcessor{t: tab}))
	return tab, tp
}

func currentID(tab *activeTable) trace.SpanID {
	sc, _ := tab.current(inspect.GoroutineID())
	return sc.SpanID()
}

func TestActiveSpanFollowsNestingAndEndsOnOtherGoroutines(t *testing.T) {
	tab, tp := activeProvider(t)
	tr := tp.Tracer("test")
	if _, ok := tab.current(inspect.GoroutineID()); ok {
		t.Fatal("a span is active before any started")
	}
	ctx, outer := tr.Start(context.Background(), "outer")
	if got := currentID(tab); got != outer.SpanContext().SpanID() {
		t.Fatalf("active %v, want outer %v", got, outer.SpanContext().SpanID())
	}
	_, inner := tr.Start(ctx, "inner")
	if got := currentID(tab); got != inner.SpanContext().SpanID() {
		t.Fatalf("active %v, want inner", got)
	}
	inner.End()
	if got := currentID(tab); got != outer.SpanContext().SpanID() {
		t.Fatalf("after inner ended: active %v, want outer", got)
	}

	// A span started here and ended by another goroutine, out of order:
	// the outer ends first, elsewhere, while a later span is still open.
	_, later := tr.Start(ctx, "later")
	done := make(chan struct{})
	go func() {
		outer.End()
		close(done)
	}()
	<-done
	if got := currentID(tab); got != later.SpanContext().SpanID() {
		t.Fatalf("after outer ended elsewhere: active %v, want later", got)
	}
	// Another goroutine sees none of this goroutine's spans.
	other := make(chan bool)
	go func() {
		_, ok := tab.current(inspect.GoroutineID())
		other <- ok
	}()
	if <-other {
		t.Error("a goroutine that started no span has an active span")
	}
	later.End()
	if _, ok := tab.current(inspect.GoroutineID()); ok {
		t.Error("a span is still active after all ended")
	}
	if n := tab.n.Load(); n != 0 {
		t.Errorf("table holds %d spans after all ended, want 0", n)
	}
	for i := range tab.shards {
		if len(tab.shards[i].byG) != 0 || len(tab.shards[i].gOf) != 0 {
			t.Fatalf("shard %d not empty: %v %v", i, tab.shards[i].byG, tab.shards[i].gOf)
		}
	}
}

func spanCtx(i int) trace.SpanContext {
	var tid trace.TraceID
	var sid trace.SpanID
	binary.BigEndian.PutUint64(tid[8:], uint64(i)+1)
	binary.BigEndian.PutUint64(sid[:], uint64(i)+1)
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid})
}

func TestActiveTableIsBounded(t *testing.T) {
	tab := newActiveTable()
	// Nested too deep on one goroutine: the innermost beyond the bound are
	// not tracked, and the deepest tracked one stays current.
	for i := range maxActivePerG + 5 {
		tab.started(1, spanCtx(i))
	}
	if got := tab.untracked.Load(); got != 5 {
		t.Errorf("untracked %d, want 5", got)
	}
	if sc, _ := tab.current(1); sc.SpanID() != spanCtx(maxActivePerG-1).SpanID() {
		t.Errorf("current %v, want the deepest tracked span", sc.SpanID())
	}
	// Too many at once across goroutines.
	for i := maxActivePerG + 5; i < maxActiveSpans+100; i++ {
		tab.started(int64(2+i/8), spanCtx(i))
	}
	if n := tab.n.Load(); n != maxActiveSpans {
		t.Errorf("table holds %d spans, want the bound %d", n, maxActiveSpans)
	}
	// 5 too deep, and of the second loop's spans all but the
	// maxActiveSpans-maxActivePerG that fitted: 95.
	if got, want := tab.untracked.Load(), uint64(100); got != want {
		t.Errorf("untracked %d, want %d", got, want)
	}
	// Ending every span, tracked or not, empties the table.
	for i := range maxActiveSpans + 100 {
		tab.ended(spanCtx(i).SpanID())
	}
	if n := tab.n.Load(); n != 0 {
		t.Errorf("table holds %d spans after all ended", n)
	}
	// A processor registered twice records a span once.
	tab.started(7, spanCtx(1))
	tab.started(7, spanCtx(1))
	tab.ended(spanCtx(1).SpanID())
	if _, ok := tab.current(7); ok || tab.n.Load() != 0 {
		t.Errorf("after a double start and one end: n=%d", tab.n.Load())
	}
}

func TestActiveTableConcurrentSpans(t *testing.T) {
	tab, tp := activeProvider(t)
	tr := tp.Tracer("test")
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				ctx, a := tr.Start(context.Background(), "a")
				_, b := tr.Start(ctx, "b")
				if currentID(tab) != b.SpanContext().SpanID() {
					errs <- "goroutine " + strconv.Itoa(g) + " iteration " + strconv.Itoa(i) + ": not its own innermost span"
					return
				}
				ended := make(chan struct{})
				go func() { a.End(); close(ended) }() // ended elsewhere
				<-ended
				b.End()
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := tab.n.Load(); n != 0 {
		t.Errorf("table holds %d spans after all ended", n)
	}
}

// The point of it all: a plain Lock in a request span, with no LockContext.
func TestPlainLockInsideSpanIsChildOfIt(t *testing.T) {
	e, sr, tp := startRecorded(t) // registers SpanProcessor on tp
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "test.plain")
	_, req := tp.Tracer("test").Start(context.Background(), "GET /plain")
	s := waitSpan(t, e, sr, "test.plain", func() {
		contend(&mu, 5*time.Millisecond, mu.Lock, mu.Unlock)
	})
	req.End()
	if s.Parent().SpanID() != req.SpanContext().SpanID() || s.SpanContext().TraceID() != req.SpanContext().TraceID() {
		t.Errorf("wait span's parent %v, want the request span %v", s.Parent(), req.SpanContext())
	}
	if s.Name() != "lockscope.wait test.plain" {
		t.Errorf("name %q", s.Name())
	}
	// After the request ended, the same goroutine's waits are root spans.
	s2 := waitSpan(t, e, sr, "test.plain", func() {
		sr.Reset()
		contend(&mu, 5*time.Millisecond, mu.Lock, mu.Unlock)
	})
	if s2.Parent().IsValid() {
		t.Errorf("wait after the request ended has parent %v, want a root span", s2.Parent())
	}
}

func TestReportIsChildOfBlockedGoroutinesSpan(t *testing.T) {
	sr, tp := newRecorder()
	tp.RegisterSpanProcessor(SpanProcessor())
	conv := newConverter(tp.Tracer(TracerName))
	_, req := tp.Tracer("test").Start(context.Background(), "GET /stuck")
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	r := &report.Report{
		Kind: report.KindDeadlock, Summary: "deadlock", Time: at, Key: "k",
		Goroutines: []report.GoroutineRef{
			{ID: 999999999, Role: "holds", Lock: "b.mu"},
			{ID: inspect.GoroutineID(), Role: "waits for write lock", Lock: "a.mu", For: 3 * time.Second},
			{ID: 999999998, Role: "waits for write lock", Lock: "b.mu", For: 2 * time.Second},
		},
	}
	conv.export(report.Event{Kind: report.EventReport, Report: r})
	req.End()
	s := onlySpan(t, sr)
	if s.Parent().SpanID() != req.SpanContext().SpanID() {
		t.Errorf("report's parent %v, want the blocked goroutine's request span", s.Parent())
	}
	// A deadlock began when its cycle closed: the later of the two waits.
	if d := s.EndTime().Sub(s.StartTime()); d != 2*time.Second || !s.EndTime().Equal(at) {
		t.Errorf("span %v to %v (%v), want 2s ending at the report's time", s.StartTime(), s.EndTime(), d)
	}
}

func TestReportWithoutDurationsIsNotZeroLength(t *testing.T) {
	sr, tp := newRecorder()
	conv := newConverter(tp.Tracer(TracerName))
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	conv.export(report.Event{Kind: report.EventReport, Report: &report.Report{
		Kind: report.KindUnlockUnlocked, Time: at,
		Goroutines: []report.GoroutineRef{{ID: 5, Role: "unlocks"}},
	}})
	s := onlySpan(t, sr)
	if d := s.EndTime().Sub(s.StartTime()); d != minReportSpan {
		t.Errorf("span lasts %v, want %v", d, minReportSpan)
	}
}

func TestSpanNamesAreBounded(t *testing.T) {
	sr, tp := newRecorder()
	conv := newConverter(tp.Tracer(TracerName))
	now := time.Now()
	for i := range MaxSpanNames + 2 {
		conv.export(report.Event{Kind: report.EventWait, Start: now, Duration: time.Millisecond,
			Lock: report.LockInfo{Name: "lock" + strconv.Itoa(i)}})
	}
	// A name already admitted keeps its span name past the bound.
	conv.export(report.Event{Kind: report.EventHold, Start: now, Duration: time.Millisecond,
		Lock: report.LockInfo{Name: "lock0"}})
	spans := sr.Ended()
	if got := spans[MaxSpanNames-1].Name(); got != SpanWait+" lock"+strconv.Itoa(MaxSpanNames-1) {
		t.Errorf("last admitted name %q", got)
	}
	for _, s := range spans[MaxSpanNames : MaxSpanNames+2] {
		if s.Name() != SpanWait {
			t.Errorf("name past the bound %q, want %q", s.Name(), SpanWait)
		}
	}
	if got := spans[len(spans)-1].Name(); got != SpanHold+" lock0" {
		t.Errorf("admitted name past the bound %q", got)
	}
}

// The wait span names its cause first: the holder's attributes come before
// the code ones, and a link leads to the span the holder ran in when the
// wait ended, even if that span ends before the wait is exported.
func TestWaitSpanLinksToTheHoldersSpan(t *testing.T) {
	e, sr, tp := startRecorded(t) // registers SpanProcessor on tp
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "test.linked")
	for range 20 {
		var holder trace.SpanContext
		locked, unlocked, acquired, ended := make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})
		go func() {
			defer close(ended)
			_, hs := tp.Tracer("test").Start(context.Background(), "POST /transfer")
			holder = hs.SpanContext()
			mu.Lock()
			close(locked)
			time.Sleep(5 * time.Millisecond) // the hold being waited on, not synchronisation
			mu.Unlock()
			close(unlocked)
			<-acquired // the holding request goes on after its unlock, then ends
			hs.End()
		}()
		<-locked
		ctx, req := tp.Tracer("test").Start(context.Background(), "GET /balance")
		debugmutex.LockContext(ctx, &mu)
		mu.Unlock()
		<-unlocked
		close(acquired)
		<-ended // the holder's span has ended: the link comes from the wait's end
		flush(t, e)
		req.End()
		for _, s := range lockSpans(sr) {
			if s.Name() != SpanWait+" test.linked" || s.Parent().SpanID() != req.SpanContext().SpanID() {
				continue
			}
			links := s.Links()
			if len(links) != 1 || !links[0].SpanContext.Equal(holder) || attrMap(links[0].Attributes)[AttrLinkRole].AsString() != "holder" {
				t.Fatalf("wait span's links %+v, want one to the holder's span %v", links, holder)
			}
			iHolder, iCode := -1, -1
			for i, kv := range s.Attributes() {
				switch kv.Key {
				case AttrHolder:
					iHolder = i
				case "code.function.name":
					iCode = i
				}
			}
			if iHolder < 0 || iCode < 0 || iHolder > iCode {
				t.Errorf("holder attribute at %d, code at %d: want the holder first", iHolder, iCode)
			}
			return
		}
		sr.Reset()
	}
	t.Fatal("no wait span of test.linked after 20 contended attempts")
}
