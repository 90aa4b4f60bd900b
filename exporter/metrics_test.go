//go:build !nolockscope

package exporter

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
)

var (
	metricsOrderReported bool // a repeated problem (go test -count=2) is not reported again
	metricsRun           int  // lock names per run: debugmutex's totals are per name, for the process
)

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != TracerName {
			continue
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func lockOf(attrs attribute.Set) string {
	v, _ := attrs.Value(AttrLockName)
	return v.AsString()
}

func sumFor(t *testing.T, m metricdata.Metrics, lock string) int64 {
	t.Helper()
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		if !d.IsMonotonic || d.Temporality != metricdata.CumulativeTemporality {
			t.Errorf("%s: monotonic %v, temporality %v: want a cumulative counter", m.Name, d.IsMonotonic, d.Temporality)
		}
		for _, p := range d.DataPoints {
			if lockOf(p.Attributes) == lock {
				return p.Value
			}
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if lockOf(p.Attributes) == lock {
				return p.Value
			}
		}
	default:
		t.Fatalf("%s: data %T", m.Name, m.Data)
	}
	return -1
}

func TestMetrics(t *testing.T) {
	debugmutex.Configure(debugmutex.Quiet(true)) // the lock-order report is expected
	t.Cleanup(func() { debugmutex.Configure(debugmutex.Quiet(false)) })
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	e, _, _ := startRecorded(t, WithMeterProvider(mp))
	metricsRun++
	tryName, heldName := "metrics.try"+strconv.Itoa(metricsRun), "metrics.held"+strconv.Itoa(metricsRun)

	// Contended waits on one lock, until the histogram has one.
	var cache debugmutex.Mutex
	debugmutex.SetName(&cache, "metrics.cache")
	var waits metricdata.HistogramDataPoint[float64]
	for i := 0; waits.Count == 0; i++ {
		if i == 20 {
			t.Fatal("no wait recorded after 20 contended attempts")
		}
		contend(&cache, time.Millisecond, cache.Lock, cache.Unlock)
		flush(t, e) // the span side: the metrics loop is behind it or not
		e.metrics.sync(t)
		h, ok := collect(t, reader)[MetricWaitDuration]
		if !ok {
			continue // no wait yet
		}
		if h.Unit != "s" {
			t.Fatalf("%s unit %q, want s", h.Name, h.Unit)
		}
		for _, p := range h.Data.(metricdata.Histogram[float64]).DataPoints {
			if lockOf(p.Attributes) == "metrics.cache" {
				waits = p
			}
		}
	}
	if !slices.Equal(waits.Bounds, WaitBuckets) || waits.Sum <= 0 {
		t.Errorf("wait histogram bounds %v sum %v", waits.Bounds, waits.Sum)
	}

	// A lock-order inversion: a report (before the hold below, which would
	// be a gate lock making the inversion harmless).
	var a, b debugmutex.Mutex
	debugmutex.SetName(&a, "metrics.a")
	debugmutex.SetName(&b, "metrics.b")
	a.Lock()
	b.Lock()
	b.Unlock()
	a.Unlock()
	b.Lock()
	a.Lock()
	a.Unlock()
	b.Unlock()
	// A failed TryLock; a hold in progress with a goroutine waiting on it.
	var try, held debugmutex.Mutex
	debugmutex.SetName(&try, tryName)
	debugmutex.SetName(&held, heldName)
	try.Lock()
	failed := make(chan bool)
	go func() { failed <- !try.TryLock() }()
	if !<-failed {
		t.Fatal("TryLock of a held lock succeeded")
	}
	try.Unlock()
	held.Lock()
	waited := make(chan struct{})
	go func() {
		held.Lock()
		held.Unlock()
		close(waited)
	}()
	for !waitingOn(heldName) {
		runtime.Gosched() // until the goroutine is recorded as waiting
	}

	e.metrics.sync(t)

	ms := collect(t, reader)
	if got := sumFor(t, ms[MetricContentions], "metrics.cache"); got < int64(waits.Count) {
		t.Errorf("%s = %d for metrics.cache, want at least the %d waits in the histogram", MetricContentions, got, waits.Count)
	}
	if got := sumFor(t, ms[MetricTryLockFailures], tryName); got != 1 {
		t.Errorf("%s = %d for metrics.try, want 1", MetricTryLockFailures, got)
	}
	if got := sumFor(t, ms[MetricLocksHeld], heldName); got != 1 {
		t.Errorf("%s = %d for metrics.held, want 1", MetricLocksHeld, got)
	}
	if got := sumFor(t, ms[MetricGoroutinesWaiting], heldName); got != 1 {
		t.Errorf("%s = %d for metrics.held, want 1", MetricGoroutinesWaiting, got)
	}
	if !metricsOrderReported {
		metricsOrderReported = true
		var n int64
		reps, _ := ms[MetricReports].Data.(metricdata.Sum[int64])
		for _, p := range reps.DataPoints {
			if v, _ := p.Attributes.Value(AttrReportKind); v.AsString() == "lock-order" {
				n = p.Value
			}
		}
		if n < 1 {
			t.Errorf("%s{kind=lock-order} = %d, want at least 1", MetricReports, n)
		}
	}

	held.Unlock()
	<-waited
	ms = collect(t, reader)
	if got := sumFor(t, ms[MetricLocksHeld], heldName); got != 0 {
		t.Errorf("after release: %s = %d for metrics.held, want 0", MetricLocksHeld, got)
	}
	if got := sumFor(t, ms[MetricGoroutinesWaiting], heldName); got != 0 {
		t.Errorf("after release: %s = %d for metrics.held, want 0", MetricGoroutinesWaiting, got)
	}
}

// sync records the events the recorder has received.
func (r *metricsRecorder) sync(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func waitingOn(lock string) bool {
	for _, w := range inspect.Snapshot().Waiting {
		if w.Lock.Name == lock {
			return true
		}
	}
	return false
}

func TestMetricLockNamesAreBounded(t *testing.T) {
	r := &metricsRecorder{names: map[string]bool{}}
	for i := range MaxMetricLocks {
		if got := r.lockAttr("l" + strconv.Itoa(i)).Value.AsString(); got != "l"+strconv.Itoa(i) {
			t.Fatalf("name %d: %q", i, got)
		}
	}
	if got := r.lockAttr("one too many").Value.AsString(); got != OtherLocks {
		t.Errorf("past the bound: %q, want %q", got, OtherLocks)
	}
	if got := r.lockAttr("l0").Value.AsString(); got != "l0" {
		t.Errorf("an admitted name past the bound: %q", got)
	}
}

func TestMetricsFromEnvironmentOverOTLP(t *testing.T) {
	got := make(chan []string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := new(colmetricpb.ExportMetricsServiceRequest)
		if r.URL.Path != "/v1/metrics" || proto.Unmarshal(body, req) != nil {
			http.Error(w, "not an OTLP metrics export", http.StatusBadRequest)
			return
		}
		var names []string
		for _, rm := range req.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					names = append(names, m.Name+" "+m.Unit)
				}
			}
		}
		got <- names
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&colmetricpb.ExportMetricsServiceResponse{})
		w.Write(b)
	}))
	defer srv.Close()
	t.Setenv("OTEL_METRICS_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)

	e, err := Start(context.Background(), WithSpanExporter(tracetest.NewInMemoryExporter()))
	if err != nil {
		t.Fatal(err)
	}
	if e.ownMP == nil {
		t.Fatal("OTEL_METRICS_EXPORTER=otlp built no meter provider")
	}
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "metrics.env")
	contend(&mu, time.Millisecond, mu.Lock, mu.Unlock)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Stop(ctx); err != nil { // shuts the meter provider down: one last export
		t.Fatal(err)
	}
	var names []string
	for len(got) > 0 {
		names = append(names, <-got...)
	}
	for _, want := range []string{MetricContentions + " {contention}", MetricLocksHeld + " {hold}", MetricGoroutinesWaiting + " {goroutine}"} {
		if !slices.Contains(names, want) {
			t.Errorf("collector received %q, want %q among them", names, want)
		}
	}
}

func TestNoMetricsUnlessAsked(t *testing.T) {
	t.Setenv("OTEL_METRICS_EXPORTER", "")
	e, err := Start(context.Background(), WithSpanExporter(tracetest.NewInMemoryExporter()))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop(context.Background())
	if e.metrics != nil || e.ownMP != nil {
		t.Error("metrics recorded without WithMeterProvider or OTEL_METRICS_EXPORTER=otlp")
	}
}
