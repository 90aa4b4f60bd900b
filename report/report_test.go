package report

import (
	"strings"
	"testing"
)

func TestLocksOfTwoPackagesAreNamedWithTheirClasses(t *testing.T) {
	r := Report{Kind: KindLockOrder, Summary: "s", Locks: []LockRef{
		{ID: 2, Name: "store.mu", Type: "Mutex", Class: "example.com/store.mu"},
		{ID: 3, Name: "service.accounts", Type: "Mutex", Class: "example.com/service.accounts"},
	}}
	text := r.String()
	for _, want := range []string{"  store.mu (Mutex #2, class example.com/store.mu)\n", "  service.accounts (Mutex #3, class example.com/service.accounts)\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	// One package: the names say it all.
	r.Locks[1].Class = "example.com/store.DB.mu"
	r.Locks[1].Name = "DB.mu"
	text = r.String()
	if strings.Contains(text, "class ") || !strings.Contains(text, "  DB.mu (Mutex #3)\n") {
		t.Errorf("locks of one package named with their classes:\n%s", text)
	}
}

func TestClassPackage(t *testing.T) {
	for class, want := range map[string]string{
		"example.com/store.DB.mu": "example.com/store",
		"main.mu":                 "main",
		"":                        "",
		"example.com/x/y.T.f[]":   "example.com/x/y",
	} {
		if got := ClassPackage(class); got != want {
			t.Errorf("ClassPackage(%q) = %q, want %q", class, got, want)
		}
	}
}

func TestClassGrammar(t *testing.T) {
	for _, tc := range []struct {
		class, owner  string
		pkgVar, local bool
	}{
		{"example.com/bank.mu", "", true, false},
		{"example.com/bank.Bank.accounts", "example.com/bank.Bank", false, false},
		{"example.com/bank.Bank.shards[].mu", "example.com/bank.Bank", false, false},
		{"example.com/bank.locks[]", "", false, false},
		{"example.com/bank.TestX.mu@12", "", false, true},
		{"example.com/bank.(*DB).m.mu@7", "", false, true},
		{"example.com/bank.mu@3", "", false, true},
		{"my class", "", false, false},
	} {
		if got := ClassOwner(tc.class); got != tc.owner {
			t.Errorf("ClassOwner(%q) = %q, want %q", tc.class, got, tc.owner)
		}
		if got := IsPackageVarClass(tc.class); got != tc.pkgVar {
			t.Errorf("IsPackageVarClass(%q) = %v", tc.class, got)
		}
		if got := IsLocalClass(tc.class); got != tc.local {
			t.Errorf("IsLocalClass(%q) = %v", tc.class, got)
		}
	}
}

func TestASiteOnlyStackGetsTheFramesBelowItFromTheGoroutinesOtherStack(t *testing.T) {
	f := func(fn string, line int) Frame { return Frame{Function: fn, File: "/src/bank.go", Line: line} }
	r := Report{
		Edges: []Edge{{
			From: "Bank.accounts", To: "Bank.ledger", Goroutine: 7,
			FromStack: []Frame{f("bank.(*Bank).Transfer", 10)}, FromSiteOnly: true,
			ToStack: []Frame{f("bank.(*Bank).post", 30), f("bank.(*Bank).Transfer", 12), f("main.handle", 50), f("main.main", 60)},
		}},
		Goroutines: []GoroutineRef{
			{ID: 8, Role: "holds", Lock: "Bank.ledger", Stack: []Frame{f("bank.(*Bank).Audit", 40)}, SiteOnly: true},
			{ID: 8, Role: "waits for write lock", Lock: "Bank.accounts", Stack: []Frame{f("sync.(*Mutex).Lock", 1), f("bank.(*Bank).Audit", 42), f("main.audit", 70)}},
			{ID: 9, Role: "holds", Lock: "x.mu", Stack: []Frame{f("x.F", 5)}, SiteOnly: true}, // no other stack of 9
		},
	}
	r.CompleteSiteOnly()
	e := r.Edges[0]
	if len(e.FromStack) != 3 || e.FromStack[0].Line != 10 || e.FromStack[1].Function != "main.handle" || e.FromBelow == "" {
		t.Errorf("edge's from stack %v (below %q): want Transfer:10, then main.handle and main.main", e.FromStack, e.FromBelow)
	}
	if g := r.Goroutines[0]; len(g.Stack) != 2 || g.Stack[1].Function != "main.audit" || !strings.Contains(g.Below, "its wait for Bank.accounts") {
		t.Errorf("holder's stack %v (below %q): want Audit:40 then main.audit", g.Stack, g.Below)
	}
	if g := r.Goroutines[2]; len(g.Stack) != 1 || g.Below != "" {
		t.Errorf("a site with no other stack changed: %v %q", g.Stack, g.Below)
	}
	text := r.String()
	if !strings.Contains(text, "(the acquire site, then the frames below it in the stack where it then took Bank.ledger: this hold was not sampled") ||
		!strings.Contains(text, "(the acquire site only: this hold was not sampled") {
		t.Errorf("notes:\n%s", text)
	}
}
