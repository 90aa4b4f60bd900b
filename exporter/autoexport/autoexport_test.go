//go:build !nolockscope

package autoexport

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/exporter"
)

// childEnv marks the test binary re-run as a program whose environment asks
// for the exporter: init has run with it.
const childEnv = "LOCKSCOPE_AUTOEXPORT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child is the program: it only swapped its locks and imported autoexport.
func child() int {
	if Exporter() == nil {
		fmt.Fprintln(os.Stderr, "child: no exporter started at init")
		return 1
	}
	var mu debugmutex.Mutex // a new lock: its first hold is timed
	debugmutex.SetName(&mu, "child.mu")
	mu.Lock()
	time.Sleep(2 * exporter.DefaultMinHold) // a hold above the default threshold
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Stop(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child: Stop:", err)
		return 1
	}
	return 0
}

func TestInitStartsExporterFromEnvironment(t *testing.T) {
	got := make(chan *coltrace.ExportTraceServiceRequest, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := new(coltrace.ExportTraceServiceRequest)
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, req) != nil {
			http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
			return
		}
		got <- req
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Write(b)
	}))
	defer srv.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// The child's OTEL_* and LOCKSCOPE_OTEL are exactly these, whatever the
	// test's own environment says.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") && !strings.HasPrefix(kv, "LOCKSCOPE_OTEL=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env,
		childEnv+"=1",
		"OTEL_EXPORTER_OTLP_ENDPOINT="+srv.URL,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_SERVICE_NAME=autoexport-test",
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	close(got)
	var names []string
	service := ""
	for req := range got {
		for _, rs := range req.ResourceSpans {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names = append(names, ss.GetScope().GetName()+" "+s.Name)
				}
			}
		}
	}
	want := exporter.TracerName + " " + exporter.SpanHold + " child.mu"
	if len(names) != 1 || names[0] != want {
		t.Errorf("collector received spans %q, want [%q]", names, want)
	}
	if service != "autoexport-test" {
		t.Errorf("service.name %q, want OTEL_SERVICE_NAME's", service)
	}
}
