package exporter

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// Metric names, in the OpenTelemetry semantic conventions' style (dotted
// names, durations as histograms in seconds, counts with a {unit}). A
// Prometheus reader sees them with dots as underscores, the unit appended
// and _total on counters: lockscope_lock_wait_duration_seconds_bucket,
// lockscope_lock_contentions_total, lockscope_goroutines_waiting...
const (
	// MetricWaitDuration: histogram (s) of the waits for a lock, by lock.
	MetricWaitDuration = "lockscope.lock.wait.duration"
	// MetricHoldDuration: histogram (s) of the timed holds of a lock (see
	// debugmutex's sampling: a sample of the holds), by lock.
	MetricHoldDuration = "lockscope.lock.hold.duration"
	// MetricContentions: counter ({contention}) of the acquisitions that
	// had to wait, by lock. Exact.
	MetricContentions = "lockscope.lock.contentions"
	// MetricTryLockFailures: counter ({failure}) of failed TryLocks, by
	// lock. Exact.
	MetricTryLockFailures = "lockscope.lock.trylock.failures"
	// MetricReports: counter ({report}) of the reports made, by
	// lockscope.report.kind.
	MetricReports = "lockscope.reports"
	// MetricLocksHeld: gauge ({hold}) of the holds in progress, by lock
	// (an RWMutex read-held by three goroutines counts three).
	MetricLocksHeld = "lockscope.locks.held"
	// MetricGoroutinesWaiting: gauge ({goroutine}) of the goroutines
	// waiting for a lock now, by lock.
	MetricGoroutinesWaiting = "lockscope.goroutines.waiting"

	// MaxMetricLocks bounds the distinct values of lockscope.lock.name on
	// metrics; locks past it are counted under OtherLocks.
	MaxMetricLocks = 100
	// OtherLocks is the lockscope.lock.name of the locks past MaxMetricLocks.
	OtherLocks = "(other)"
)

// WaitBuckets are the wait histogram's bucket boundaries, in seconds: a
// contended lock's waits run from microseconds (a handoff) to seconds (a
// stall), so the buckets are logarithmic from 1µs to 10s.
var WaitBuckets = []float64{
	0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// WithMeterProvider makes the exporter record lockscope's metrics (see
// MetricWaitDuration and the other Metric names) with mp. The exporter does
// not shut mp down.
//
// Without it, the exporter builds its own OTLP metrics pipeline only when
// OTEL_METRICS_EXPORTER=otlp is set (endpoint, protocol, headers and
// OTEL_METRIC_EXPORT_INTERVAL as the OTLP exporters and the SDK read them),
// and records no metrics otherwise: unlike the specification's default,
// metrics are asked for explicitly, since a collector that takes only traces
// (Jaeger) would refuse them.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// newEnvMeterProvider builds the exporter's own meter provider when
// OTEL_METRICS_EXPORTER asks for OTLP, else returns nil.
func newEnvMeterProvider(ctx context.Context) (*sdkmetric.MeterProvider, error) {
	if strings.TrimSpace(os.Getenv("OTEL_METRICS_EXPORTER")) != "otlp" {
		return nil, nil
	}
	proto := os.Getenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var (
		me  sdkmetric.Exporter
		err error
	)
	switch strings.TrimSpace(proto) {
	case "grpc":
		me, err = otlpmetricgrpc.New(ctx)
	case "", "http/protobuf":
		me, err = otlpmetrichttp.New(ctx)
	default:
		return nil, fmt.Errorf("exporter: OTLP protocol %q not supported (use grpc or http/protobuf)", proto)
	}
	if err != nil {
		return nil, err
	}
	res, err := resource.Merge(resource.Default(), envResource(ctx))
	if err != nil {
		res = resource.Default()
	}
	return sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(me)),
	), nil
}

func envResource(ctx context.Context) *resource.Resource {
	res, _ := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(),
		resource.WithProcessPID(), resource.WithProcessExecutableName(), resource.WithProcessRuntimeVersion())
	if res == nil {
		return resource.Empty()
	}
	return res
}

// metricsRecorder records the metrics: histograms from a subscription of its
// own (every contended wait and every timed hold), counters and gauges read
// from debugmutex's tables when the meter provider collects.
type metricsRecorder struct {
	sub        *inspect.Subscription
	wait, hold metric.Float64Histogram
	reports    metric.Int64Counter
	reg        metric.Registration
	flushes    chan chan struct{}
	done       chan struct{}

	mu    sync.Mutex      // guards names (the callback and the loop use it)
	names map[string]bool // lock names admitted as attribute values
}

func startMetrics(mp metric.MeterProvider, buffer int) (*metricsRecorder, error) {
	m := mp.Meter(TracerName)
	r := &metricsRecorder{done: make(chan struct{}), flushes: make(chan chan struct{}), names: make(map[string]bool)}
	var err error
	if r.wait, err = m.Float64Histogram(MetricWaitDuration, metric.WithUnit("s"),
		metric.WithDescription("Time goroutines waited to acquire a lock."),
		metric.WithExplicitBucketBoundaries(WaitBuckets...)); err != nil {
		return nil, err
	}
	if r.hold, err = m.Float64Histogram(MetricHoldDuration, metric.WithUnit("s"),
		metric.WithDescription("Time a lock was held, for the holds lockscope timed (a sample)."),
		metric.WithExplicitBucketBoundaries(WaitBuckets...)); err != nil {
		return nil, err
	}
	if r.reports, err = m.Int64Counter(MetricReports, metric.WithUnit("{report}"),
		metric.WithDescription("Reports lockscope made (deadlocks, lock-order inversions...), by kind.")); err != nil {
		return nil, err
	}
	contentions, err := m.Int64ObservableCounter(MetricContentions, metric.WithUnit("{contention}"),
		metric.WithDescription("Lock acquisitions that had to wait."))
	if err != nil {
		return nil, err
	}
	tryFails, err := m.Int64ObservableCounter(MetricTryLockFailures, metric.WithUnit("{failure}"),
		metric.WithDescription("TryLock calls that failed."))
	if err != nil {
		return nil, err
	}
	held, err := m.Int64ObservableGauge(MetricLocksHeld, metric.WithUnit("{hold}"),
		metric.WithDescription("Holds of locks in progress."))
	if err != nil {
		return nil, err
	}
	waiting, err := m.Int64ObservableGauge(MetricGoroutinesWaiting, metric.WithUnit("{goroutine}"),
		metric.WithDescription("Goroutines waiting for a lock."))
	if err != nil {
		return nil, err
	}
	r.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		r.observe(o, contentions, tryFails, held, waiting)
		return nil
	}, contentions, tryFails, held, waiting)
	if err != nil {
		return nil, err
	}
	r.sub = inspect.Subscribe(inspect.SubscribeOptions{
		MinWait: time.Nanosecond, MinHold: time.Nanosecond, Reports: true, Buffer: buffer,
	})
	go r.run()
	return r, nil
}

// lockAttr is the lockscope.lock.name attribute for name, bounded.
func (r *metricsRecorder) lockAttr(name string) attribute.KeyValue {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.names[name] {
		if len(r.names) >= MaxMetricLocks {
			return AttrLockName.String(OtherLocks)
		}
		r.names[name] = true
	}
	return AttrLockName.String(name)
}

func (r *metricsRecorder) run() {
	defer close(r.done)
	c := r.sub.C()
	for {
		select {
		case ev, ok := <-c:
			if !ok {
				return
			}
			r.record(ev)
		case ack := <-r.flushes:
			for n := len(c); n > 0; n-- {
				if ev, ok := <-c; ok {
					r.record(ev)
				}
			}
			close(ack)
		}
	}
}

// flush records the events received so far, or gives up when ctx ends.
func (r *metricsRecorder) flush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case r.flushes <- ack:
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *metricsRecorder) record(ev report.Event) {
	ctx := context.Background()
	{
		switch ev.Kind {
		case report.EventWait:
			r.wait.Record(ctx, ev.Duration.Seconds(), metric.WithAttributes(r.lockAttr(ev.Lock.Name)))
		case report.EventHold:
			r.hold.Record(ctx, ev.Duration.Seconds(), metric.WithAttributes(r.lockAttr(ev.Lock.Name)))
		case report.EventReport:
			if ev.Report != nil {
				r.reports.Add(ctx, 1, metric.WithAttributes(AttrReportKind.String(string(ev.Report.Kind))))
			}
		}
	}
}

func (r *metricsRecorder) observe(o metric.Observer, contentions, tryFails metric.Int64ObservableCounter, held, waiting metric.Int64ObservableGauge) {
	type counts struct{ contentions, tryFails, held, waiting int64 }
	by := map[attribute.KeyValue]*counts{}
	r.mu.Lock()
	for name := range r.names {
		by[AttrLockName.String(name)] = &counts{} // a gauge drops to 0, not out of sight
	}
	r.mu.Unlock()
	at := func(name string) *counts {
		kv := r.lockAttr(name)
		c := by[kv]
		if c == nil {
			c = &counts{}
			by[kv] = c
		}
		return c
	}
	for _, ls := range inspect.LockStats() {
		c := at(ls.Lock)
		c.contentions += ls.Contentions
		c.tryFails += ls.TryLockFailures
	}
	st := inspect.Snapshot()
	for _, h := range st.Held {
		at(h.Lock.Name).held++
	}
	for _, w := range st.Waiting {
		at(w.Lock.Name).waiting++
	}
	for kv, c := range by {
		opt := metric.WithAttributes(kv)
		o.ObserveInt64(contentions, c.contentions, opt)
		o.ObserveInt64(tryFails, c.tryFails, opt)
		o.ObserveInt64(held, c.held, opt)
		o.ObserveInt64(waiting, c.waiting, opt)
	}
}

// stopEvents ends the subscription; it returns when the events received
// are recorded. The callback stays registered until reg.Unregister.
func (r *metricsRecorder) stopEvents() {
	r.sub.Close()
	<-r.done
}
