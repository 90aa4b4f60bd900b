//go:build !nolockscope

package exporter_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"go.opentelemetry.io/otel/attribute"
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
