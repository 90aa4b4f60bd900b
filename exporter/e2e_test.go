//go:build e2e && !nolockscope

// End-to-end tests against a real Jaeger. They run only with the e2e build
// tag, and then require a Jaeger to talk to (a missing one is a failure, not
// a skip):
//
//	.ci/jaeger.sh start
//	eval "$(.ci/jaeger.sh env)"
//	go test -tags e2e -run E2E ./exporter/
//	.ci/jaeger.sh stop
//
// LOCKSCOPE_JAEGER_URL is Jaeger's query API (http://127.0.0.1:16686),
// OTEL_EXPORTER_OTLP_ENDPOINT its OTLP gRPC receiver (http://127.0.0.1:4317)
// and LOCKSCOPE_JAEGER_OTLP_HTTP its OTLP HTTP receiver
// (http://127.0.0.1:4318, the default).
package exporter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/exporter"
)

func jaegerEnv(t *testing.T) (query, otlpGRPC, otlpHTTP string) {
	t.Helper()
	query = os.Getenv("LOCKSCOPE_JAEGER_URL")
	otlpGRPC = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	if query == "" || otlpGRPC == "" {
		t.Fatal(`the e2e tests need a running Jaeger: .ci/jaeger.sh start; eval "$(.ci/jaeger.sh env)"` +
			" (LOCKSCOPE_JAEGER_URL and OTEL_EXPORTER_OTLP_ENDPOINT are unset)")
	}
	otlpHTTP = os.Getenv("LOCKSCOPE_JAEGER_OTLP_HTTP")
	if otlpHTTP == "" {
		otlpHTTP = "http://127.0.0.1:4318"
	}
	return strings.TrimRight(query, "/"), otlpGRPC, otlpHTTP
}

// Jaeger's query API (/api/traces) JSON, the parts the tests read.
type jTraces struct {
	Data   []jTrace `json:"data"`
	Errors []any    `json:"errors"`
}

type jTrace struct {
	TraceID   string              `json:"traceID"`
	Spans     []jSpan             `json:"spans"`
	Processes map[string]jProcess `json:"processes"`
}

type jSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []jRef `json:"references"`
	StartTime     int64  `json:"startTime"` // µs
	Duration      int64  `json:"duration"`  // µs
	Tags          []jKV  `json:"tags"`
	Logs          []jLog `json:"logs"`
	ProcessID     string `json:"processID"`
}

type jRef struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

type jKV struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

type jLog struct {
	Timestamp int64 `json:"timestamp"`
	Fields    []jKV `json:"fields"`
}

type jProcess struct {
	ServiceName string `json:"serviceName"`
}

// logField returns field key of the span's log (event) named event.
func (s jSpan) logField(event, key string) string {
	for _, l := range s.Logs {
		name, value := "", ""
		for _, f := range l.Fields {
			switch f.Key {
			case "event":
				name, _ = f.Value.(string)
			case key:
				value, _ = f.Value.(string)
			}
		}
		if name == event {
			return value
		}
	}
	return ""
}

func (s jSpan) tag(key string) (any, bool) {
	for _, kv := range s.Tags {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

func (s jSpan) str(key string) string {
	v, _ := s.tag(key)
	str, _ := v.(string)
	return str
}

// num returns a numeric tag (Jaeger encodes int64 as a JSON number).
func (s jSpan) num(key string) int64 {
	v, _ := s.tag(key)
	f, _ := v.(float64)
	return int64(f)
}

func (tr jTrace) span(op string) (jSpan, bool) {
	for _, s := range tr.Spans {
		if s.OperationName == op {
			return s, true
		}
	}
	return jSpan{}, false
}

// findTrace polls Jaeger (it batches: a trace appears after 100-250 ms) until
// a trace of service, matching the query, holds every one of ops.
func findTrace(t *testing.T, queryURL, service string, tags map[string]string, ops ...string) jTrace {
	t.Helper()
	q := url.Values{"service": {service}, "limit": {"20"}, "lookback": {"1h"}}
	if len(tags) > 0 {
		b, _ := json.Marshal(tags)
		q.Set("tags", string(b))
	}
	u := queryURL + "/api/traces?" + q.Encode()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for {
		body, err := get(u)
		if err != nil {
			last = err.Error()
		} else {
			last = string(body)
			var res jTraces
			if err := json.Unmarshal(body, &res); err != nil {
				t.Fatalf("GET %s: %v\n%s", u, err, body)
			}
		traces:
			for _, tr := range res.Data {
				for _, op := range ops {
					if _, ok := tr.span(op); !ok {
						continue traces
					}
				}
				return tr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no trace of %s with %v in Jaeger after 30s; last answer:\n%.4000s", service, ops, last)
		}
		time.Sleep(200 * time.Millisecond) // polling an external service
	}
}

func get(u string) ([]byte, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, b)
	}
	return b, nil
}

func uniqueService(t *testing.T) string {
	return fmt.Sprintf("lockscope-e2e-%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), time.Now().UnixNano())
}

func logSpan(t *testing.T, s jSpan) {
	b, _ := json.MarshalIndent(s, "", "  ")
	t.Logf("%s as Jaeger returned it:\n%s", s.OperationName, b)
}

// A service with its own tracing (OTLP over gRPC) handles a request that
// waits for a lock another goroutine holds: in Jaeger, the wait and the hold
// that follows are children of the request's span.
func TestE2ELockSpansAreChildrenOfRequestSpan(t *testing.T) {
	queryURL, _, _ := jaegerEnv(t)
	ctx := context.Background()
	svc := uniqueService(t)

	// The service's own tracing set-up, as any service has it.
	se, err := otlptracegrpc.New(ctx) // endpoint from OTEL_EXPORTER_OTLP_ENDPOINT
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(se, sdktrace.WithBatchTimeout(100*time.Millisecond)),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(svc))),
	)
	defer tp.Shutdown(ctx)
	exp, err := exporter.Start(ctx, exporter.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}

	var accounts debugmutex.Mutex
	debugmutex.SetName(&accounts, "e2e.accounts")
	entered := make(chan trace.SpanContext, 1)
	var lockLine int
	mux := http.NewServeMux()
	mux.HandleFunc("/transfer", func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tp.Tracer("e2e-shop").Start(r.Context(), "GET /transfer")
		defer span.End()
		entered <- span.SpanContext()
		_, _, lockLine, _ = runtime.Caller(0)
		debugmutex.LockContext(ctx, &accounts) // the line after runtime.Caller
		time.Sleep(12 * time.Millisecond)      // work under the lock: a hold above 10ms
		accounts.Unlock()
		io.WriteString(w, "ok")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Another goroutine (the test), in a request of its own, holds the
	// lock...
	_, holding := tp.Tracer("e2e-shop").Start(ctx, "POST /audit")
	accounts.Lock()
	done := make(chan error, 1)
	go func() {
		_, err := get(srv.URL + "/transfer")
		done <- err
	}()
	req := <-entered                  // ...while the request comes in and waits for it
	time.Sleep(20 * time.Millisecond) // the hold the request waits on
	accounts.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := exp.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	holding.End() // after the wait was exported: the holder's request went on
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := exp.Stats(); st.Spans < 2 {
		t.Fatalf("exporter made %d spans, want a wait and a hold: %+v", st.Spans, st)
	}

	waitOp, holdOp := exporter.SpanWait+" e2e.accounts", exporter.SpanHold+" e2e.accounts"
	tr := findTrace(t, queryURL, svc, nil, "GET /transfer", waitOp, holdOp)
	reqSpan, _ := tr.span("GET /transfer")
	wait, _ := tr.span(waitOp)
	hold, _ := tr.span(holdOp)
	logSpan(t, wait)
	logSpan(t, hold)

	if reqSpan.SpanID != req.SpanID().String() || tr.TraceID != req.TraceID().String() {
		t.Errorf("request span %s/%s in Jaeger, want %s/%s", tr.TraceID, reqSpan.SpanID, req.TraceID(), req.SpanID())
	}
	// The wait's cause one click away: a reference to the holder's request.
	holder := holding.SpanContext()
	var follows []jRef
	for _, r := range wait.References {
		if r.RefType == "FOLLOWS_FROM" {
			follows = append(follows, r)
		}
	}
	if len(follows) != 1 || follows[0].SpanID != holder.SpanID().String() || follows[0].TraceID != holder.TraceID().String() {
		t.Errorf("wait references %+v, want one FOLLOWS_FROM the holder's request span %s/%s", wait.References, holder.TraceID(), holder.SpanID())
	}
	for _, s := range []jSpan{wait, hold} {
		var parents []jRef
		for _, r := range s.References {
			if r.RefType == "CHILD_OF" {
				parents = append(parents, r)
			}
		}
		if len(parents) != 1 || parents[0].SpanID != reqSpan.SpanID {
			t.Errorf("%s references %+v, want CHILD_OF the request span %s", s.OperationName, s.References, reqSpan.SpanID)
		}
		if p := tr.Processes[s.ProcessID]; p.ServiceName != svc {
			t.Errorf("%s service %q, want %q", s.OperationName, p.ServiceName, svc)
		}
		if s.str("otel.scope.name") != exporter.TracerName {
			t.Errorf("%s otel.scope.name = %q, want %q", s.OperationName, s.str("otel.scope.name"), exporter.TracerName)
		}
		if s.str("lockscope.lock.name") != "e2e.accounts" || s.str("lockscope.lock.type") != "Mutex" ||
			s.str("lockscope.lock.mode") != "write" || s.num("lockscope.lock.id") == 0 || s.num("lockscope.goroutine.id") == 0 {
			t.Errorf("%s lock tags %+v", s.OperationName, s.Tags)
		}
		if fn := s.str("code.function.name"); fn != "github.com/lockscope/lockscope/exporter_test.TestE2ELockSpansAreChildrenOfRequestSpan.func1" {
			t.Errorf("%s code.function.name = %q, want the handler", s.OperationName, fn)
		}
		if f := s.str("code.file.path"); !strings.HasSuffix(f, "/exporter/e2e_test.go") {
			t.Errorf("%s code.file.path = %q", s.OperationName, f)
		}
		if l := s.num("code.line.number"); l != int64(lockLine+1) {
			t.Errorf("%s code.line.number = %d, want %d", s.OperationName, l, lockLine+1)
		}
		if st := s.logField(exporter.EventStack, "code.stacktrace"); !strings.Contains(st, "e2e_test.go") {
			t.Errorf("%s %s log's code.stacktrace = %q", s.OperationName, exporter.EventStack, st)
		}
	}
	waitNS := wait.num("lockscope.wait.duration_ns")
	if waitNS < int64(exporter.DefaultMinWait) || abs(wait.Duration-waitNS/1000) > 1 {
		t.Errorf("wait.duration_ns %d, span duration %dµs: want the same, at least %v", waitNS, wait.Duration, exporter.DefaultMinWait)
	}
	if wait.num("lockscope.holder.goroutine.id") == 0 || wait.num("lockscope.holder.goroutine.id") == wait.num("lockscope.goroutine.id") {
		t.Errorf("holder %d, waiter %d: want the test goroutine holding", wait.num("lockscope.holder.goroutine.id"), wait.num("lockscope.goroutine.id"))
	}
	if site := wait.str("lockscope.holder.site"); !strings.Contains(site, "TestE2ELockSpansAreChildrenOfRequestSpan at e2e_test.go:") {
		t.Errorf("holder.site = %q, want where the test locked", site)
	}
	holdNS := hold.num("lockscope.hold.duration_ns")
	if holdNS < int64(12*time.Millisecond) || abs(hold.Duration-holdNS/1000) > 1 {
		t.Errorf("hold.duration_ns %d, span duration %dµs: want the same, at least 12ms", holdNS, hold.Duration)
	}
	if hold.StartTime < wait.StartTime+wait.Duration-1 {
		t.Errorf("hold starts at %d, before the wait ends at %d", hold.StartTime, wait.StartTime+wait.Duration)
	}
}

// A program with no tracing of its own, configured only by OTEL_* variables
// (OTLP over HTTP here): a wait in plain Lock is a root span, found in Jaeger
// by service and lock name.
func TestE2EPlainLockFoundByServiceAndLockName(t *testing.T) {
	queryURL, _, otlpHTTP := jaegerEnv(t)
	ctx := context.Background()
	svc := uniqueService(t)
	t.Setenv("OTEL_SERVICE_NAME", svc)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlpHTTP)
	exp, err := exporter.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var inventory debugmutex.RWMutex
	debugmutex.SetName(&inventory, "e2e.inventory")
	inventory.Lock()
	locking := make(chan struct{})
	done := make(chan struct{})
	go func() {
		close(locking)
		inventory.RLock()
		inventory.RUnlock()
		close(done)
	}()
	<-locking
	time.Sleep(20 * time.Millisecond) // the hold the reader waits on
	inventory.Unlock()
	<-done
	if err := exp.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st := exp.Stats(); st.Exported == 0 || st.FailedSpans != 0 || st.DroppedSpans != 0 {
		t.Fatalf("stats %+v: want the spans exported", st)
	}

	tr := findTrace(t, queryURL, svc, map[string]string{"lockscope.lock.name": "e2e.inventory"}, exporter.SpanWait+" e2e.inventory")
	wait, _ := tr.span(exporter.SpanWait + " e2e.inventory")
	logSpan(t, wait)
	if len(wait.References) != 0 {
		t.Errorf("references %+v, want a root span", wait.References)
	}
	if wait.str("lockscope.lock.mode") != "read" || wait.str("lockscope.lock.type") != "RWMutex" {
		t.Errorf("tags %+v, want a read wait on an RWMutex", wait.Tags)
	}
	if tr.Processes[wait.ProcessID].ServiceName != svc {
		t.Errorf("service %q, want %q (OTEL_SERVICE_NAME)", tr.Processes[wait.ProcessID].ServiceName, svc)
	}
}

// A lock-order inversion becomes an error span whose logs (span events) name
// both orders.
func TestE2EReportIsErrorSpanWithEvents(t *testing.T) {
	queryURL, _, _ := jaegerEnv(t)
	ctx := context.Background()
	svc := uniqueService(t)
	t.Setenv("OTEL_SERVICE_NAME", svc)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	debugmutex.Configure(debugmutex.Quiet(true)) // the report is expected
	defer debugmutex.Configure(debugmutex.Quiet(false))
	exp, err := exporter.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var from, to debugmutex.Mutex
	debugmutex.SetName(&from, "e2e.from")
	debugmutex.SetName(&to, "e2e.to")
	from.Lock()
	to.Lock()
	to.Unlock()
	from.Unlock()
	to.Lock()
	from.Lock()
	from.Unlock()
	to.Unlock()
	if err := exp.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	op := "lockscope.report lock-order"
	tr := findTrace(t, queryURL, svc, nil, op)
	rep, _ := tr.span(op)
	logSpan(t, rep)
	if v, _ := rep.tag("error"); v != true {
		t.Errorf("error tag %v, want true", v)
	}
	if rep.str("otel.status_code") != "ERROR" || !strings.Contains(rep.str("otel.status_description"), "lock-order inversion") {
		t.Errorf("status %q %q", rep.str("otel.status_code"), rep.str("otel.status_description"))
	}
	edges := 0
	for _, l := range rep.Logs {
		for _, f := range l.Fields {
			if f.Key == "event" && f.Value == exporter.EventEdge {
				edges++
			}
		}
	}
	if edges != 2 {
		t.Errorf("%d %s logs, want 2", edges, exporter.EventEdge)
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
