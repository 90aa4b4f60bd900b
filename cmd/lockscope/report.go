package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/lockscope/lockscope/report"
)

const reportUsage = `usage: lockscope report [-kind kind,...] [-json] FILE...

Reads the JSON-lines reports a program wrote (one report.Report per line,
as LOCKSCOPE_REPORT_FILE makes them; "-" reads standard input), groups
reports of the same problem (same key) adding up their counts, and prints
each problem once, in the form lockscope prints on standard error.

The files also hold each process's lock-class graph (the orders in which
it took locks, by declaration: {"class_edge": ...} lines, written at its
end). The graphs of all the FILEs are merged, and an inversion that no one
process saw whole (one order in a test binary or replica, the inverse in
another) is reported as a lock-order problem naming the processes on each
side; graphs from different versions of the module are warned about.

Exit status: 0 if there is no problem, 1 if there is at least one (after
-kind), 2 if an argument or a line is bad, or a FILE does not exist
(lockscope test creates the LOCKSCOPE_REPORT_FILE it runs with, so a clean
run leaves an empty file). A bad line is named (file:line:
what is wrong) and skipped; the rest is still read and printed.

Kinds: %s

Flags:
`

func cmdReport(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("lockscope report", flag.ContinueOnError)
	fl.SetOutput(stderr)
	kindList := fl.String("kind", "", "print only these kinds (comma-separated)")
	asJSON := fl.Bool("json", false, "print the grouped reports as JSON lines instead of text")
	fl.Usage = func() {
		fmt.Fprintf(stderr, reportUsage, kindNames())
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return flagErr(err)
	}
	if fl.NArg() == 0 {
		fmt.Fprintln(stderr, "lockscope report: no report file named")
		fl.Usage()
		return 2
	}
	kinds, err := parseKinds(*kindList)
	if err != nil {
		fmt.Fprintf(stderr, "lockscope report: %v\n", err)
		return 2
	}

	var all []report.Report
	var classEdges []report.ClassEdge
	bad, opened := false, 0
	for _, name := range fl.Args() {
		var r io.Reader
		if name == "-" {
			r, name = os.Stdin, "<stdin>"
		} else {
			f, err := os.Open(name)
			if errors.Is(err, fs.ErrNotExist) {
				// Not "no problems": nothing says the program ran with
				// this file. lockscope test creates the file it is given.
				fmt.Fprintf(stderr, "lockscope report: %s does not exist: no program wrote it, and lockscope test, which creates it, did not run with it\n", name)
				bad = true
				continue
			}
			if err != nil {
				fmt.Fprintf(stderr, "lockscope report: %v\n", err)
				bad = true
				continue
			}
			defer f.Close()
			r = f
		}
		file, lineErrs, err := report.ReadFile(name, r)
		reports := file.Reports
		classEdges = append(classEdges, file.ClassEdges...)
		for _, e := range lineErrs {
			fmt.Fprintf(stderr, "lockscope report: %v\n", e)
		}
		if err != nil {
			fmt.Fprintf(stderr, "lockscope report: %s: %v\n", name, err)
		}
		bad = bad || err != nil || len(lineErrs) > 0
		all = append(all, reports...)
		opened++
	}
	if opened == 0 {
		return 2 // nothing was read: no summary to give
	}
	all = append(all, mergedClassReports(stderr, classEdges)...)
	read := made(all)
	if kinds != nil {
		all = slices.DeleteFunc(all, func(r report.Report) bool { return !kinds[r.Kind] })
	}
	groups := groupReports(all)

	if *asJSON {
		enc := json.NewEncoder(stdout)
		for i := range groups {
			if err := enc.Encode(&groups[i]); err != nil {
				fmt.Fprintf(stderr, "lockscope report: %v\n", err)
				return 2
			}
		}
	} else {
		for i := range groups {
			fmt.Fprint(stdout, groups[i].String())
			fmt.Fprintln(stdout)
		}
		fmt.Fprintln(stdout, summarize(groups, read))
	}
	switch {
	case bad:
		return 2
	case len(groups) > 0:
		return 1
	}
	return 0
}

// groupKey is what makes two reports the same problem: their Key, or, for a
// report without one, its kind and summary.
func groupKey(r *report.Report) string {
	if r.Key != "" {
		return "k\x00" + r.Key
	}
	return "s\x00" + string(r.Kind) + "\x00" + r.Summary
}

// groupReports merges reports of the same problem: the first one stands
// for the group, its Count is the sum of theirs (a report without a count
// counts once), its Time the earliest. Groups are ordered by kind (in
// report.Kinds order), most frequent first, then by time.
func groupReports(reports []report.Report) []report.Report {
	var groups []report.Report
	index := map[string]int{}
	for _, r := range reports {
		count := max(r.Count, 1)
		k := groupKey(&r)
		i, ok := index[k]
		if !ok {
			index[k] = len(groups)
			r.Count, r.Repeat = count, false
			groups = append(groups, r)
			continue
		}
		g := &groups[i]
		g.Count = addSat(g.Count, count)
		if r.Time.Before(g.Time) {
			g.Time = r.Time
		}
	}
	slices.SortStableFunc(groups, func(a, b report.Report) int {
		if c := slices.Index(report.Kinds, a.Kind) - slices.Index(report.Kinds, b.Kind); c != 0 {
			return c
		}
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return a.Time.Compare(b.Time)
	})
	return groups
}

// addSat adds two non-negative counts, saturating instead of overflowing.
func addSat(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

// made counts the reports that were made, not the lines that only add
// repeats to one (report.Report.Repeat).
func made(reports []report.Report) int {
	n := 0
	for i := range reports {
		if !reports[i].Repeat {
			n++
		}
	}
	return n
}

// summarize returns the last line of the text output.
func summarize(groups []report.Report, read int) string {
	if len(groups) == 0 {
		return fmt.Sprintf("lockscope: no problems (%d reports read)", read)
	}
	counts := map[report.Kind]int{}
	for _, g := range groups {
		counts[g.Kind]++
	}
	var parts []string
	for _, k := range report.Kinds {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
		}
	}
	noun := "problems"
	if len(groups) == 1 {
		noun = "problem"
	}
	return fmt.Sprintf("lockscope: %d %s: %s (%d reports read)", len(groups), noun, strings.Join(parts, ", "), read)
}

// parseKinds parses the -kind list; nil means every kind.
func parseKinds(list string) (map[report.Kind]bool, error) {
	if list == "" {
		return nil, nil
	}
	kinds := map[report.Kind]bool{}
	for _, k := range strings.Split(list, ",") {
		k = strings.TrimSpace(k)
		if !slices.Contains(report.Kinds, report.Kind(k)) {
			return nil, fmt.Errorf("-kind: unknown kind %q; kinds are %s", k, kindNames())
		}
		kinds[report.Kind(k)] = true
	}
	return kinds, nil
}

func kindNames() string {
	names := make([]string, len(report.Kinds))
	for i, k := range report.Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}
