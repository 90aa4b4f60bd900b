package internal_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/lockscope/lockscope/internal"
)

const module = "github.com/lockscope/lockscope/"

// listed is the part of go list -json this test reads.
type listed struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// goList runs go list -json on patterns (with GOFLAGS tags) and decodes it.
func goList(t *testing.T, tags string, patterns ...string) map[string]listed {
	t.Helper()
	args := append([]string{"list", "-json", "-tags", tags}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]listed{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

// layer returns the index of an engine package in internal.Layers, or -1.
func layer(path string) int {
	return slices.Index(internal.Layers, strings.TrimPrefix(path, module+"internal/"))
}

func TestEnginePackagesImportDownwardOnly(t *testing.T) {
	for _, tags := range []string{"", "nolockscope", "lockscope_lockrank", "lockscope_slowgoid"} {
		pkgs := goList(t, tags, "./...")
		seen := 0
		for path, p := range pkgs {
			if !strings.HasPrefix(path, module+"internal/") {
				continue
			}
			l := layer(path)
			if l < 0 {
				t.Errorf("%s is in no layer of internal.Layers", path)
				continue
			}
			seen++
			for _, imp := range p.Imports {
				if !strings.HasPrefix(imp, module) || imp == module+"report" {
					continue
				}
				if il := layer(imp); il < 0 || il >= l {
					t.Errorf("tags %q: %s (layer %d) imports %s (layer %d): engine imports go downward only", tags, path, l, imp, il)
				}
			}
		}
		if seen != len(internal.Layers) {
			t.Errorf("tags %q: %d engine packages listed, internal.Layers has %d", tags, seen, len(internal.Layers))
		}
	}
}

func TestPackagesAboveTheEngine(t *testing.T) {
	pkgs := goList(t, "", "./report", "./inspect", "./profiler", "./exporter", "./cmd/lockscope", "./debugmutex")
	imports := func(path string) []string { return pkgs[module+path].Imports }
	deps := func(path string) []string { return pkgs[module+path].Deps }
	for _, imp := range imports("report") {
		if strings.HasPrefix(imp, module) {
			t.Errorf("report imports %s: the data model imports no other package of lockscope's", imp)
		}
	}
	for _, p := range []string{"profiler", "exporter"} {
		for _, imp := range imports(p) {
			if strings.HasPrefix(imp, module+"internal/") || imp == module+"debugmutex" {
				t.Errorf("%s imports %s: it reads what was recorded through inspect", p, imp)
			}
		}
	}
	for _, d := range deps("cmd/lockscope") {
		if strings.HasPrefix(d, module+"internal/") || d == module+"debugmutex" || d == module+"inspect" || d == module+"profiler" {
			t.Errorf("cmd/lockscope depends on %s: the command line links no engine", d)
		}
	}
	for _, d := range deps("debugmutex") {
		if strings.HasPrefix(d, "go.opentelemetry.io/") || strings.HasPrefix(d, "google.golang.org/grpc") {
			t.Errorf("debugmutex depends on %s: a program that only swaps its locks pulls in no OpenTelemetry or gRPC", d)
		}
	}
}
