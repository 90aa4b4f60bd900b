//go:build !nolockscope

package debugmutex_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A program that ends right after a report that writes a trace leaves the
// trace complete, under its final name, with its text beside it, and no
// temporary file: Exiting and the exit action wait for the write (within
// 2 s), and the write goes to a temporary name renamed when complete.
func TestProgramEndingRightAfterAReportLeavesACompleteTrace(t *testing.T) {
	for _, c := range []struct {
		scenario string
		env      []string
	}{
		{"trace-then-exit", nil},
		{"trace-then-exit-action", []string{"LOCKSCOPE_ON_REPORT=exit"}},
	} {
		t.Run(c.scenario, func(t *testing.T) {
			dir := t.TempDir()
			out, err := runChild(t, c.scenario, append(c.env, "LOCKSCOPE_TRACE_DIR="+dir)...)
			wantErr := c.env != nil // the exit action exits with report.ExitCode
			if (err != nil) != wantErr || !strings.Contains(out, "exit.a") {
				t.Fatalf("child: %v (want an error: %v)\n%s", err, wantErr, out)
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			var traces, texts int
			for _, n := range names {
				switch {
				case strings.HasSuffix(n, "-lock-order.trace"):
					traces++
				case strings.HasSuffix(n, "-lock-order.txt"):
					texts++
				default:
					t.Errorf("%s left in the trace directory (temporary or unknown)", n)
				}
			}
			if traces != 1 || texts != 1 {
				t.Fatalf("trace directory holds %v, want one lock-order trace and its text\n%s", names, out)
			}
			for _, n := range names {
				if !strings.HasSuffix(n, ".trace") {
					continue
				}
				parsed, err := exec.Command("go", "tool", "trace", "-d=parsed", filepath.Join(dir, n)).CombinedOutput()
				if err != nil {
					t.Errorf("go tool trace cannot read %s: %v\n%.2000s", n, err, parsed)
				}
			}
		})
	}
}
