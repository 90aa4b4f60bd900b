package exporter

import (
	"context"
	"sync"
	"sync/atomic"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/lockscope/lockscope/inspect"
)

// Spans active per goroutine.
//
// A span processor's OnStart runs on the goroutine that starts the span (the
// SDK calls it from Tracer.Start), so a processor can learn, per goroutine,
// which spans were started there and have not ended yet: the innermost of
// them is the request span a lock wait on that goroutine belongs to. otelhttp
// starts the request span on the goroutine that runs the handler; a wait in
// the handler then becomes its child with no LockContext.
//
// The table is bounded (maxActiveSpans spans in all, maxActivePerG per
// goroutine; spans beyond are not tracked and are counted), and never
// blocks: its short critical sections are under plain sync mutexes, sharded,
// with no I/O and no debugmutex lock in them. A span ended on another
// goroutine is found by its span ID. Goroutine ids are never reused, so an
// entry cannot be mistaken for another goroutine's.

const (
	maxActiveSpans = 1 << 16
	maxActivePerG  = 64
	activeShards   = 64
)

type activeSpan struct {
	sc trace.SpanContext
}

type activeShard struct {
	mu sync.Mutex
	// byG lists, per goroutine, its active spans in start order (the last
	// is the innermost).
	byG map[int64][]activeSpan
	// gOf maps a span (sharded by its ID) to the goroutine that started it.
	gOf map[trace.SpanID]int64
	_   [64]byte // keep shards' mutexes off each other's cache lines
}

type activeTable struct {
	shards    [activeShards]activeShard
	n         atomic.Int64  // spans tracked
	untracked atomic.Uint64 // spans not tracked: a bound was reached
}

// active is the process's one table: every processor handed out feeds it,
// and debugmutex asks it (SetEventContext) for events without a context.
var active = newActiveTable()

func newActiveTable() *activeTable {
	t := &activeTable{}
	for i := range t.shards {
		t.shards[i].byG = make(map[int64][]activeSpan)
		t.shards[i].gOf = make(map[trace.SpanID]int64)
	}
	return t
}

func (t *activeTable) gShard(g int64) *activeShard {
	return &t.shards[uint64(g)%activeShards]
}

func (t *activeTable) idShard(id trace.SpanID) *activeShard {
	return &t.shards[uint64(id[0]^id[7])%activeShards]
}

// started records sc as the innermost active span of goroutine g.
func (t *activeTable) started(g int64, sc trace.SpanContext) {
	is := t.idShard(sc.SpanID())
	is.mu.Lock()
	if _, dup := is.gOf[sc.SpanID()]; dup {
		is.mu.Unlock()
		return // the processor is registered twice on one provider
	}
	if t.n.Add(1) > maxActiveSpans {
		t.n.Add(-1)
		is.mu.Unlock()
		t.untracked.Add(1)
		return
	}
	is.gOf[sc.SpanID()] = g
	is.mu.Unlock()

	gs := t.gShard(g)
	gs.mu.Lock()
	list := gs.byG[g]
	if len(list) >= maxActivePerG {
		gs.mu.Unlock()
		t.forget(sc.SpanID())
		t.untracked.Add(1)
		return
	}
	gs.byG[g] = append(list, activeSpan{sc: sc})
	gs.mu.Unlock()
}

// forget removes id from the span index and reports the goroutine it was
// started on.
func (t *activeTable) forget(id trace.SpanID) (int64, bool) {
	is := t.idShard(id)
	is.mu.Lock()
	g, ok := is.gOf[id]
	if ok {
		delete(is.gOf, id)
		t.n.Add(-1)
	}
	is.mu.Unlock()
	return g, ok
}

// ended removes the span id, wherever it is in its goroutine's list (spans
// do not always end innermost first, nor on the goroutine that started
// them).
func (t *activeTable) ended(id trace.SpanID) {
	g, ok := t.forget(id)
	if !ok {
		return
	}
	gs := t.gShard(g)
	gs.mu.Lock()
	list := gs.byG[g]
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].sc.SpanID() == id {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(gs.byG, g)
	} else {
		gs.byG[g] = list
	}
	gs.mu.Unlock()
}

// current returns goroutine g's innermost active span.
func (t *activeTable) current(g int64) (trace.SpanContext, bool) {
	if t.n.Load() == 0 {
		return trace.SpanContext{}, false
	}
	gs := t.gShard(g)
	gs.mu.Lock()
	list := gs.byG[g]
	var sc trace.SpanContext
	if len(list) > 0 {
		sc = list[len(list)-1].sc
	}
	gs.mu.Unlock()
	return sc, sc.IsValid()
}

// context returns a context carrying goroutine g's innermost active span, or
// nil when it has none.
func (t *activeTable) context(g int64) context.Context {
	sc, ok := t.current(g)
	if !ok {
		return nil
	}
	return trace.ContextWithSpanContext(context.Background(), sc)
}

var hookOnce sync.Once

// installHook makes debugmutex ask the table for the context of every event
// delivered without one (a plain Lock rather than LockContext).
func installHook() {
	hookOnce.Do(func() {
		inspect.SetEventContext(active.context)
	})
}

// SpanProcessor returns a span processor that tells lockscope which span is
// active on each goroutine, so that a lock wait or hold on a goroutine
// inside a span (started by otelhttp or any tracer of the provider) becomes
// that span's child without LockContext. Register it with the program's own
// provider:
//
//	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(exporter.SpanProcessor()), ...)
//
// Start registers one itself on the provider given with WithTracerProvider
// when it is an *sdktrace.TracerProvider, and on its own pipeline's. The
// processor only records span IDs (bounded: see Stats.UntrackedSpans); it
// exports nothing and never blocks. A goroutine that works for a span
// started elsewhere still needs LockContext for its waits to be children.
func SpanProcessor() sdktrace.SpanProcessor {
	installHook()
	return &activeProcessor{t: active}
}

// activeProcessor feeds the table. Each SpanProcessor call returns a new
// one, so that unregistering one leaves the others.
type activeProcessor struct {
	t *activeTable
}

func (p *activeProcessor) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) {
	if s.InstrumentationScope().Name == TracerName {
		return // lockscope's own spans start and end at once, on its goroutine
	}
	p.t.started(inspect.GoroutineID(), s.SpanContext())
}

func (p *activeProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.InstrumentationScope().Name == TracerName {
		return
	}
	p.t.ended(s.SpanContext().SpanID())
}

func (p *activeProcessor) Shutdown(context.Context) error   { return nil }
func (p *activeProcessor) ForceFlush(context.Context) error { return nil }
