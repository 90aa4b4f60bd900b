package exporter

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/report"
)

// The cost of exporting with the default thresholds, on the locking side.
// Compare BenchmarkLockWithExporter with BenchmarkLockWithoutExporter (and
// the Parallel pair, where the lock is contended but waits are short).

// discard is a span exporter that throws spans away, so that benchmarks
// measure lockscope and the SDK, not a network.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

func withExporter(b *testing.B, f func(b *testing.B)) {
	e, err := Start(context.Background(), WithSpanExporter(discard{}))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Stop(context.Background())
	f(b)
	b.StopTimer()
	e.Flush(context.Background())
	st := e.Stats()
	b.ReportMetric(float64(st.Spans)/float64(b.N), "spans/op")
}

func lockUnlock(b *testing.B) {
	var mu debugmutex.Mutex
	for b.Loop() {
		mu.Lock()
		mu.Unlock()
	}
}

func lockUnlockParallel(b *testing.B) {
	var mu debugmutex.Mutex
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			mu.Unlock()
		}
	})
}

func BenchmarkLockWithoutExporter(b *testing.B) { lockUnlock(b) }

func BenchmarkLockWithExporter(b *testing.B) { withExporter(b, lockUnlock) }

func BenchmarkLockParallelWithoutExporter(b *testing.B) { lockUnlockParallel(b) }

func BenchmarkLockParallelWithExporter(b *testing.B) { withExporter(b, lockUnlockParallel) }

// BenchmarkWaitToSpan is the exporter goroutine's cost for one event that
// becomes a span (symbolising its stack, attributes, the SDK's span), with
// the exporter's own pipeline exporting to nowhere.
func BenchmarkWaitToSpan(b *testing.B) {
	var st counters
	tp, err := newPipeline(context.Background(), discard{}, DefaultQueueSize, &st)
	if err != nil {
		b.Fatal(err)
	}
	defer tp.Shutdown(context.Background())
	conv := newConverter(tp.Tracer(TracerName))
	stack, _ := stackHere()
	ev := report.Event{
		Kind: report.EventWait, Lock: report.LockInfo{ID: 1, Name: "bench.mu", Type: "Mutex"},
		Goroutine: 2, Holder: 3, Start: time.Now(), Duration: 2 * time.Millisecond,
		Stack: stack, HolderStack: stack,
	}
	for b.Loop() {
		conv.export(ev)
	}
}
