package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// buggy is a module with two classic lock bugs and no idea of lockscope:
// an AB-BA lock-order inversion (Refresh takes cache then db, Flush takes
// db then cache: run concurrently they can deadlock, run one after the
// other they do not, and plain go test passes) and an Unlock forgotten on
// an early return.
var buggy = map[string]string{
	"go.mod": "module example.com/buggy\n\ngo 1.22\n",
	"store.go": `package buggy

import "sync"

var (
	cacheMu sync.Mutex
	dbMu    sync.Mutex
	cache   = map[string]int{}
	db      = map[string]int{}
)

// Refresh copies db into the cache: cache, then db.
func Refresh() {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	dbMu.Lock()
	defer dbMu.Unlock()
	for k, v := range db {
		cache[k] = v
	}
}

// Flush writes the cache to db: db, then cache. The other order.
func Flush() {
	dbMu.Lock()
	defer dbMu.Unlock()
	cacheMu.Lock()
	defer cacheMu.Unlock()
	for k, v := range cache {
		db[k] = v
	}
}

// Account has a balance guarded by mu.
type Account struct {
	mu      sync.Mutex
	balance int
}

// Audit reports whether the balance is sane, and forgets to unlock when
// it is not.
func (a *Account) Audit() bool {
	a.mu.Lock()
	if a.balance < 0 {
		return false
	}
	a.mu.Unlock()
	return true
}
`,
	"store_test.go": `package buggy

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestRefreshThenFlush(t *testing.T) {
	Refresh()
	Flush()
}

func TestAudit(t *testing.T) {
	a := &Account{balance: -1}
	done := make(chan bool)
	go func() { done <- a.Audit() }()
	if <-done {
		t.Error("negative balance passed the audit")
	}
	// The program carries on with a lock nobody can release. When it runs
	// under lockscope with a report file, stay alive until the report is
	// written (the watchdog makes it once the hold threshold has passed).
	path := os.Getenv("LOCKSCOPE_REPORT_FILE")
	for deadline := time.Now().Add(20 * time.Second); path != "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if data, _ := os.ReadFile(path); strings.Contains(string(data), "leaked-lock") {
			return
		}
	}
}
`,
}

func TestTestFindsInversionAndForgottenUnlock(t *testing.T) {
	mod := t.TempDir()
	writeTree(t, mod, buggy)
	before := snapshot(t, mod)
	reports := filepath.Join(t.TempDir(), "reports.jsonl")
	// A report from an earlier run is already in the file: lockscope test
	// must summarise only this run's.
	old := `{"kind":"long-wait","summary":"from an earlier run","key":"old"}` + "\n"
	if err := os.WriteFile(reports, []byte(old), 0o666); err != nil {
		t.Fatal(err)
	}
	env := []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot, "LOCKSCOPE_HOLD_THRESHOLD=100ms", "LOCKSCOPE_REPORT_FILE=" + reports}

	r := lockscope(t, mod, env, "test", "-count=1", "./...")
	out := r.stdout + r.stderr
	// The tests pass: the bugs did not bite in this run. lockscope finds them anyway.
	if r.code != 0 {
		t.Fatalf("lockscope test: exit %d\n%s", r.code, out)
	}
	for _, want := range []string{"LOCKSCOPE: potential deadlock: lock-order inversion", "LOCKSCOPE: Mutex ", "that goroutine has exited without unlocking it",
		"buggy.Refresh", "buggy.Flush", "buggy.(*Account).Audit"} {
		if !strings.Contains(out, want) {
			t.Errorf("lockscope test output lacks %q:\n%s", want, out)
		}
	}
	// go test hides the output of passing packages; lockscope prints the
	// reports again at the end.
	if !strings.Contains(r.stderr, "lockscope: the tests reported these lock problems:") || !strings.Contains(r.stderr, "lockscope: 2 problems: 1 lock-order, 1 leaked-lock (2 reports read)") {
		t.Errorf("no end-of-run summary of this run's two problems:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "from an earlier run") {
		t.Errorf("the summary includes a report from an earlier run:\n%s", r.stderr)
	}
	sameTree(t, before, snapshot(t, mod))

	// The same reports, from the file, through lockscope report.
	r = lockscope(t, mod, nil, "report", reports)
	if r.code != 1 {
		t.Errorf("lockscope report: exit %d, want 1 (problems found)\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "lockscope: 3 problems: 1 lock-order, 1 long-wait, 1 leaked-lock (3 reports read)") {
		t.Errorf("lockscope report does not summarise both bugs:\n%s", r.stdout)
	}
	r = lockscope(t, mod, nil, "report", "-kind", "lock-order", reports)
	if r.code != 1 || strings.Contains(r.stdout, "leaked-lock") {
		t.Errorf("lockscope report -kind lock-order: exit %d\n%s", r.code, r.stdout)
	}
}

func TestBuildFailureIsSaid(t *testing.T) {
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{
		"go.mod":       "module example.com/broken\n\ngo 1.22\n",
		"a.go":         "package a\n\nimport \"sync\"\n\nvar Mu sync.Mutex\n",
		"a_test.go":    "package a\n\nimport \"testing\"\n\nfunc TestX(t *testing.T) { undefined() }\n",
		"ok/b.go":      "package ok\n",
		"ok/b_test.go": "package ok\n\nimport \"testing\"\n\nfunc TestY(t *testing.T) {}\n",
	})
	env := []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot}
	r := lockscope(t, mod, env, "test", "-count=1", "./...")
	if r.code == 0 {
		t.Fatalf("lockscope test of a package that does not build: exit 0\n%s%s", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "lockscope: the build failed: 1 package did not build, so its tests did not run") {
		t.Errorf("the build failure is not said:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "lockscope: no lock problems reported\n") {
		t.Errorf("a failed build is summed up as no lock problems:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "lockscope: go test: building and testing with debugmutex") {
		t.Errorf("no line says what lockscope test is doing while it builds:\n%s", r.stderr)
	}
}

func TestReportFileOfACleanRun(t *testing.T) {
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{
		"go.mod":    "module example.com/clean\n\ngo 1.22\n",
		"a.go":      "package a\n\nimport \"sync\"\n\nvar Mu sync.Mutex\n",
		"a_test.go": "package a\n\nimport \"testing\"\n\nfunc TestX(t *testing.T) { Mu.Lock(); Mu.Unlock() }\n",
	})
	file := filepath.Join(t.TempDir(), "reports.jsonl")
	env := []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot, "LOCKSCOPE_REPORT_FILE=" + file}
	// The CI idiom: lockscope test ... && lockscope report FILE.
	r := lockscope(t, mod, env, "test", "-count=1", "./...")
	if r.code != 0 || !strings.Contains(r.stderr, "lockscope: no lock problems reported\n") {
		t.Fatalf("lockscope test of a clean module: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = lockscope(t, mod, nil, "report", file)
	if r.code != 0 || !strings.Contains(r.stdout, "lockscope: no problems (0 reports read)") {
		t.Errorf("lockscope report on a clean run's file: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A file no run wrote is not a clean run.
	missing := filepath.Join(t.TempDir(), "never.jsonl")
	r = lockscope(t, mod, nil, "report", missing)
	if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "never.jsonl does not exist") {
		t.Errorf("lockscope report on a missing file: exit %d, want 2 and no summary\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("lockscope report created the file it was asked to read")
	}
}

func TestInversionAcrossTestBinariesIsReported(t *testing.T) {
	mod := t.TempDir()
	bank := `package bank

import "sync"

type Bank struct{ accounts, ledger sync.Mutex }

func (b *Bank) Deposit() {
	b.accounts.Lock()
	b.ledger.Lock()
	b.ledger.Unlock()
	b.accounts.Unlock()
}

func (b *Bank) Audit() {
	b.ledger.Lock()
	b.accounts.Lock()
	b.accounts.Unlock()
	b.ledger.Unlock()
}

// Package variables: one lock each, in every process.
var rates, fees sync.Mutex

func Reprice() {
	rates.Lock()
	fees.Lock()
	fees.Unlock()
	rates.Unlock()
}

func Refund() {
	fees.Lock()
	rates.Lock()
	rates.Unlock()
	fees.Unlock()
}
`
	writeTree(t, mod, map[string]string{
		"go.mod":      "module example.com/bank\n\ngo 1.22\n",
		"bank.go":     bank,
		"p/p_test.go": "package p\n\nimport (\n\t\"testing\"\n\n\t\"example.com/bank\"\n)\n\nfunc TestDeposit(t *testing.T) { new(bank.Bank).Deposit(); bank.Reprice() }\n",
		"q/q_test.go": "package q\n\nimport (\n\t\"testing\"\n\n\t\"example.com/bank\"\n)\n\nfunc TestAudit(t *testing.T) { new(bank.Bank).Audit(); bank.Refund() }\n",
		"p/doc.go":    "package p\n",
		"q/doc.go":    "package q\n",
	})
	file := filepath.Join(t.TempDir(), "reports.jsonl")
	env := []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot, "LOCKSCOPE_REPORT_FILE=" + file}
	r := lockscope(t, mod, env, "test", "-count=1", "./...")
	want := "lock-order inversion between lock classes"
	if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "example.com/bank/p.test") || !strings.Contains(r.stderr, "example.com/bank/q.test") {
		t.Fatalf("lockscope test: exit %d; want a class inversion naming both test binaries\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The package variables too (lockscope test names them with SetName
	// before their first use: their classes come from their first sites).
	for _, class := range []string{"example.com/bank.Bank.accounts", "example.com/bank.rates", "example.com/bank.fees"} {
		if !strings.Contains(r.stderr, class) {
			t.Errorf("no class inversion names %s:\n%s", class, r.stderr)
		}
	}
	r = lockscope(t, mod, nil, "report", file)
	if r.code != 1 || !strings.Contains(r.stdout, want) {
		t.Errorf("lockscope report: exit %d, want 1 and the class inversion\n%s%s", r.code, r.stdout, r.stderr)
	}
}
