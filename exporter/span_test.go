package exporter

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// These tests feed the converter hand-made events, so that every field of
// the resulting span can be checked exactly.

// stackHere returns the caller's stack, innermost first, as debugmutex
// records it, and the caller's line.
func stackHere() ([]uintptr, int) {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(2, pcs) // skip runtime.Callers and stackHere
	_, _, line, _ := runtime.Caller(1)
	return pcs[:n], line
}

func newRecorder() (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	sr := tracetest.NewSpanRecorder()
	return sr, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
}

func attrMap(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// lockSpans returns the ended spans of lockscope's tracer.
func lockSpans(sr *tracetest.SpanRecorder) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.InstrumentationScope().Name == TracerName {
			out = append(out, s)
		}
	}
	return out
}

// stackOf returns a lock span's stack: its lockscope.stack event's
// code.stacktrace, "" if it has none.
func stackOf(s sdktrace.ReadOnlySpan) string {
	for _, e := range s.Events() {
		if e.Name == EventStack {
			return attrMap(e.Attributes)["code.stacktrace"].AsString()
		}
	}
	return ""
}

func onlySpan(t *testing.T, sr *tracetest.SpanRecorder) sdktrace.ReadOnlySpan {
	t.Helper()
	spans := lockSpans(sr)
	if len(spans) != 1 {
		t.Fatalf("got %d lockscope spans, want 1", len(spans))
	}
	return spans[0]
}

func TestWaitEventBecomesChildSpanOfRequest(t *testing.T) {
	sr, tp := newRecorder()
	conv := newConverter(tp.Tracer(TracerName))
	ctx, req := tp.Tracer("test").Start(context.Background(), "GET /account")

	waiterStack, waiterLine := stackHere()
	holderStack, holderLine := stackHere()
	start := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	ev := report.Event{
		Kind:        report.EventWait,
		Lock:        report.LockInfo{ID: 7, Name: "account.mu", Type: "Mutex"},
		Mode:        report.Write,
		Goroutine:   42,
		Start:       start,
		Duration:    3 * time.Millisecond,
		Stack:       waiterStack,
		Holder:      41,
		HolderStack: holderStack,
		Context:     ctx,
	}
	if !conv.export(ev) {
		t.Fatal("export returned false for a wait")
	}
	req.End()

	s := onlySpan(t, sr)
	if s.Name() != SpanWait+" account.mu" {
		t.Errorf("name %q, want %q", s.Name(), SpanWait+" account.mu")
	}
	if s.Parent().SpanID() != req.SpanContext().SpanID() || s.SpanContext().TraceID() != req.SpanContext().TraceID() {
		t.Errorf("parent %v, want the request span %v", s.Parent(), req.SpanContext())
	}
	if !s.StartTime().Equal(start) || !s.EndTime().Equal(start.Add(3*time.Millisecond)) {
		t.Errorf("span %v..%v, want %v..%v", s.StartTime(), s.EndTime(), start, start.Add(3*time.Millisecond))
	}
	a := attrMap(s.Attributes())
	fn := "github.com/lockscope/lockscope/exporter.TestWaitEventBecomesChildSpanOfRequest"
	want := map[attribute.Key]attribute.Value{
		AttrLockName:         attribute.StringValue("account.mu"),
		AttrLockType:         attribute.StringValue("Mutex"),
		AttrLockID:           attribute.Int64Value(7),
		AttrLockMode:         attribute.StringValue("write"),
		AttrGoroutine:        attribute.Int64Value(42),
		AttrHolder:           attribute.Int64Value(41),
		AttrWaitNanos:        attribute.Int64Value(3e6),
		"code.function.name": attribute.StringValue(fn),
		"code.line.number":   attribute.IntValue(waiterLine),
		AttrHolderSite:       attribute.StringValue(fn + " at span_test.go:" + strconv.Itoa(holderLine)),
	}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("%s = %v, want %v", k, a[k].Emit(), v.Emit())
		}
	}
	if f := a["code.file.path"].AsString(); !strings.HasSuffix(f, "/exporter/span_test.go") {
		t.Errorf("code.file.path = %q, want .../exporter/span_test.go", f)
	}
	if st := stackOf(s); !strings.HasPrefix(st, fn+"()\n\t") {
		t.Errorf("the stack event's code.stacktrace does not start at the waiter:\n%s", st)
	}
	if _, ok := a["code.stacktrace"]; ok {
		t.Errorf("the stack is an attribute: it belongs on the %s event", EventStack)
	}
	if _, ok := a[AttrHoldNanos]; ok {
		t.Errorf("a wait span has %s", AttrHoldNanos)
	}
}

func TestHoldEventWithoutContextBecomesRootSpan(t *testing.T) {
	sr, tp := newRecorder()
	conv := newConverter(tp.Tracer(TracerName))
	stack, line := stackHere()
	start := time.Now()
	conv.export(report.Event{
		Kind:      report.EventHold,
		Lock:      report.LockInfo{ID: 9, Name: "cache.mu", Type: "RWMutex"},
		Mode:      report.Read,
		Goroutine: 5,
		Start:     start,
		Duration:  20 * time.Millisecond,
		Stack:     stack,
	})
	s := onlySpan(t, sr)
	if s.Name() != SpanHold+" cache.mu" {
		t.Errorf("name %q, want %q", s.Name(), SpanHold+" cache.mu")
	}
	if s.Parent().IsValid() {
		t.Errorf("parent %v, want a root span", s.Parent())
	}
	if got := s.EndTime().Sub(s.StartTime()); got != 20*time.Millisecond {
		t.Errorf("duration %v, want 20ms", got)
	}
	a := attrMap(s.Attributes())
	for k, v := range map[attribute.Key]attribute.Value{
		AttrLockName:       attribute.StringValue("cache.mu"),
		AttrLockType:       attribute.StringValue("RWMutex"),
		AttrLockMode:       attribute.StringValue("read"),
		AttrGoroutine:      attribute.Int64Value(5),
		AttrHoldNanos:      attribute.Int64Value(20e6),
		"code.line.number": attribute.IntValue(line),
	} {
		if a[k] != v {
			t.Errorf("%s = %v, want %v", k, a[k].Emit(), v.Emit())
		}
	}
	for _, k := range []attribute.Key{AttrHolder, AttrHolderSite, AttrWaitNanos} {
		if _, ok := a[k]; ok {
			t.Errorf("a hold span has %s", k)
		}
	}
}

func TestReportBecomesErrorSpanWithEventPerGoroutineAndEdge(t *testing.T) {
	sr, tp := newRecorder()
	conv := newConverter(tp.Tracer(TracerName))
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	fa := report.Frame{Function: "shop.(*Bank).Transfer", File: "/src/shop/bank.go", Line: 40}
	fb := report.Frame{Function: "shop.(*Bank).Audit", File: "/src/shop/audit.go", Line: 12}
	inner := report.Frame{Function: "github.com/lockscope/lockscope/debugmutex.(*Mutex).Lock", File: "/x/mutex.go", Line: 1}
	r := &report.Report{
		Kind:    report.KindLockOrder,
		Summary: "lock-order inversion: a.mu -> b.mu and b.mu -> a.mu",
		Time:    at,
		Count:   1,
		Key:     "k1",
		Locks:   []report.LockRef{{ID: 1, Name: "a.mu", Type: "Mutex"}, {ID: 2, Name: "b.mu", Type: "Mutex"}},
		Goroutines: []report.GoroutineRef{
			{ID: 10, Role: "takes b.mu holding", Lock: "a.mu", Stack: []report.Frame{inner, fa}},
			{ID: 11, Role: "takes a.mu holding", Lock: "b.mu", For: time.Second, Exited: true, Stack: []report.Frame{fb}, Current: []report.Frame{fb}},
		},
		Edges: []report.Edge{
			{From: "a.mu", To: "b.mu", Goroutine: 10, FromStack: []report.Frame{fa}, ToStack: []report.Frame{fa}},
			{From: "b.mu", To: "a.mu", Goroutine: 11, FromStack: []report.Frame{fb}, ToStack: []report.Frame{fb}},
		},
	}
	ctx, req := tp.Tracer("test").Start(context.Background(), "request")
	conv.export(report.Event{Kind: report.EventReport, Report: r, Context: ctx})
	req.End()

	s := onlySpan(t, sr)
	if s.Name() != "lockscope.report lock-order" {
		t.Errorf("name %q", s.Name())
	}
	if s.Parent().SpanID() != req.SpanContext().SpanID() {
		t.Errorf("parent %v, want the request span", s.Parent())
	}
	if s.Status().Code != codes.Error || s.Status().Description != r.Summary {
		t.Errorf("status %+v, want Error %q", s.Status(), r.Summary)
	}
	// The span lasts from when the longest hold involved began (goroutine
	// 11's, 1s before) to when the inversion was found.
	if !s.StartTime().Equal(at.Add(-time.Second)) || !s.EndTime().Equal(at) {
		t.Errorf("span %v to %v, want %v to the report's time %v", s.StartTime(), s.EndTime(), at.Add(-time.Second), at)
	}
	a := attrMap(s.Attributes())
	if a[AttrReportKind].AsString() != "lock-order" || a[AttrReportSummary].AsString() != r.Summary ||
		a[AttrReportKey].AsString() != "k1" || a[AttrReportCount].AsInt64() != 1 {
		t.Errorf("report attributes %v", s.Attributes())
	}
	if got := a[AttrReportLocks].AsStringSlice(); len(got) != 2 || got[0] != "a.mu" || got[1] != "b.mu" {
		t.Errorf("%s = %v", AttrReportLocks, got)
	}
	if a["code.function.name"].AsString() != fa.Function {
		t.Errorf("code.function.name = %q, want the first user frame %q", a["code.function.name"].AsString(), fa.Function)
	}

	evs := s.Events()
	if len(evs) != 4 {
		t.Fatalf("got %d span events, want 2 goroutines + 2 edges", len(evs))
	}
	g1, g2, e1 := attrMap(evs[0].Attributes), attrMap(evs[1].Attributes), attrMap(evs[2].Attributes)
	if evs[0].Name != EventGoroutine || g1[AttrGoroutine].AsInt64() != 10 || g1[AttrRole].AsString() != "takes b.mu holding" ||
		g1[AttrGLock].AsString() != "a.mu" || g1["code.function.name"].AsString() != fa.Function {
		t.Errorf("first goroutine event %s %v", evs[0].Name, evs[0].Attributes)
	}
	if g2[AttrForNanos].AsInt64() != 1e9 || !g2[AttrExited].AsBool() || g2[AttrCurrent].AsString() == "" {
		t.Errorf("second goroutine event %v", evs[1].Attributes)
	}
	if evs[2].Name != EventEdge || e1[AttrEdgeFrom].AsString() != "a.mu" || e1[AttrEdgeTo].AsString() != "b.mu" ||
		!strings.Contains(e1[AttrEdgeToAt].AsString(), "bank.go:40") {
		t.Errorf("edge event %s %v", evs[2].Name, evs[2].Attributes)
	}
}

func TestUserFramesSkipDebugmutexAndRuntime(t *testing.T) {
	_, tp := newRecorder()
	conv := newConverter(tp.Tracer(TracerName))
	stack, _ := stackHere()
	fs := conv.userFrames(stack)
	if len(fs) == 0 || fs[0].Function != "github.com/lockscope/lockscope/exporter.TestUserFramesSkipDebugmutexAndRuntime" {
		t.Fatalf("first frame %v", fs)
	}
	for _, f := range fs {
		if strings.HasPrefix(f.Function, "runtime.") {
			t.Errorf("runtime frame kept: %v", f)
		}
	}
}

// callersHere returns runtime.Callers' stack of its caller: one PC per
// physical frame plus one "virtual" PC per inlined call.
//
//go:noinline
func callersHere() []uintptr {
	pcs := make([]uintptr, 64)
	return pcs[:runtime.Callers(2, pcs)]
}

func inlinedInner() []uintptr { return callersHere() }
func inlinedOuter() []uintptr { return inlinedInner() }

// A physical PC stands for every call inlined at it: code.stacktrace names
// the inlined callers too, once each, whether the stack has one PC per
// physical frame (frame-pointer walks) or also one per inlined call
// (runtime.Callers).
func TestStacktraceKeepsInlinedCallers(t *testing.T) {
	callers := inlinedOuter()
	// What debugmutex's frame-pointer walk records: the physical PCs only.
	var phys []uintptr
	for pc := range inspect.CallFrames(callers) {
		phys = append(phys, pc)
	}
	if len(phys) >= len(callers) {
		t.Fatalf("no inlined call in the test stack (go test -gcflags=-l turns inlining off): %d PCs", len(callers))
	}
	const pkg = "github.com/lockscope/lockscope/exporter."
	want := []string{pkg + "inlinedInner()", pkg + "inlinedOuter()", pkg + "TestStacktraceKeepsInlinedCallers()", "testing.tRunner()"}
	var traces []string
	for _, stk := range [][]uintptr{phys, callers} {
		sr, tp := newRecorder()
		conv := newConverter(tp.Tracer(TracerName))
		conv.export(report.Event{
			Kind:  report.EventWait,
			Lock:  report.LockInfo{ID: 1, Name: "mu", Type: "Mutex"},
			Start: time.Now(),
			Stack: stk,
		})
		span := onlySpan(t, sr)
		a := attrMap(span.Attributes())
		if fn := a["code.function.name"].AsString(); fn != pkg+"inlinedInner" {
			t.Errorf("%d PCs: code.function.name = %q, want the innermost inlined call %q", len(stk), fn, pkg+"inlinedInner")
		}
		st := stackOf(span)
		var funcs []string
		for _, l := range strings.Split(st, "\n") {
			if l != "" && !strings.HasPrefix(l, "\t") {
				funcs = append(funcs, l)
			}
		}
		if len(funcs) < len(want) || !slices.Equal(funcs[:len(want)], want) {
			t.Errorf("%d PCs: code.stacktrace begins with %v, want %v:\n%s", len(stk), funcs, want, st)
		}
		traces = append(traces, st)
	}
	if traces[0] != traces[1] {
		t.Errorf("frame-pointer form:\n%s\nruntime.Callers form:\n%s", traces[0], traces[1])
	}
}

func TestSamplingLeavesOutWaitsButNeverReports(t *testing.T) {
	sr, tp := newRecorder()
	e := &Exporter{cfg: buildConfig([]Option{WithSampling(0)})}
	e.conv = newConverter(tp.Tracer(TracerName))
	e.rng = rand.New(rand.NewPCG(1, 2))
	for range 10 {
		e.handle(report.Event{Kind: report.EventWait, Start: time.Now(), Duration: time.Second})
	}
	e.handle(report.Event{Kind: report.EventReport, Report: &report.Report{Kind: report.KindDeadlock}})
	if got := len(lockSpans(sr)); got != 1 {
		t.Errorf("%d spans, want only the report's", got)
	}
	if e.st.events.Load() != 11 || e.st.sampledOut.Load() != 10 || e.st.spans.Load() != 1 {
		t.Errorf("events %d sampled out %d spans %d, want 11 10 1",
			e.st.events.Load(), e.st.sampledOut.Load(), e.st.spans.Load())
	}
}
