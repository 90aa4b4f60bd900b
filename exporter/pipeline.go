package exporter

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// newEnvSpanExporter builds an OTLP span exporter from the standard
// environment variables. The OTLP exporters read OTEL_EXPORTER_OTLP_[TRACES_]
// ENDPOINT, _HEADERS, _TIMEOUT, _INSECURE, _CERTIFICATE and _COMPRESSION
// themselves; the protocol they cannot choose, so it is read here, with the
// specification's default, http/protobuf.
func newEnvSpanExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch strings.TrimSpace(proto) {
	case "grpc":
		return otlptracegrpc.New(ctx)
	case "", "http/protobuf":
		return otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("exporter: OTLP protocol %q not supported (use grpc or http/protobuf)", proto)
	}
}

// newPipeline builds the exporter's own TracerProvider: resource from the
// environment (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), sampler from
// OTEL_TRACES_SAMPLER (read by the SDK), and a batch span processor behind a
// gate that bounds and counts what waits for export.
func newPipeline(ctx context.Context, se sdktrace.SpanExporter, queueSize int, st *counters) (*sdktrace.TracerProvider, error) {
	res, err := resource.New(ctx,
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
		// Not WithProcess: command-line arguments may hold secrets.
		resource.WithProcessPID(),
		resource.WithProcessExecutableName(),
		resource.WithProcessRuntimeVersion(),
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("exporter: resource: %w", err)
	}
	// A partial resource (some detector failed) is still useful; keep it.
	res, err = resource.Merge(resource.Default(), res)
	if err != nil {
		res = resource.Default()
	}
	ce := &countingExporter{next: se, st: st}
	bsp := sdktrace.NewBatchSpanProcessor(ce,
		// Headroom above the gate's bound: ForceFlush puts a marker in the
		// queue too, and a full queue would drop a span without telling us.
		sdktrace.WithMaxQueueSize(queueSize+queueHeadroom),
	)
	gate := &gateProcessor{next: bsp, max: int64(queueSize), st: st}
	return sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSpanProcessor(gate),
	), nil
}

const queueHeadroom = 16

// gateProcessor bounds the number of spans that have ended but not yet
// reached the span exporter, and counts those it turns away. The batch span
// processor drops spans silently when its queue is full; with the gate in
// front of it (and a larger queue), every drop happens here and is counted.
type gateProcessor struct {
	next sdktrace.SpanProcessor
	max  int64
	st   *counters
}

func (g *gateProcessor) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) {
	g.next.OnStart(ctx, s)
}

func (g *gateProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return // the batch processor ignores it too
	}
	if g.st.pending.Add(1) > g.max {
		g.st.pending.Add(-1)
		g.st.droppedSpans.Add(1)
		return
	}
	g.next.OnEnd(s)
}

func (g *gateProcessor) Shutdown(ctx context.Context) error   { return g.next.Shutdown(ctx) }
func (g *gateProcessor) ForceFlush(ctx context.Context) error { return g.next.ForceFlush(ctx) }

// countingExporter counts the spans that reach the span exporter, and whether
// it delivered them.
type countingExporter struct {
	next sdktrace.SpanExporter
	st   *counters
}

func (c *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	n := int64(len(spans))
	c.st.pending.Add(-n)
	err := c.next.ExportSpans(ctx, spans)
	if err != nil {
		c.st.failedSpans.Add(uint64(n))
	} else {
		c.st.exported.Add(uint64(n))
	}
	return err
}

func (c *countingExporter) Shutdown(ctx context.Context) error { return c.next.Shutdown(ctx) }

// counters back Stats. Written by the exporter goroutine and the SDK's
// goroutines, read by Stats: all atomic.
type counters struct {
	events       atomic.Uint64
	sampledOut   atomic.Uint64
	spans        atomic.Uint64
	exported     atomic.Uint64
	failedSpans  atomic.Uint64
	droppedSpans atomic.Uint64
	// pending is spans ended and admitted by the gate, not yet handed to the
	// span exporter (queued or batched).
	pending atomic.Int64
}
