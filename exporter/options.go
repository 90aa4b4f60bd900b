package exporter

import (
	"os"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Defaults, in one place. A service doing millions of lock operations a second
// must not produce millions of spans: only waits and holds long enough to
// matter become spans, and WithSampling thins them further.
const (
	// DefaultMinWait is the shortest wait for a lock that becomes a span.
	DefaultMinWait = time.Millisecond
	// DefaultMinHold is the shortest (timed) hold of a lock that becomes a span.
	DefaultMinHold = 10 * time.Millisecond
	// DefaultBuffer is the capacity of the channel debugmutex delivers events
	// into. When it is full, debugmutex drops events and counts them.
	DefaultBuffer = 1024
	// DefaultQueueSize is how many finished spans may wait for export when
	// the exporter builds its own pipeline (OTEL_BSP_MAX_QUEUE_SIZE overrides
	// it). Spans beyond it are dropped and counted.
	DefaultQueueSize = sdktrace.DefaultMaxQueueSize
)

// An Option configures Start.
type Option interface {
	apply(*config)
}

// optionFunc adapts a function to Option.
type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tp        trace.TracerProvider
	mp        metric.MeterProvider
	spanExp   sdktrace.SpanExporter
	minWait   time.Duration
	minHold   time.Duration
	sampling  float64
	reports   bool
	buffer    int
	queueSize int
}

func buildConfig(opts []Option) config {
	c := config{
		minWait:   DefaultMinWait,
		minHold:   DefaultMinHold,
		sampling:  1,
		reports:   true,
		buffer:    DefaultBuffer,
		queueSize: envInt("OTEL_BSP_MAX_QUEUE_SIZE", DefaultQueueSize),
	}
	for _, o := range opts {
		o.apply(&c)
	}
	return c
}

// WithTracerProvider makes the exporter create its spans with tp, typically
// the provider the service already uses for its own spans, so that lock spans
// travel with them. The exporter does not shut tp down. Stats then counts
// events and spans, but not what tp's processors drop or fail to export.
//
// To use the global provider: WithTracerProvider(otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tp = tp })
}

// WithSpanExporter makes the exporter build its own pipeline (a bounded batch
// processor) around se instead of an OTLP exporter configured from the
// environment. The exporter shuts se down in Stop. Ignored when
// WithTracerProvider is given.
func WithSpanExporter(se sdktrace.SpanExporter) Option {
	return optionFunc(func(c *config) { c.spanExp = se })
}

// WithMinWait sets the shortest wait for a lock that becomes a span
// (default DefaultMinWait). Zero or less turns wait spans off.
func WithMinWait(d time.Duration) Option {
	return optionFunc(func(c *config) { c.minWait = d })
}

// WithMinHold sets the shortest hold of a lock that becomes a span (default
// DefaultMinHold). Zero or less turns hold spans off. Only holds that
// debugmutex timed can be exported; see its documentation on sampling.
func WithMinHold(d time.Duration) Option {
	return optionFunc(func(c *config) { c.minHold = d })
}

// WithSampling keeps this fraction (0 to 1, default 1) of the waits and holds
// above the thresholds. Reports are always exported.
func WithSampling(fraction float64) Option {
	return optionFunc(func(c *config) {
		c.sampling = min(max(fraction, 0), 1)
	})
}

// WithReports says whether debugmutex reports (deadlocks, lock-order
// inversions, locks never released...) become spans. Default true.
func WithReports(on bool) Option {
	return optionFunc(func(c *config) { c.reports = on })
}

// WithBuffer sets the capacity of the channel that debugmutex delivers events
// into (default DefaultBuffer). Events that find it full are dropped and
// counted in Stats.DroppedEvents: locking never waits for the exporter.
func WithBuffer(n int) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.buffer = n
		}
	})
}

// WithQueueSize bounds how many finished spans may wait for export in the
// exporter's own pipeline (default OTEL_BSP_MAX_QUEUE_SIZE, else
// DefaultQueueSize). Spans beyond it are dropped and counted in
// Stats.DroppedSpans. Ignored when WithTracerProvider is given.
func WithQueueSize(n int) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.queueSize = n
		}
	})
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
