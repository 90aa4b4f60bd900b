package main

import (
	"bufio"
	"bytes"
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

	"github.com/lockscope/lockscope/debugmutex"
)

const reportUsage = `usage: lockscope report [-kind kind,...] [-json] FILE...

Reads the JSON-lines reports a program wrote (one debugmutex.Report per line,
as LOCKSCOPE_REPORT_FILE makes them; "-" reads standard input), groups
reports of the same problem (same key) adding up their counts, and prints
each problem once, in the form lockscope prints on standard error.

Exit status: 0 if there is no problem, 1 if there is at least one (after
-kind), 2 if an argument or a line is bad, or a FILE does not exist
(lockscope test creates the LOCKSCOPE_REPORT_FILE it runs with, so a clean
run leaves an empty file). A bad line is named (file:line:
what is wrong) and skipped; the rest is still read and printed.

Kinds: %s

Flags:
`

// maxReportLine bounds one line of a report file; a longer line is corrupt.
const maxReportLine = 64 << 20

// lineError is a line of a report file that is not a report.
type lineError struct {
	file string
	line int
	msg  string
}

func (e lineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg) }

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

	var all []debugmutex.Report
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
		reports, lineErrs, err := readReports(name, r)
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
	read := made(all)
	if kinds != nil {
		all = slices.DeleteFunc(all, func(r debugmutex.Report) bool { return !kinds[r.Kind] })
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

// readReports reads JSON-lines reports from r, named name in errors. Blank
// lines are skipped; a line that is not a valid report is returned as a
// lineError and the reading goes on. The error is for r itself failing.
func readReports(name string, r io.Reader) ([]debugmutex.Report, []lineError, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var reports []debugmutex.Report
	var errs []lineError
	for n := 1; ; n++ {
		line, tooLong, err := readLine(br)
		if tooLong {
			errs = append(errs, lineError{name, n, fmt.Sprintf("line longer than %d bytes", maxReportLine)})
		} else if len(bytes.TrimSpace(line)) > 0 {
			rep, perr := parseReport(line)
			if perr != nil {
				errs = append(errs, lineError{name, n, perr.Error()})
			} else {
				reports = append(reports, rep)
			}
		}
		if err == io.EOF {
			return reports, errs, nil
		}
		if err != nil {
			return reports, errs, err
		}
	}
}

// readLine returns the next line without its newline. A line longer than
// maxReportLine is consumed and reported as too long.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > maxReportLine+1 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimSuffix(line, []byte("\n")), tooLong, err
	}
}

// parseReport decodes one line into a Report and checks that it is one.
func parseReport(line []byte) (debugmutex.Report, error) {
	var rep debugmutex.Report
	line = bytes.TrimSpace(line)
	if line[0] != '{' {
		return rep, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(line, &rep); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return rep, fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, err)
		case errors.As(err, &te):
			return rep, fmt.Errorf("field %q: %v", te.Field, err)
		}
		return rep, err
	}
	switch {
	case rep.Kind == "":
		return rep, errors.New("not a report: no kind")
	case !slices.Contains(debugmutex.Kinds, rep.Kind):
		return rep, fmt.Errorf("unknown kind %q (this lockscope knows %s)", rep.Kind, kindNames())
	case rep.Count < 0:
		return rep, fmt.Errorf("negative count %d", rep.Count)
	}
	return rep, nil
}

// groupKey is what makes two reports the same problem: their Key, or, for a
// report without one, its kind and summary.
func groupKey(r *debugmutex.Report) string {
	if r.Key != "" {
		return "k\x00" + r.Key
	}
	return "s\x00" + string(r.Kind) + "\x00" + r.Summary
}

// groupReports merges reports of the same problem: the first one stands
// for the group, its Count is the sum of theirs (a report without a count
// counts once), its Time the earliest. Groups are ordered by kind (in
// debugmutex.Kinds order), most frequent first, then by time.
func groupReports(reports []debugmutex.Report) []debugmutex.Report {
	var groups []debugmutex.Report
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
	slices.SortStableFunc(groups, func(a, b debugmutex.Report) int {
		if c := slices.Index(debugmutex.Kinds, a.Kind) - slices.Index(debugmutex.Kinds, b.Kind); c != 0 {
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
// repeats to one (debugmutex.Report.Repeat).
func made(reports []debugmutex.Report) int {
	n := 0
	for i := range reports {
		if !reports[i].Repeat {
			n++
		}
	}
	return n
}

// summarize returns the last line of the text output.
func summarize(groups []debugmutex.Report, read int) string {
	if len(groups) == 0 {
		return fmt.Sprintf("lockscope: no problems (%d reports read)", read)
	}
	counts := map[debugmutex.Kind]int{}
	for _, g := range groups {
		counts[g.Kind]++
	}
	var parts []string
	for _, k := range debugmutex.Kinds {
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
func parseKinds(list string) (map[debugmutex.Kind]bool, error) {
	if list == "" {
		return nil, nil
	}
	kinds := map[debugmutex.Kind]bool{}
	for _, k := range strings.Split(list, ",") {
		k = strings.TrimSpace(k)
		if !slices.Contains(debugmutex.Kinds, debugmutex.Kind(k)) {
			return nil, fmt.Errorf("-kind: unknown kind %q; kinds are %s", k, kindNames())
		}
		kinds[debugmutex.Kind(k)] = true
	}
	return kinds, nil
}

func kindNames() string {
	names := make([]string, len(debugmutex.Kinds))
	for i, k := range debugmutex.Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}
