package bench

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/exporter"
	"github.com/lockscope/lockscope/profiler"
)

// What the optional parts cost on the lock path: lockscope with the
// profiler writing files every second, and with the exporter at its default
// thresholds (spans to an in-memory exporter).

func BenchmarkUncontendedWithProfiler(b *testing.B) {
	w, err := profiler.StartFileWriter(b.TempDir(), 1e9)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	var mu debugmutex.Mutex
	b.ReportAllocs()
	for b.Loop() {
		mu.Lock()
		mu.Unlock()
	}
}

func BenchmarkUncontendedWithExporter(b *testing.B) {
	tp := trace.NewTracerProvider(trace.WithSyncer(tracetest.NewInMemoryExporter()))
	exp, err := exporter.Start(context.Background(), exporter.WithTracerProvider(tp))
	if err != nil {
		b.Fatal(err)
	}
	defer exp.Stop(context.Background())
	var mu debugmutex.Mutex
	b.ReportAllocs()
	for b.Loop() {
		mu.Lock()
		mu.Unlock()
	}
}
