package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lockscope/lockscope/cmd/lockscope/internal/classgraph"
	"github.com/lockscope/lockscope/cmd/lockscope/internal/gotool"
	"github.com/lockscope/lockscope/report"
)

// reportTail collects the reports written to LOCKSCOPE_REPORT_FILE during
// one run: the user's file (from its current end) or a temporary one.
type reportTail struct {
	path   string
	offset int64
	// modules, with -deps, are the main module and the swapped ones: the
	// summary then says how many problems involve each one's locks.
	modules []string
}

// newReportTail sets LOCKSCOPE_REPORT_FILE in env, made absolute because
// every test binary runs in its own package directory.
func newReportTail(wd, tmp string, env []string) (*reportTail, []string, error) {
	path := os.Getenv("LOCKSCOPE_REPORT_FILE")
	user := path != ""
	if !user {
		path = filepath.Join(tmp, "reports.jsonl")
	}
	path = gotool.AbsIn(wd, path)
	t := &reportTail{path: path}
	if fi, err := os.Stat(path); err == nil {
		t.offset = fi.Size()
	} else if user {
		// The tests create the file when they report; a clean run leaves
		// an empty one, so that lockscope report FILE says "no problems"
		// of a run that happened, and fails for one that did not.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, err
		}
		f.Close()
	}
	env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "LOCKSCOPE_REPORT_FILE=") })
	return t, append(env, "LOCKSCOPE_REPORT_FILE="+path), nil
}

// print writes the problems reported during the run, grouped, to w. code
// is go test's exit status and buildFailed the number of packages it did
// not build: "no lock problems" is said only of tests that ran.
func (t *reportTail) print(w io.Writer, code, buildFailed int) {
	none := func() {
		switch {
		case buildFailed > 0:
			fmt.Fprintf(w, "lockscope: the build failed: %s did not build, so %s tests did not run; no lock problems reported by the tests that ran\n",
				plural(buildFailed, "package"), map[bool]string{true: "its", false: "their"}[buildFailed == 1])
		case code != 0:
			fmt.Fprintf(w, "lockscope: go test failed (exit status %d); no lock problems reported by the tests that ran\n", code)
		default:
			fmt.Fprintln(w, "lockscope: no lock problems reported")
		}
	}
	f, err := os.Open(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		none()
		return
	}
	if err != nil {
		fmt.Fprintf(w, "lockscope: reading reports: %v\n", err)
		return
	}
	defer f.Close()
	if _, err := f.Seek(t.offset, io.SeekStart); err != nil {
		fmt.Fprintf(w, "lockscope: reading reports: %v\n", err)
		return
	}
	file, lineErrs, err := report.ReadFile(t.path, f)
	for _, e := range lineErrs {
		fmt.Fprintf(w, "lockscope: %v\n", e)
	}
	if err != nil {
		fmt.Fprintf(w, "lockscope: reading reports: %v\n", err)
	}
	reports := append(file.Reports, mergedClassReports(w, file.ClassEdges)...)
	groups := groupReports(reports)
	if len(groups) == 0 {
		none()
		return
	}
	if buildFailed > 0 {
		fmt.Fprintf(w, "\nlockscope: %s did not build; the tests that ran reported these lock problems:\n", plural(buildFailed, "package"))
	}
	if buildFailed == 0 {
		fmt.Fprintf(w, "\nlockscope: the tests reported these lock problems:\n")
	}
	for i := range groups {
		fmt.Fprint(w, groups[i].String())
	}
	fmt.Fprintln(w, summarize(groups, made(reports)))
	if line := byModule(groups, t.modules); line != "" {
		fmt.Fprintln(w, line)
	}
}

// byModule says, for a run with -deps, how many problems involve locks of
// each module (a problem between two modules' locks counts for both), by
// the package paths in the locks' classes; "" without -deps or when no
// lock has a class.
func byModule(groups []report.Report, modules []string) string {
	if len(modules) < 2 {
		return ""
	}
	counts := map[string]int{}
	for _, g := range groups {
		seen := map[string]bool{}
		for _, l := range g.Locks {
			if m := moduleOf(l.Class, modules); m != "" && !seen[m] {
				seen[m] = true
				counts[m]++
			}
		}
	}
	if len(counts) == 0 {
		return ""
	}
	var parts []string
	for _, m := range modules {
		if counts[m] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", m, counts[m]))
		}
	}
	return "lockscope: problems by module of their locks: " + strings.Join(parts, ", ")
}

// moduleOf returns the module of modules whose path is the longest prefix
// of class's package path, "" if none is.
func moduleOf(class string, modules []string) string {
	best := ""
	for _, m := range modules {
		if len(m) > len(best) && strings.HasPrefix(class, m) && len(class) > len(m) && (class[len(m)] == '/' || class[len(m)] == '.') {
			best = m
		}
	}
	return best
}

// mergedClassReports returns the lock-order inversions between lock classes
// that the class graphs of the processes (test binaries) in edges show
// together and none showed alone, and warns on w when the graphs came from
// different versions of the module.
func mergedClassReports(w io.Writer, edges []report.ClassEdge) []report.Report {
	rs, versions := classgraph.Cycles(edges)
	if len(rs) > 0 && len(versions) > 1 {
		fmt.Fprintf(w, "lockscope: warning: the class graphs come from different versions of the module (%s): an inversion between them may be in no one program\n",
			strings.Join(versions, ", "))
	}
	return rs
}
