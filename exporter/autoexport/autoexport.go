// Package autoexport starts the lockscope exporter when the environment asks
// for it, for programs that only swapped their locks for debugmutex and have
// no OpenTelemetry set-up of their own. Import it for its side effect:
//
//	import _ "github.com/lockscope/lockscope/exporter/autoexport"
//
// At init, it starts exporter.Start with its defaults (a pipeline built from
// the OTEL_* environment variables) when any of these is set:
//
//	LOCKSCOPE_OTEL=1                      (endpoint from OTEL_* or the OTLP default)
//	OTEL_EXPORTER_OTLP_ENDPOINT
//	OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
//
// and none of these: LOCKSCOPE_OTEL=0, OTEL_SDK_DISABLED=true,
// OTEL_TRACES_EXPORTER=none, LOCKSCOPE=off. Nothing starts, and no
// connection is opened, otherwise.
//
// With OTEL_METRICS_EXPORTER=otlp as well, it also sends lockscope's
// metrics (see the exporter package: lockscope.lock.wait.duration and
// others) to the same OTLP endpoint, every OTEL_METRIC_EXPORT_INTERVAL.
//
// Spans are sent in batches; spans of the last moments before the program
// exits are lost unless it calls Stop (for example deferred in main).
package autoexport

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/lockscope/lockscope/exporter"
	"github.com/lockscope/lockscope/inspect"
)

var exp *exporter.Exporter

func init() {
	if !wanted(os.Getenv) || !inspect.Enabled() {
		return // with recording off (LOCKSCOPE=off) there is nothing to export
	}
	e, err := exporter.Start(context.Background())
	if err != nil {
		// A debugging aid must not stop the program: say why, go on.
		fmt.Fprintf(os.Stderr, "lockscope: exporter not started: %v\n", err)
		return
	}
	exp = e
}

// wanted reports whether the environment asks for the exporter.
func wanted(getenv func(string) string) bool {
	switch {
	case getenv("LOCKSCOPE_OTEL") == "0",
		strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true"),
		strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")) == "none":
		return false
	}
	return getenv("LOCKSCOPE_OTEL") == "1" ||
		getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" ||
		getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Exporter returns the exporter started at init, or nil if none was.
func Exporter() *exporter.Exporter { return exp }

// TracerProvider returns the started exporter's provider, or else the global
// one (otel.GetTracerProvider(), a no-op unless the program set one). A
// program with no tracing of its own hands it to otelhttp, so that its
// request spans go where the lock spans go and lock waits in a request show
// under the request's span:
//
//	h := otelhttp.NewHandler(mux, "server", otelhttp.WithTracerProvider(autoexport.TracerProvider()))
func TracerProvider() trace.TracerProvider {
	if exp == nil {
		return otel.GetTracerProvider()
	}
	return exp.TracerProvider()
}

// Stop flushes and stops the exporter started at init, if any. Call it before
// the program exits so that the last spans are sent.
func Stop(ctx context.Context) error {
	if exp == nil {
		return nil
	}
	return exp.Stop(ctx)
}
