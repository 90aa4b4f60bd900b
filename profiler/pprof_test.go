package profiler

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// Helpers that run the real `go tool pprof` on the profiles we write.

// writeTemp writes profile name to a file in a fresh temporary directory and
// returns its path, after checking that it parses back into a valid profile.
func writeTemp(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".pb.gz")
	if err := WriteFile(name, path); err != nil {
		t.Fatalf("WriteFile(%q): %v", name, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.ParseData(data)
	if err != nil {
		t.Fatalf("profile %s does not parse: %v", name, err)
	}
	checkValid(t, p)
	return path
}

// checkValid checks p as thoroughly as the profile package allows:
// CheckValid, every sample's locations in the location table, a protobuf
// round trip, and the mapping pprof needs to skip symbolization.
func checkValid(t *testing.T, p *profile.Profile) {
	t.Helper()
	if err := p.CheckValid(); err != nil {
		t.Fatalf("CheckValid: %v", err)
	}
	known := map[*profile.Location]bool{}
	for _, l := range p.Location {
		known[l] = true
		if len(l.Line) == 0 {
			t.Errorf("location %d has no lines", l.ID)
		}
	}
	for _, s := range p.Sample {
		for _, l := range s.Location {
			if !known[l] {
				t.Fatalf("sample location %d is not in the location table", l.ID)
			}
		}
		if len(s.Label["lock"]) != 1 || len(s.Label["mode"]) != 1 {
			t.Errorf("sample without lock and mode labels: %v", s.Label)
		}
	}
	if len(p.Mapping) == 0 || p.Mapping[0].File == "" || !p.Mapping[0].HasFunctions {
		t.Errorf("main mapping missing, unnamed or not symbolized: %+v", p.Mapping)
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if _, err := profile.Parse(&buf); err != nil {
		t.Fatalf("round trip: %v", err)
	}
}

// pprof runs `go tool pprof args...` and returns its standard output.
func pprof(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"tool", "pprof"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go tool pprof %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	// pprof reports problems with a profile (a missing binary, failed
	// symbolization) on stderr without failing: none is acceptable.
	if s := stderr.String(); strings.Contains(s, "symbolization") || strings.Contains(s, "not available") || strings.Contains(s, "rror") {
		t.Errorf("go tool pprof %s complained:\n%s", strings.Join(args, " "), s)
	}
	return stdout.String()
}

var showingRx = regexp.MustCompile(`(?m)^Showing nodes accounting for (-?\d+)(ns)?,`)

// pprofTotal runs `go tool pprof -top` with every node shown and values in
// nanoseconds, and returns the total of the samples that survive the
// filters in args (pprof's "Showing nodes accounting for N" line).
func pprofTotal(t *testing.T, args ...string) int64 {
	t.Helper()
	args = append([]string{"-top", "-unit=ns", "-nodefraction=0", "-nodecount=100000"}, args...)
	out := pprof(t, args...)
	m := showingRx.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no total in go tool pprof %s:\n%s", strings.Join(args, " "), out)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// tagFocus returns the -tagfocus argument that keeps exactly the lock name.
func tagFocus(name string) string {
	return "-tagfocus=lock=^" + regexp.QuoteMeta(name) + "$"
}
