//go:build !nolockscope

package exporter_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/exporter"
)

// A service that has its own TracerProvider hands it to the exporter: a hold
// above 10ms becomes a span under the request's span, named after the lock,
// with no change to the code that locks (the exporter learns the span active
// on each goroutine). The spans are recorded in memory here; a real service
// sends them over OTLP.
func ExampleStart() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))

	exp, err := exporter.Start(context.Background(), exporter.WithTracerProvider(tp))
	if err != nil {
		log.Fatal(err)
	}

	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "account.mu")

	_, req := tp.Tracer("shop").Start(context.Background(), "GET /account")
	mu.Lock()                         // a plain Lock: no LockContext needed
	time.Sleep(15 * time.Millisecond) // slow work under the lock
	mu.Unlock()
	req.End()

	if err := exp.Stop(context.Background()); err != nil {
		log.Fatal(err)
	}
	for _, s := range spans.Ended() {
		if s.Parent().SpanID() == req.SpanContext().SpanID() {
			var lock attribute.Value
			for _, kv := range s.Attributes() {
				if kv.Key == exporter.AttrLockName {
					lock = kv.Value
				}
			}
			fmt.Printf("%q (lock %s), under GET /account\n", s.Name(), lock.AsString())
		}
	}
	// Output: "lockscope.hold account.mu" (lock account.mu), under GET /account
}

// A program with no tracing of its own: the exporter builds its pipeline
// from the standard variables, e.g.
//
//	OTEL_SERVICE_NAME=shop OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 ./shop
//
// (or blank-imports exporter/autoexport, which does this at init).
func ExampleStart_fromEnvironment() {
	exp, err := exporter.Start(context.Background(), exporter.WithMinWait(5*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		exp.Stop(ctx) // sends what is left
		st := exp.Stats()
		log.Printf("lockscope: %d spans exported, %d dropped", st.Exported, st.DroppedEvents+st.DroppedSpans)
	}()
	// ... the program ...
}

// The span processor tells the exporter which span is active on each
// goroutine. Start registers one itself on an SDK provider given with
// WithTracerProvider; a provider that Start does not see (the program's
// request spans come from another one) needs it registered as here. Either
// way, a plain Lock inside a request span makes a child span of it.
func ExampleSpanProcessor() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(exporter.SpanProcessor()), // which span is active where
		sdktrace.WithSpanProcessor(spans),
	)
	exp, err := exporter.Start(context.Background(), exporter.WithTracerProvider(tp))
	if err != nil {
		log.Fatal(err)
	}
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "ledger.mu")
	_, req := tp.Tracer("shop").Start(context.Background(), "POST /ledger")
	mu.Lock()
	time.Sleep(15 * time.Millisecond) // a hold above the 10ms threshold
	mu.Unlock()
	req.End()
	exp.Stop(context.Background())
	for _, s := range spans.Ended() {
		if s.Parent().SpanID() == req.SpanContext().SpanID() {
			fmt.Println(s.Name(), "under POST /ledger")
		}
	}
	// Output: lockscope.hold ledger.mu under POST /ledger
}

// Metrics go to the program's MeterProvider: here a manual reader, read
// once; a service uses a periodic OTLP or Prometheus reader.
func ExampleWithMeterProvider() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	exp, err := exporter.Start(context.Background(),
		exporter.WithTracerProvider(sdktrace.NewTracerProvider()), exporter.WithMeterProvider(mp))
	if err != nil {
		log.Fatal(err)
	}
	defer exp.Stop(context.Background())

	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "example.metrics")
	mu.Lock() // held while the metrics are read

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == exporter.MetricLocksHeld {
				for _, p := range g.DataPoints {
					if v, _ := p.Attributes.Value(exporter.AttrLockName); v.AsString() == "example.metrics" {
						fmt.Printf("%s{%s=%s} %d\n", m.Name, exporter.AttrLockName, v.AsString(), p.Value)
					}
				}
			}
		}
	}
	mu.Unlock()
	// Output: lockscope.locks.held{lockscope.lock.name=example.metrics} 1
}
