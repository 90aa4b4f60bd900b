// Package exporter sends lock activity recorded by debugmutex to
// OpenTelemetry: waits and holds above a threshold become spans, and every
// report (deadlock, lock-order inversion, lock never released...) becomes an
// error span whose events name the goroutines and stacks involved. In Jaeger,
// an engineer then sees which request waited on which lock, for how long, and
// who held it.
//
// Start the exporter once, near the start of main:
//
//	exp, err := exporter.Start(ctx, exporter.WithTracerProvider(tp))
//	if err != nil { ... }
//	defer exp.Stop(context.Background())
//
// Without WithTracerProvider, the exporter builds its own pipeline from the
// standard OpenTelemetry environment variables: OTEL_EXPORTER_OTLP_ENDPOINT
// (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), OTEL_EXPORTER_OTLP_PROTOCOL
// ("grpc" or "http/protobuf", the default), OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and the OTEL_BSP_* settings.
// A program that only swapped its import can instead blank-import
// exporter/autoexport, which starts the exporter when those variables ask
// for it.
//
// # Parent spans
//
// A lock wait or hold on a goroutine that has an active span (a request span
// started by otelhttp, or any span of the provider) becomes that span's
// child, with no change to the code that locks: the exporter's span
// processor (SpanProcessor) learns which span is active on each goroutine.
// Start registers it on the provider given with WithTracerProvider when it
// is the SDK's *sdktrace.TracerProvider, and on its own pipeline; a program
// whose spans come from another provider registers SpanProcessor() there.
// A deadlock or long-wait report is likewise a child of the blocked
// goroutine's span.
//
// A goroutine working for a request it did not start (its context came over
// a channel, say) is not inside the request's span; there, pass the context:
//
//	debugmutex.LockContext(ctx, &acct.mu) // a wait shows under ctx's span
//	defer acct.mu.Unlock()
//
// Other locks' spans are root spans of the tracer named TracerName, found
// in Jaeger by service and by the lockscope.lock.name tag.
//
// # Metrics
//
// With WithMeterProvider (or OTEL_METRICS_EXPORTER=otlp, for the exporter's
// own OTLP pipeline), the exporter also records metrics, each with the
// attribute lockscope.lock.name (at most MaxMetricLocks names; the rest
// count under "(other)"):
//
//	lockscope.lock.wait.duration     histogram, s: waits for a lock (WaitBuckets)
//	lockscope.lock.hold.duration     histogram, s: the holds debugmutex timed (a sample)
//	lockscope.lock.contentions       counter: acquisitions that waited (exact)
//	lockscope.lock.trylock.failures  counter: failed TryLocks (exact)
//	lockscope.reports                counter, by lockscope.report.kind
//	lockscope.locks.held             gauge: holds in progress
//	lockscope.goroutines.waiting     gauge: goroutines waiting for a lock
//
// A Prometheus backend shows them as lockscope_lock_wait_duration_seconds
// (_bucket, _sum, _count), lockscope_lock_contentions_total,
// lockscope_locks_held and so on, with the label lockscope_lock_name.
//
// # Never the cause
//
// debugmutex hands events over by a non-blocking send into a bounded
// channel; one exporter goroutine turns them into spans; a bounded queue holds
// spans until they are exported. When the collector is slow or down, events
// and spans are dropped and counted (see Stats); locking never waits and
// memory stays bounded.
//
// # Attributes
//
// Spans carry the OpenTelemetry semantic conventions for code (v1.43.0:
// code.function.name, code.file.path, code.line.number, code.stacktrace)
// for the waiter's or holder's call site, and lockscope's own (on wait and
// hold spans code.stacktrace is on the span's event "lockscope.stack", so
// that Jaeger, which lists attributes by name, shows the holder without
// scrolling past a stack):
//
//	lockscope.lock.name             SetName's name, or the first acquire site
//	lockscope.lock.type             "Mutex", "RWMutex", "Once" or "OnceFunc"
//	lockscope.lock.id               unique for the life of the process
//	lockscope.lock.mode             "write" or "read"
//	lockscope.goroutine.id          the waiting or holding goroutine
//	lockscope.holder.goroutine.id   (waits) the goroutine holding the lock
//	lockscope.holder.site           (waits) where the holder acquired it
//	lockscope.wait.duration_ns      (waits) how long the wait lasted
//	lockscope.hold.duration_ns      (holds) how long the hold lasted
//
// The holder's attributes come before the code ones. A wait span whose
// holder ran inside a span when the wait ended (the request that held the
// lock, as SpanProcessor knows it) has a link to that span, with
// lockscope.link.role "holder": Jaeger's UI lists it among the wait's
// references, one click from the waiting request to the holding one.
//
// Report spans carry lockscope.report.kind, .summary, .key, .count and
// lockscope.report.locks, have status Error, and have one span event per
// goroutine ("lockscope.goroutine") and per lock-order edge
// ("lockscope.lock_order_edge").
package exporter

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// TracerName is the instrumentation scope of lockscope's spans.
const TracerName = "github.com/lockscope/lockscope"

// Exporter turns debugmutex events into spans until Stop is called.
type Exporter struct {
	cfg    config
	sub    *inspect.Subscription
	tracer trace.Tracer
	// own is the provider the exporter built (nil with WithTracerProvider);
	// it is flushed and shut down by the exporter.
	own *sdktrace.TracerProvider
	tp  trace.TracerProvider
	st  counters
	// proc is the span processor Start registered on procTP (an SDK
	// provider) to learn the spans active per goroutine; Stop unregisters it.
	proc   sdktrace.SpanProcessor
	procTP *sdktrace.TracerProvider
	// metrics records the metrics (nil without a meter provider); ownMP is
	// the meter provider the exporter built, shut down by Stop.
	metrics *metricsRecorder
	ownMP   *sdkmetric.MeterProvider

	flush    chan chan struct{} // requests to drain the subscription
	stop     chan struct{}      // closed by Stop
	done     chan struct{}      // closed when the goroutine has returned
	stopOnce sync.Once
	stopErr  error

	// Used only by the exporter goroutine.
	conv converter
	rng  *rand.Rand
}

// Stats counts what the exporter has seen and done since Start. Every event
// debugmutex offered the exporter is in Events or DroppedEvents. With the
// exporter's own pipeline, every span ended in it is in Exported,
// FailedSpans or DroppedSpans once the pipeline is idle (after a Stop that
// finished in time); until then up to the queue size may still be waiting.
// Those three count the program's own spans too when it creates them with
// TracerProvider().
type Stats struct {
	// Events is the number of events received from debugmutex.
	Events uint64
	// DroppedEvents is the number of events debugmutex dropped because the
	// exporter's channel was full (the exporter fell behind).
	DroppedEvents uint64
	// SampledOut is the number of waits and holds left out by WithSampling.
	SampledOut uint64
	// Spans is the number of lockscope's own spans (lock waits, holds and
	// reports) created and ended. The program's spans are not in it, though
	// with TracerProvider() they are in Exported, FailedSpans and
	// DroppedSpans: Exported may be larger than Spans.
	Spans uint64
	// The rest is known only for the exporter's own pipeline, not for a
	// provider given with WithTracerProvider.

	// Exported is the number of spans the span exporter delivered:
	// lockscope's and, with TracerProvider(), the program's own.
	Exported uint64
	// FailedSpans is the number of spans the span exporter failed to
	// deliver (collector down or too slow; the OTLP exporters retry first).
	FailedSpans uint64
	// DroppedSpans is the number of spans dropped because the export queue
	// was full (see WithQueueSize).
	DroppedSpans uint64
	// UntrackedSpans counts, for the whole process, the program's spans
	// that SpanProcessor did not record as active on their goroutine because
	// a bound was reached (too many spans active at once, or nested too
	// deep on one goroutine). Lock waits in them become children of an
	// outer span, or root spans.
	UntrackedSpans uint64
}

// Start subscribes to debugmutex and starts exporting lock activity as spans
// in a goroutine of its own. Call Stop to flush and end it. Several exporters
// may run at once; each receives every event.
func Start(ctx context.Context, opts ...Option) (*Exporter, error) {
	e := &Exporter{
		cfg:   buildConfig(opts),
		flush: make(chan chan struct{}),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		rng:   rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
	e.tp = e.cfg.tp
	if e.tp == nil {
		se := e.cfg.spanExp
		if se == nil {
			var err error
			if se, err = newEnvSpanExporter(ctx); err != nil {
				return nil, err
			}
		}
		own, err := newPipeline(ctx, se, e.cfg.queueSize, &e.st)
		if err != nil {
			return nil, errors.Join(err, se.Shutdown(ctx))
		}
		e.own, e.tp = own, own
	}
	mp := e.cfg.mp
	if mp == nil {
		own, err := newEnvMeterProvider(ctx)
		if err != nil {
			return nil, errors.Join(err, e.shutdownOwn(ctx))
		}
		if own != nil {
			e.ownMP, mp = own, own
		}
	}
	if mp != nil {
		m, err := startMetrics(mp, e.cfg.buffer)
		if err != nil {
			return nil, errors.Join(err, e.shutdownOwn(ctx))
		}
		e.metrics = m
	}
	if sdk, ok := e.tp.(*sdktrace.TracerProvider); ok {
		e.proc, e.procTP = SpanProcessor(), sdk
		sdk.RegisterSpanProcessor(e.proc)
	}
	e.tracer = e.tp.Tracer(TracerName, trace.WithSchemaURL(semconv.SchemaURL))
	e.conv = newConverter(e.tracer)

	so := inspect.SubscribeOptions{Reports: e.cfg.reports, Buffer: e.cfg.buffer}
	if e.cfg.minWait > 0 {
		so.MinWait = e.cfg.minWait
	}
	if e.cfg.minHold > 0 {
		so.MinHold = e.cfg.minHold
	}
	e.sub = inspect.Subscribe(so)
	go e.run()
	return e, nil
}

// shutdownOwn shuts down the pipelines Start built, when Start fails.
func (e *Exporter) shutdownOwn(ctx context.Context) error {
	var err error
	if e.ownMP != nil {
		err = e.ownMP.Shutdown(ctx)
	}
	if e.own != nil {
		err = errors.Join(err, e.own.Shutdown(ctx))
	}
	return err
}

// TracerProvider returns the provider the exporter creates spans with: the
// one given with WithTracerProvider, or the one it built. A program without
// tracing of its own can create its request spans with it, so that lock
// spans become their children.
func (e *Exporter) TracerProvider() trace.TracerProvider { return e.tp }

// Flush turns every event received so far into spans and, for the
// exporter's own pipeline or an SDK provider, exports them. It returns when
// that is done or ctx ends.
func (e *Exporter) Flush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case e.flush <- ack:
	case <-e.done:
		return errors.New("exporter: stopped")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
	case <-ctx.Done():
		return ctx.Err()
	}
	if e.metrics != nil {
		if err := e.metrics.flush(ctx); err != nil {
			return err
		}
	}
	if f, ok := e.tp.(interface{ ForceFlush(context.Context) error }); ok {
		return f.ForceFlush(ctx)
	}
	return nil
}

// Stop unsubscribes, turns the events already received into spans, and, for
// the exporter's own pipeline, exports what it can before ctx ends and shuts
// the pipeline down. A provider given with WithTracerProvider is flushed but
// not shut down. Stop is safe to call more than once.
func (e *Exporter) Stop(ctx context.Context) error {
	e.stopOnce.Do(func() {
		if e.metrics != nil {
			e.metrics.stopEvents()
			if e.ownMP != nil {
				// The last collection, callbacks included, then unregister.
				e.stopErr = e.ownMP.Shutdown(ctx)
			}
			e.stopErr = errors.Join(e.stopErr, e.metrics.reg.Unregister())
		}
		e.sub.Close()
		if e.procTP != nil && e.own == nil {
			e.procTP.UnregisterSpanProcessor(e.proc)
		}
		close(e.stop)
		select {
		case <-e.done:
		case <-ctx.Done():
			e.stopErr = errors.Join(e.stopErr, ctx.Err())
		}
		if e.own != nil {
			// Even past the deadline: Shutdown then stops the pipeline's
			// goroutines without waiting for the export under way.
			e.stopErr = errors.Join(e.stopErr, e.own.Shutdown(ctx))
		} else if e.stopErr == nil {
			if f, ok := e.tp.(interface{ ForceFlush(context.Context) error }); ok {
				e.stopErr = f.ForceFlush(ctx)
			}
		}
	})
	return e.stopErr
}

// Stats returns the exporter's counters. It is cheap and safe to call at any
// time, from any goroutine.
func (e *Exporter) Stats() Stats {
	return Stats{
		Events:         e.st.events.Load(),
		DroppedEvents:  e.sub.Dropped(),
		SampledOut:     e.st.sampledOut.Load(),
		Spans:          e.st.spans.Load(),
		Exported:       e.st.exported.Load(),
		FailedSpans:    e.st.failedSpans.Load(),
		DroppedSpans:   e.st.droppedSpans.Load(),
		UntrackedSpans: active.untracked.Load(),
	}
}

// run is the exporter goroutine: the only one that converts events.
func (e *Exporter) run() {
	defer close(e.done)
	c := e.sub.C()
	for {
		select {
		case ev, ok := <-c:
			if !ok {
				return
			}
			e.handle(ev)
		case ack := <-e.flush:
			e.drain(c)
			close(ack)
		case <-e.stop:
			e.drain(c)
			return
		}
	}
}

// drain handles the events in the channel when it is called, without
// waiting for more (nor chasing a producer that keeps it full).
func (e *Exporter) drain(c <-chan report.Event) {
	for n := len(c); n > 0; n-- {
		ev, ok := <-c
		if !ok {
			return
		}
		e.handle(ev)
	}
}

func (e *Exporter) handle(ev report.Event) {
	e.st.events.Add(1)
	if ev.Kind != report.EventReport && e.cfg.sampling < 1 && e.rng.Float64() >= e.cfg.sampling {
		e.st.sampledOut.Add(1)
		return
	}
	if e.conv.export(ev) {
		e.st.spans.Add(1)
	}
}
