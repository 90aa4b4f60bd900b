package classgraph

import (
	"strings"
	"testing"

	"github.com/lockscope/lockscope/report"
)

func edge(from, to, program string, gates ...string) report.ClassEdge {
	return report.ClassEdge{From: from, To: to, Program: program, Gates: gates, FromLock: from, ToLock: to}
}

func TestAnInversionAcrossTwoProcessesIsReported(t *testing.T) {
	rs, _ := Cycles([]report.ClassEdge{
		edge("x.Bank.accounts", "x.Bank.ledger", "x/p.test"),
		edge("x.Bank.ledger", "x.Bank.accounts", "x/q.test"),
	})
	if len(rs) != 1 {
		t.Fatalf("reports = %v, want 1", rs)
	}
	for _, want := range []string{"x.Bank.accounts -> x.Bank.ledger in x/p.test", "x.Bank.ledger -> x.Bank.accounts in x/q.test"} {
		if !strings.Contains(rs[0].Summary, want) {
			t.Errorf("summary %q lacks %q", rs[0].Summary, want)
		}
	}
	if err := rs[0].Validate(); err != nil {
		t.Error(err)
	}
}

func TestCyclesTheMergeLeavesAlone(t *testing.T) {
	for name, edges := range map[string][]report.ClassEdge{
		"one process saw it whole": {edge(a, b, "p"), edge(b, a, "p")},
		"a common gate":            {edge(a, b, "p", "g"), edge(b, a, "q", "g")},
		"one order everywhere":     {edge(a, b, "p"), edge(a, b, "q")},
		"a self-edge":              {edge(a, a, "p"), edge(a, a, "q")},
		"through a read": {edge(a, b, "p"),
			{From: b, To: a, Program: "q", ToMode: report.Read}},
		"classes of two types": {edge("x.Cache.mu", "x.Entry.mu", "p"), edge("x.Entry.mu", "x.Cache.mu", "q")},
	} {
		if rs, _ := Cycles(edges); len(rs) != 0 {
			t.Errorf("%s: reports = %v, want none", name, rs)
		}
	}
}

// Classes of one struct type, x.T.
const a, b, c = "x.T.a", "x.T.b", "x.T.c"

func TestALongerCopyIsNotReportedAgain(t *testing.T) {
	rs, _ := Cycles([]report.ClassEdge{
		edge(a, b, "p"), edge(b, a, "q"),
		edge(b, c, "q"), edge(c, a, "r"),
	})
	if len(rs) != 1 {
		t.Fatalf("reports = %d, want the 2-cycle only: %v", len(rs), rs)
	}
}

func TestVersionsAreListed(t *testing.T) {
	e1, e2 := edge(a, b, "p"), edge(b, a, "q")
	e1.Version, e2.Version = "v1.0.0", "v1.1.0"
	if _, vs := Cycles([]report.ClassEdge{e1, e2}); len(vs) != 2 {
		t.Fatalf("versions = %v, want both", vs)
	}
}
