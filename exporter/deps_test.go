package exporter

import (
	"os/exec"
	"strings"
	"testing"
)

// A program that only swaps its locks must not pull in OpenTelemetry or gRPC:
// debugmutex imports neither exporter nor anything it needs.
func TestDebugmutexPullsInNoOpenTelemetryOrGRPC(t *testing.T) {
	// go test puts its own GOROOT/bin first in PATH (Go 1.19 and later).
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to list dependencies with: %v", err)
	}
	for _, tags := range []string{"", "nolockscope"} {
		out, err := exec.Command(goTool, "list", "-deps", "-tags="+tags, "github.com/lockscope/lockscope/debugmutex").CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps -tags=%q: %v\n%s", tags, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 2 {
			t.Fatalf("go list -deps -tags=%q listed only %v", tags, deps)
		}
		for _, p := range deps {
			if strings.HasPrefix(p, "go.opentelemetry.io/") || strings.HasPrefix(p, "google.golang.org/") ||
				strings.HasPrefix(p, "github.com/lockscope/lockscope/exporter") {
				t.Errorf("debugmutex (tags %q) depends on %s", tags, p)
			}
		}
	}
}
