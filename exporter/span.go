package exporter

import (
	"context"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// Span names. A wait or hold span is named after its lock, e.g.
// "lockscope.wait cache.mu", so that a trace reads at a glance; lock names
// are few (SetName's names, struct fields, acquire sites), and past
// MaxSpanNames distinct ones the span takes the bare SpanWait or SpanHold
// name (the lock is always in the lockscope.lock.name attribute), keeping
// the span names' cardinality bounded as OpenTelemetry asks. Reports add
// their kind, which is one of report.Kinds.
const (
	SpanWait   = "lockscope.wait"   // + " " + lock name
	SpanHold   = "lockscope.hold"   // + " " + lock name
	SpanReport = "lockscope.report" // + " " + kind

	// MaxSpanNames bounds the distinct lock names used in span names.
	MaxSpanNames = 256
	// maxNameLen bounds one lock name in a span name.
	maxNameLen = 96
)

// lockscope's own attribute keys.
const (
	AttrLockName      = attribute.Key("lockscope.lock.name")
	AttrLockType      = attribute.Key("lockscope.lock.type")
	AttrLockID        = attribute.Key("lockscope.lock.id")
	AttrLockMode      = attribute.Key("lockscope.lock.mode")
	AttrGoroutine     = attribute.Key("lockscope.goroutine.id")
	AttrHolder        = attribute.Key("lockscope.holder.goroutine.id")
	AttrHolderSite    = attribute.Key("lockscope.holder.site")
	AttrWaitNanos     = attribute.Key("lockscope.wait.duration_ns")
	AttrHoldNanos     = attribute.Key("lockscope.hold.duration_ns")
	AttrReportKind    = attribute.Key("lockscope.report.kind")
	AttrReportSummary = attribute.Key("lockscope.report.summary")
	AttrReportKey     = attribute.Key("lockscope.report.key")
	AttrReportCount   = attribute.Key("lockscope.report.count")
	AttrReportLocks   = attribute.Key("lockscope.report.locks")
	// AttrLinkRole is on a wait span's link: "holder", the span the
	// holding goroutine was in when the wait was exported.
	AttrLinkRole = attribute.Key("lockscope.link.role")
)

// Span event names and their attribute keys, on report spans.
const (
	// EventStack, on wait and hold spans, carries the stack as
	// code.stacktrace: an event, not an attribute, so that the stack (a
	// screenful) does not push the holder and the lock out of view in
	// backends that list attributes by name.
	EventStack     = "lockscope.stack"
	EventGoroutine = "lockscope.goroutine"
	EventEdge      = "lockscope.lock_order_edge"

	AttrRole       = attribute.Key("lockscope.goroutine.role")
	AttrGLock      = attribute.Key("lockscope.goroutine.lock")
	AttrForNanos   = attribute.Key("lockscope.goroutine.for_ns")
	AttrExited     = attribute.Key("lockscope.goroutine.exited")
	AttrCurrent    = attribute.Key("lockscope.goroutine.current_stacktrace")
	AttrEdgeFrom   = attribute.Key("lockscope.edge.from")
	AttrEdgeTo     = attribute.Key("lockscope.edge.to")
	AttrEdgeFromAt = attribute.Key("lockscope.edge.from_stacktrace")
	AttrEdgeToAt   = attribute.Key("lockscope.edge.to_stacktrace")
)

const (
	// maxStackFrames bounds code.stacktrace and friends.
	maxStackFrames = 32
	// debugmutexPrefix marks frames inside the lock implementation, which
	// are never the site a user wants to see.
	debugmutexPrefix = "github.com/lockscope/lockscope/debugmutex."
)

// converter turns events into spans. It is used by the exporter goroutine
// only.
type converter struct {
	tracer trace.Tracer
	names  map[string]bool // lock names admitted into span names
}

func newConverter(t trace.Tracer) converter {
	return converter{tracer: t, names: make(map[string]bool)}
}

// spanName is prefix + " " + lock while the distinct lock names stay under
// MaxSpanNames, else the bare prefix.
func (c *converter) spanName(prefix, lock string) string {
	if lock == "" || len(lock) > maxNameLen {
		return prefix
	}
	if !c.names[lock] {
		if len(c.names) >= MaxSpanNames {
			return prefix
		}
		c.names[lock] = true
	}
	return prefix + " " + lock
}

// export makes a span of ev and reports whether it did.
func (c *converter) export(ev report.Event) bool {
	ctx := ev.Context
	if ctx == nil {
		ctx = context.Background()
	}
	switch ev.Kind {
	case report.EventWait:
		c.lockSpan(ctx, SpanWait, ev, AttrWaitNanos)
	case report.EventHold:
		c.lockSpan(ctx, SpanHold, ev, AttrHoldNanos)
	case report.EventReport:
		if ev.Report == nil {
			return false
		}
		c.reportSpan(ctx, ev)
	default:
		return false
	}
	return true
}

func (c *converter) lockSpan(ctx context.Context, name string, ev report.Event, dur attribute.Key) {
	frames := c.userFrames(ev.Stack)
	attrs := make([]attribute.KeyValue, 0, 14)
	attrs = append(attrs,
		AttrLockName.String(ev.Lock.Name),
		AttrLockType.String(ev.Lock.Type),
		AttrLockID.Int64(int64(ev.Lock.ID)),
		AttrLockMode.String(ev.Mode.String()),
		AttrGoroutine.Int64(ev.Goroutine),
		dur.Int64(ev.Duration.Nanoseconds()),
	)
	// The holder, the cause of the wait, first: ahead of the stack, which
	// fills a screen in Jaeger's UI.
	if ev.Holder != 0 {
		attrs = append(attrs, AttrHolder.Int64(ev.Holder))
	}
	if hf := c.userFrames(ev.HolderStack); len(hf) > 0 {
		attrs = append(attrs, AttrHolderSite.String(hf[0].Site()))
	}
	attrs = appendCodeLocation(attrs, frames)
	opts := []trace.SpanStartOption{
		trace.WithTimestamp(ev.Start),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attrs...),
	}
	// A link to the span the holder runs in (the request that held the
	// lock), when it runs in one still: Jaeger shows it as a reference of
	// the wait, one click from the waiting request to the holding one.
	if ev.Holder != 0 && ev.Kind == report.EventWait {
		hsc := trace.SpanContextFromContext(ev.HolderContext) // as the wait ended
		if !hsc.IsValid() {
			hsc, _ = active.current(ev.Holder)
		}
		if hsc.IsValid() && !hsc.Equal(trace.SpanContextFromContext(ctx)) {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: hsc, Attributes: []attribute.KeyValue{AttrLinkRole.String("holder")}}))
		}
	}
	_, span := c.tracer.Start(ctx, c.spanName(name, ev.Lock.Name), opts...)
	if len(frames) > 0 {
		span.AddEvent(EventStack, trace.WithTimestamp(ev.Start), trace.WithAttributes(semconv.CodeStacktrace(formatStack(frames))))
	}
	span.End(trace.WithTimestamp(ev.Start.Add(ev.Duration)))
}

// reportSpan makes a report's error span. It lasts from when the problem
// began (the wait or hold the report is about started: reportBegan) to when
// it was found, and is a child of the blocked goroutine's active span.
func (c *converter) reportSpan(ctx context.Context, ev report.Event) {
	r := ev.Report
	at := r.Time
	if at.IsZero() {
		at = ev.Start
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		if g := blockedGoroutine(r); g != 0 {
			if pctx := active.context(g); pctx != nil {
				ctx = pctx
			}
		}
	}
	began := at.Add(-reportAge(r))
	locks := make([]string, len(r.Locks))
	for i, l := range r.Locks {
		locks[i] = l.Name
	}
	attrs := []attribute.KeyValue{
		AttrReportKind.String(string(r.Kind)),
		AttrReportSummary.String(r.Summary),
		AttrReportKey.String(r.Key),
		AttrReportCount.Int(r.Count),
		AttrReportLocks.StringSlice(locks),
	}
	if len(r.Locks) == 1 {
		attrs = append(attrs,
			AttrLockName.String(r.Locks[0].Name),
			AttrLockType.String(r.Locks[0].Type),
			AttrLockID.Int64(int64(r.Locks[0].ID)))
	}
	if len(r.Goroutines) > 0 {
		attrs = append(attrs, AttrGoroutine.Int64(r.Goroutines[0].ID))
		attrs = appendCode(attrs, userOnly(r.Goroutines[0].Stack))
	}
	_, span := c.tracer.Start(ctx, SpanReport+" "+string(r.Kind),
		trace.WithTimestamp(began),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attrs...),
	)
	span.SetStatus(codes.Error, r.Summary)
	for _, g := range r.Goroutines {
		ea := []attribute.KeyValue{
			AttrGoroutine.Int64(g.ID),
			AttrRole.String(g.Role),
		}
		if g.Lock != "" {
			ea = append(ea, AttrGLock.String(g.Lock))
		}
		if g.For > 0 {
			ea = append(ea, AttrForNanos.Int64(g.For.Nanoseconds()))
		}
		if g.Exited {
			ea = append(ea, AttrExited.Bool(true))
		}
		ea = appendCode(ea, userOnly(g.Stack))
		if len(g.Current) > 0 {
			ea = append(ea, AttrCurrent.String(formatStack(g.Current)))
		}
		span.AddEvent(EventGoroutine, trace.WithTimestamp(at), trace.WithAttributes(ea...))
	}
	for _, e := range r.Edges {
		span.AddEvent(EventEdge, trace.WithTimestamp(at), trace.WithAttributes(
			AttrEdgeFrom.String(e.From),
			AttrEdgeTo.String(e.To),
			AttrGoroutine.Int64(e.Goroutine),
			AttrEdgeFromAt.String(formatStack(e.FromStack)),
			AttrEdgeToAt.String(formatStack(e.ToStack)),
		))
	}
	span.End(trace.WithTimestamp(at))
}

// minReportSpan is the length of a report span whose problem has no known
// start (a lock-order inversion is found at the acquisition that closes the
// cycle): long enough for trace viewers not to flag a zero-length span.
const minReportSpan = time.Microsecond

// reportAge says how long before its report the problem began: for a
// deadlock, when the last goroutine of the cycle started waiting (the cycle
// closed then); for the others, when the longest wait or hold involved
// began.
func reportAge(r *report.Report) time.Duration {
	var age time.Duration
	for _, g := range r.Goroutines {
		if g.For <= 0 {
			continue
		}
		if r.Kind == report.KindDeadlock {
			if age == 0 || g.For < age {
				age = g.For
			}
		} else if g.For > age {
			age = g.For
		}
	}
	return max(age, minReportSpan)
}

// blockedGoroutine is the report's first waiting goroutine, else its first
// goroutine, else 0.
func blockedGoroutine(r *report.Report) int64 {
	for _, g := range r.Goroutines {
		if strings.HasPrefix(g.Role, "waits") {
			return g.ID
		}
	}
	if len(r.Goroutines) > 0 {
		return r.Goroutines[0].ID
	}
	return 0
}

// appendCodeLocation adds the semantic-convention code attributes for the
// innermost frame.
func appendCodeLocation(attrs []attribute.KeyValue, frames []report.Frame) []attribute.KeyValue {
	if len(frames) == 0 {
		return attrs
	}
	f := frames[0]
	return append(attrs,
		semconv.CodeFunctionName(f.Function),
		semconv.CodeFilePath(f.File),
		semconv.CodeLineNumber(f.Line),
	)
}

// appendCode adds the semantic-convention code attributes for the innermost
// frame, and the stack as code.stacktrace.
func appendCode(attrs []attribute.KeyValue, frames []report.Frame) []attribute.KeyValue {
	if len(frames) == 0 {
		return attrs
	}
	return append(appendCodeLocation(attrs, frames), semconv.CodeStacktrace(formatStack(frames)))
}

// formatStack writes frames the way a Go stack dump does.
func formatStack(frames []report.Frame) string {
	var b strings.Builder
	for i, f := range frames {
		if i == maxStackFrames {
			b.WriteString("...additional frames elided...\n")
			break
		}
		b.WriteString(f.Function)
		b.WriteString("()\n\t")
		b.WriteString(f.File)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(f.Line))
		b.WriteByte('\n')
	}
	return b.String()
}

// userFrames symbolises pcs (innermost first, inlined calls expanded; the
// per-PC answers are debugmutex's, cached there), without the frames inside
// debugmutex and the runtime: the first frame is the user's call site.
func (c *converter) userFrames(pcs []uintptr) []report.Frame {
	var out []report.Frame
	for _, fs := range inspect.CallFrames(pcs) {
		for _, f := range fs {
			if len(out) == 0 && internalFrame(f.Function) {
				continue // still inside the lock implementation
			}
			if strings.HasPrefix(f.Function, "runtime.") {
				continue // runtime.goexit and friends
			}
			out = append(out, f)
			if len(out) > maxStackFrames {
				return out
			}
		}
	}
	return out
}

// userOnly drops the leading frames inside debugmutex from an already
// symbolised stack.
func userOnly(frames []report.Frame) []report.Frame {
	for len(frames) > 0 && internalFrame(frames[0].Function) {
		frames = frames[1:]
	}
	return frames
}

func internalFrame(fn string) bool {
	return strings.HasPrefix(fn, debugmutexPrefix) || strings.HasPrefix(fn, "runtime.")
}
