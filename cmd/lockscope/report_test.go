package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/report"
)

func sampleReports() []report.Report {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	order := report.Report{
		Kind:    report.KindLockOrder,
		Summary: "lock-order inversion: a.mu then b.mu, and b.mu then a.mu",
		Time:    t0.Add(time.Second),
		Count:   1,
		Key:     "lock-order|a.go:10|b.go:20",
		Locks:   []report.LockRef{{ID: 1, Name: "a.mu", Type: "Mutex"}, {ID: 2, Name: "b.mu", Type: "Mutex"}},
		Edges: []report.Edge{
			{From: "a.mu", To: "b.mu", Goroutine: 7, FromStack: []report.Frame{{Function: "main.ab", File: "/src/a.go", Line: 10}}},
			{From: "b.mu", To: "a.mu", Goroutine: 8, ToStack: []report.Frame{{Function: "main.ba", File: "/src/b.go", Line: 20}}},
		},
	}
	hold := report.Report{
		Kind:    report.KindLongHold,
		Summary: "c.mu held for 2s by goroutine 9",
		Time:    t0,
		Count:   2,
		Key:     "long-hold|c.go:5",
		Goroutines: []report.GoroutineRef{{ID: 9, Role: "holds", Lock: "c.mu", For: 2 * time.Second,
			Stack: []report.Frame{{Function: "main.forget", File: "/src/c.go", Line: 5}}}},
	}
	return []report.Report{order, hold, order, hold, order}
}

func writeReports(t *testing.T, path string, reports []report.Report, extra ...string) {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for i := range reports {
		if err := enc.Encode(&reports[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	if err := os.WriteFile(path, b.Bytes(), 0o666); err != nil {
		t.Fatal(err)
	}
}

func TestReportGroupsAndExitsOne(t *testing.T) {
	dir := t.TempDir()
	writeReports(t, filepath.Join(dir, "r.jsonl"), sampleReports())
	r := lockscope(t, dir, nil, "report", "r.jsonl")
	if r.code != 1 {
		t.Fatalf("report with problems: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := strings.Count(r.stdout, "LOCKSCOPE: "); n != 2 {
		t.Errorf("5 reports of 2 problems printed as %d:\n%s", n, r.stdout)
	}
	// Lock order first (report.Kinds order), counts summed: 3 x 1, 2 x 2.
	order := strings.Index(r.stdout, "LOCKSCOPE: lock-order inversion")
	hold := strings.Index(r.stdout, "LOCKSCOPE: c.mu held")
	if order < 0 || hold < 0 || order > hold {
		t.Errorf("want the lock-order report before the long-hold one:\n%s", r.stdout)
	}
	for _, want := range []string{"(seen 3 times)", "(seen 4 times)", "Lock order a.mu -> b.mu, first taken by goroutine 7",
		"main.forget()\n          /src/c.go:5", "lockscope: 2 problems: 1 lock-order, 1 long-hold (5 reports read)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
}

// A repeat line (written at a program's end) adds its count to the report
// of its key, and is not counted as a report read.
func TestReportRepeatLinesAddToTheirReport(t *testing.T) {
	dir := t.TempDir()
	rs := sampleReports()[:2]
	rep := rs[0]
	rep.Count, rep.Repeat = 4, true
	writeReports(t, filepath.Join(dir, "r.jsonl"), append(rs, rep))
	r := lockscope(t, dir, nil, "report", "r.jsonl")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"(seen 5 times)", "lockscope: 2 problems: 1 lock-order, 1 long-hold (2 reports read)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestReportKindFilterAndJSON(t *testing.T) {
	dir := t.TempDir()
	writeReports(t, filepath.Join(dir, "r.jsonl"), sampleReports())
	r := lockscope(t, dir, nil, "report", "-kind", "long-hold,deadlock", "-json", "r.jsonl")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 1 {
		t.Fatalf("-kind long-hold,deadlock -json printed %d lines, want 1:\n%s", len(lines), r.stdout)
	}
	var got report.Report
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	if got.Kind != report.KindLongHold || got.Count != 4 || got.Key != "long-hold|c.go:5" {
		t.Errorf("grouped report = %+v, want long-hold with count 4", got)
	}

	r = lockscope(t, dir, nil, "report", "-kind", "deadlock", "r.jsonl")
	if r.code != 0 || !strings.Contains(r.stdout, "lockscope: no problems (5 reports read)") {
		t.Errorf("-kind deadlock: exit %d, want 0\n%s", r.code, r.stdout)
	}

	r = lockscope(t, dir, nil, "report", "-kind", "deadlok", "r.jsonl")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown kind "deadlok"`) || !strings.Contains(r.stderr, "lock-order") {
		t.Errorf("-kind deadlok: exit %d, want 2 and the list of kinds\n%s", r.code, r.stderr)
	}
}

func TestReportEmptyInput(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"empty.jsonl": "", "blank.jsonl": "\n  \n\n"})
	r := lockscope(t, dir, nil, "report", "empty.jsonl", "blank.jsonl")
	if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "no problems (0 reports read)") {
		t.Errorf("empty input: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestReportCorruptLines(t *testing.T) {
	dir := t.TempDir()
	reports := sampleReports()[:2]
	writeReports(t, filepath.Join(dir, "r.jsonl"), reports,
		`{"kind":"deadlock","summary":"cut short`,
		`[1,2,3]`,
		`{"kind":"bogus","summary":"x"}`,
		`{"summary":"no kind"}`,
		`{"kind":"long-wait","count":"three"}`,
		`{"kind":"long-wait","summary":"trailing"} {}`,
	)
	r := lockscope(t, dir, nil, "report", "r.jsonl", "missing.jsonl")
	if r.code != 2 {
		t.Errorf("corrupt input: exit %d, want 2", r.code)
	}
	for _, want := range []string{
		"r.jsonl:3: invalid JSON", "r.jsonl:4: not a JSON object", `r.jsonl:5: unknown kind "bogus"`,
		"r.jsonl:6: not a report: no kind", `r.jsonl:7: field "count"`, "r.jsonl:8: invalid JSON",
		"missing.jsonl does not exist",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	// The good lines are still read and printed.
	if !strings.Contains(r.stdout, "lockscope: 2 problems") {
		t.Errorf("the two good reports were not printed:\n%s", r.stdout)
	}
}

func TestReportStdin(t *testing.T) {
	var b bytes.Buffer
	rs := sampleReports()
	json.NewEncoder(&b).Encode(&rs[1])
	reports, errs, err := report.ReadLines("<stdin>", &b)
	if err != nil || len(errs) != 0 || len(reports) != 1 || reports[0].Summary != rs[1].Summary {
		t.Errorf("readReports = %v, %v, %v", reports, errs, err)
	}
}

// FuzzReportParse feeds arbitrary report files to the reader and grouper.
// Every non-blank line must be either a report or a line error, grouping
// must conserve the total count, and grouped reports must survive a JSON
// round trip unchanged.
func FuzzReportParse(f *testing.F) {
	// Seeds are small on purpose: the fuzzer minimises every input it
	// finds interesting, and minimising kilobytes of stacks stalls it.
	f.Add([]byte(`{"kind":"lock-order","summary":"a then b","count":1,"key":"k1","edges":[{"from":"a","to":"b","goroutine":7,"from_stack":[{"function":"f","file":"a.go","line":1}]}]}` + "\n"))
	f.Add([]byte(""))
	f.Add([]byte("{\"kind\":\"deadlock\",\"count\":9223372036854775807,\"key\":\"k\"}\n{\"kind\":\"deadlock\",\"count\":5,\"key\":\"k\"}\n"))
	f.Add([]byte("{\"kind\":\"long-wait\"}\r\n\n\t\n{\"kind\":\"leaked-lock\",\"goroutines\":[{\"for\":-5,\"exited\":true}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		reports, errs, err := report.ReadLines("fuzz", bytes.NewReader(data))
		if err != nil {
			t.Fatalf("reading from memory failed: %v", err)
		}
		nonBlank := 0
		for _, l := range strings.Split(string(data), "\n") {
			if len(bytes.TrimSpace([]byte(l))) > 0 {
				nonBlank++
			}
		}
		if len(reports)+len(errs) != nonBlank {
			t.Fatalf("%d reports + %d errors for %d non-blank lines", len(reports), len(errs), nonBlank)
		}
		total := 0
		for _, r := range reports {
			total = addSat(total, max(r.Count, 1))
		}
		groups := groupReports(reports)
		sum := 0
		for i := range groups {
			sum = addSat(sum, groups[i].Count)
			_ = groups[i].String()
		}
		if sum != total {
			t.Fatalf("grouping changed the total count: %d -> %d", total, sum)
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		for i := range groups {
			if err := enc.Encode(&groups[i]); err != nil {
				t.Fatal(err)
			}
		}
		again, errs, _ := report.ReadLines("again", &b)
		if len(errs) != 0 || len(again) != len(groups) {
			t.Fatalf("grouped reports do not read back: %d of %d, errors %v", len(again), len(groups), errs)
		}
		regrouped := groupReports(again)
		for i := range regrouped {
			if regrouped[i].Count != groups[i].Count || groupKey(&regrouped[i]) != groupKey(&groups[i]) {
				t.Fatalf("group %d changed on a round trip", i)
			}
		}
	})
}
