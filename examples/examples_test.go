// The examples are programs; these tests build each one once, run it the
// way its top comment says, and check what it printed and what lockscope
// reported (on stderr, and as JSON lines in LOCKSCOPE_REPORT_FILE), so
// that the examples never rot. When the tests run under -race, the
// examples are built with -race too.
package examples_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// examples lists every example; TestEveryExampleIsTested checks it
// against the folders.
var examples = []string{"abba", "bank", "copied", "heldrecv", "hitcounter", "increment", "message", "registry", "rwr", "service", "trylivelock", "trylock"}

// proofExamples are built, in addition, with Go's goroutine leak profile
// (GOEXPERIMENT=goroutineleakprofile where the toolchain needs it): their
// verdicts are the runtime's proof (debugmutex/leakproof.go).
var proofExamples = []string{"heldrecv"}

// runTimeout bounds one run of an example. The examples take well under a
// second or two; this is for a machine under heavy load.
const runTimeout = 2 * time.Minute

var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lockscope-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary returns the path of the built example name, building every
// example the first time (one go build for all of them). The race
// variant is name built with -race.
func binary(t *testing.T, name string, race bool) string {
	t.Helper()
	buildOnce.Do(func() {
		pkgs := make([]string, len(examples))
		for i, e := range examples {
			pkgs[i] = "./" + e
		}
		args := []string{"build", "-o", binDir + string(filepath.Separator)}
		if raceEnabled {
			args = append(args, "-race")
		}
		if buildErr = goCmd(append(args, pkgs...)...); buildErr != nil {
			return
		}
		// bank's racy variant is shown with -race whatever the tests run with.
		if buildErr = goCmd("build", "-race", "-o", filepath.Join(binDir, "race", "bank"), "./bank"); buildErr != nil {
			return
		}
		args = []string{"build", "-o", filepath.Join(binDir, "proof") + string(filepath.Separator)}
		if raceEnabled {
			args = append(args, "-race")
		}
		for _, e := range proofExamples {
			args = append(args, "./"+e)
		}
		buildErr = goCmdEnv(proofBuildEnv(), args...)
	})
	if buildErr != nil {
		t.Fatalf("building the examples: %v", buildErr)
	}
	if race && !raceEnabled {
		return filepath.Join(binDir, "race", name)
	}
	return filepath.Join(binDir, name)
}

// proofBinary returns the path of example name built with the goroutine
// leak profile.
func proofBinary(t *testing.T, name string) string {
	t.Helper()
	binary(t, name, false)
	return filepath.Join(binDir, "proof", name)
}

// proofBuildEnv is the environment that gives a build the goroutine leak
// profile: nothing on Go 1.27 (where the experiment's name is unknown) or
// where the tests themselves were built with it.
func proofBuildEnv() []string {
	if proofBuilt {
		return nil
	}
	exp := os.Getenv("GOEXPERIMENT")
	if exp != "" {
		exp += ","
	}
	return []string{"GOEXPERIMENT=" + exp + "goroutineleakprofile"}
}

func goCmd(args ...string) error { return goCmdEnv(nil, args...) }

func goCmdEnv(env []string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// result is what one run of an example did.
type result struct {
	stdout, stderr string
	code           int
	reports        []report.Report // from LOCKSCOPE_REPORT_FILE
}

// run runs the example with args, its reports going to a fresh
// LOCKSCOPE_REPORT_FILE, in an environment without the caller's
// LOCKSCOPE_* and OTEL_* settings plus env.
func run(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	reportFile := filepath.Join(t.TempDir(), "reports.jsonl")
	cmd := exec.CommandContext(ctx, bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LOCKSCOPE") && !strings.HasPrefix(kv, "OTEL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, inspect.EnvReportFile+"="+reportFile)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %v did not finish within %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), args, runTimeout, r.stdout, r.stderr)
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	b, err := os.ReadFile(reportFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var rep report.Report
		if err := json.Unmarshal(sc.Bytes(), &rep); err != nil {
			t.Fatalf("report file line %q: %v", sc.Text(), err)
		}
		r.reports = append(r.reports, rep)
	}
	t.Logf("%s %v: exit %d\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), args, r.code, r.stdout, r.stderr)
	return r
}

// wantExit fails unless the run exited with code.
func (r result) wantExit(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d", r.code, code)
	}
}

// wantSilent fails if lockscope reported anything.
func (r result) wantSilent(t *testing.T) {
	t.Helper()
	if len(r.reports) != 0 {
		t.Errorf("%d reports in LOCKSCOPE_REPORT_FILE, want none; first: %s", len(r.reports), r.reports[0].Summary)
	}
	if strings.Contains(r.stderr, "LOCKSCOPE:") {
		t.Errorf("stderr has a lockscope report, want none")
	}
	if !strings.Contains(r.stdout, "reports: 0\n") {
		t.Errorf("stdout lacks %q", "reports: 0")
	}
}

// wantStdout fails unless stdout contains each of subs.
func (r result) wantStdout(t *testing.T, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q", s)
		}
	}
}

// ofKind returns the reports of kind k.
func (r result) ofKind(k report.Kind) []report.Report {
	var out []report.Report
	for _, rep := range r.reports {
		if rep.Kind == k {
			out = append(out, rep)
		}
	}
	return out
}

// wantOnStderr fails unless every report in the file was also printed.
func (r result) wantOnStderr(t *testing.T) {
	t.Helper()
	for _, rep := range r.reports {
		if !strings.Contains(r.stderr, "LOCKSCOPE: "+rep.Summary+"\n") {
			t.Errorf("report %q is in the file but not on stderr", rep.Summary)
		}
	}
}

// match returns the submatches of re in s, failing if there are none.
func match(t *testing.T, re, s string) []string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no match for %q in:\n%s", re, s)
	}
	return m
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func duration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// lineOf returns the line number of the first line of example name's
// main.go, after the line containing after, that contains text.
func lineOf(t *testing.T, name, after, text string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(name, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	seen := after == ""
	for i, l := range strings.Split(string(b), "\n") {
		if !seen {
			seen = strings.Contains(l, after)
			continue
		}
		if strings.Contains(l, text) {
			return i + 1
		}
	}
	t.Fatalf("%s/main.go has no %q after %q", name, text, after)
	return 0
}

// frameAt fails unless f is function fn at line in example name's main.go.
func frameAt(t *testing.T, what string, stack []report.Frame, name, fn string, line int) {
	t.Helper()
	if len(stack) == 0 {
		t.Errorf("%s: no stack", what)
		return
	}
	f := stack[0]
	if f.Function != fn || !strings.HasSuffix(filepath.ToSlash(f.File), name+"/main.go") || f.Line != line {
		t.Errorf("%s at %s (%s:%d), want %s (%s/main.go:%d)", what, f.Function, f.File, f.Line, fn, name, line)
	}
}

func TestEveryExampleIsTested(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	if !slices.Equal(dirs, examples) {
		t.Errorf("example folders %v, tested %v", dirs, examples)
	}
	self, err := os.ReadFile("examples_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range dirs {
		if !strings.Contains(string(self), "binary(t, "+strconv.Quote(name)+", ") && !strings.Contains(string(self), "proofBinary(t, "+strconv.Quote(name)+")") {
			t.Errorf("no test runs example %s", name)
		}
		b, err := os.ReadFile(filepath.Join(name, "main.go"))
		if err != nil {
			t.Error(err)
			continue
		}
		src := string(b)
		if !strings.HasPrefix(src, "// Command "+name+" ") {
			t.Errorf("%s/main.go does not start with a comment saying what it shows (// Command %s ...)", name, name)
		}
		if !strings.Contains(src, "//\tgo run ./examples/"+name+"\n") {
			t.Errorf("%s/main.go's comment does not give the command to run it (go run ./examples/%s)", name, name)
		}
		if !strings.Contains(src, `sync "github.com/lockscope/lockscope/debugmutex"`) {
			t.Errorf("%s/main.go does not import debugmutex as sync", name)
		}
	}
}

func TestIncrement(t *testing.T) {
	r := run(t, binary(t, "increment", false), nil)
	r.wantExit(t, 0)
	r.wantSilent(t)
	r.wantStdout(t, "count: 10000 (want 10000)\n")
	// 10000 increments and one read, every hold timed (SamplingPeriod(1)).
	m := match(t, `Counter\.mu: (\d+) acquisitions, held \S+ in total, (\d+) contentions, waited (\S+) in total`, r.stdout)
	if n := atoi(t, m[1]); n != 10001 {
		t.Errorf("Counter.mu acquisitions %d, want 10001", n)
	}
	// Every hundredth increment sleeps with the lock held while nine other
	// goroutines want it: some of them must have waited.
	if n := atoi(t, m[2]); n == 0 {
		t.Error("no contention recorded on Counter.mu")
	}
	m = match(t, `waits for Counter\.mu by call site, worst first:\n\s+(\S+) \(main\.go:(\d+)\)\s+(\d+) waits`, r.stdout)
	if m[1] != "main.(*Counter).Inc" || atoi(t, m[2]) != int64(lineOf(t, "increment", "func (c *Counter) Inc()", "c.mu.Lock()")) {
		t.Errorf("worst waiting site %s at line %s, want main.(*Counter).Inc at its c.mu.Lock()", m[1], m[2])
	}
}

func TestMessage(t *testing.T) {
	r := run(t, binary(t, "message", false), nil)
	r.wantExit(t, 0)
	r.wantSilent(t)
	m := match(t, `message: (.*)\n`, r.stdout)
	if m[1] != "Hello, universe!" && m[1] != "Hello, cosmos!" {
		t.Errorf("message %q, want one of the goroutines' messages", m[1])
	}
	// Three acquisitions; short holds are timed on a sample, so the count
	// is an estimate (exact with SamplingPeriod(1), as in increment).
	match(t, `msg\.mu: \d+ acquisitions, \d+ contentions\n`, r.stdout)
}

func TestBankRacyIsFoundByTheRaceDetector(t *testing.T) {
	r := run(t, binary(t, "bank", true), nil, "-racy")
	r.wantExit(t, 66) // the race detector's exit status
	if !strings.Contains(r.stderr, "WARNING: DATA RACE") || !strings.Contains(r.stderr, "main.depositRacy") {
		t.Error("the race detector did not report the race in depositRacy")
	}
	r.wantSilent(t) // a data race is not a lock problem
}

func TestBankFixedIsRaceFreeAndShowsHoldTimes(t *testing.T) {
	r := run(t, binary(t, "bank", true), nil)
	r.wantExit(t, 0)
	if strings.Contains(r.stderr, "DATA RACE") {
		t.Error("the fixed bank has a data race")
	}
	r.wantSilent(t)
	r.wantStdout(t, "final balance: $34320.00 (want $34320.00)\n")
	m := match(t, `main\.deposit \(main\.go:(\d+)\)\s+(\d+) holds, (\S+) in total`, r.stdout)
	if line := lineOf(t, "bank", "func deposit(", "balanceMu.Lock()"); atoi(t, m[1]) != int64(line) {
		t.Errorf("holds at line %s, want deposit's Lock at line %d", m[1], line)
	}
	if atoi(t, m[2]) != 4*52 {
		t.Errorf("%s holds, want one per deposit (208)", m[2])
	}
	// Each hold sleeps at least 100µs.
	if held := duration(t, m[3]); held < 208*100*time.Microsecond-time.Millisecond {
		t.Errorf("held %v in total, want at least 208 x 100µs", held)
	}
	r.wantStdout(t, "balanceMu: 208 acquisitions")
}

func TestHitCounterReportsTheLeakedLock(t *testing.T) {
	r := run(t, binary(t, "hitcounter", false), nil)
	r.wantExit(t, 0)
	r.wantOnStderr(t)
	r.wantStdout(t, "GET about     -> 400 page must start with /\n", "GET /         -> (stuck)\n",
		"lockscope found a leaked-lock problem")
	leaked := r.ofKind(report.KindLeakedLock)
	if len(leaked) != 1 || len(r.reports) != 1 {
		t.Fatalf("reports %v, want exactly one leaked-lock", kinds(r.reports))
	}
	rep := leaked[0]
	if len(rep.Locks) != 1 || rep.Locks[0].Name != "HitCounter" || rep.Locks[0].Type != "Mutex" {
		t.Errorf("locks %+v, want the Mutex HitCounter", rep.Locks)
	}
	if len(rep.Goroutines) != 1 || !rep.Goroutines[0].Exited {
		t.Fatalf("goroutines %+v, want the one that exited holding the lock", rep.Goroutines)
	}
	g := rep.Goroutines[0]
	frameAt(t, "acquired", g.Stack, "hitcounter", "main.(*HitCounter).Hit",
		lineOf(t, "hitcounter", "func (c *HitCounter) Hit(", "c.Lock()"))
	if !strings.Contains(r.stderr, fmt.Sprintf("Goroutine %d acquired HitCounter", g.ID)) {
		t.Error("stderr does not name the holder")
	}
}

func TestHitCounterFixedIsSilent(t *testing.T) {
	r := run(t, binary(t, "hitcounter", false), nil, "-fixed")
	r.wantExit(t, 0)
	r.wantSilent(t)
	r.wantStdout(t, "GET /contact  -> 200\n", "hits: map[/:2 /about:1 /contact:1]\n")
}

func TestRegistryReportsTheDeadlock(t *testing.T) {
	r := run(t, binary(t, "registry", false), nil)
	r.wantExit(t, 0)
	r.wantOnStderr(t)
	r.wantStdout(t, "deregister billing  -> error: billing: not registered\n", "-> no reply\n", "lockscope found a deadlock")
	dl := r.ofKind(report.KindDeadlock)
	if len(dl) != 1 {
		t.Fatalf("reports %v, want one deadlock", kinds(r.reports))
	}
	// Both goroutines, each holding one lock and waiting for the other.
	holds, waits := map[string]report.GoroutineRef{}, map[string]report.GoroutineRef{}
	for _, g := range dl[0].Goroutines {
		switch {
		case g.Role == "holds":
			holds[g.Lock] = g
		case strings.HasPrefix(g.Role, "waits for"):
			waits[g.Lock] = g
		}
	}
	const reg, svc = "Registry.mu", "Service[api].mu"
	if len(holds) != 2 || len(waits) != 2 || holds[reg].ID == 0 || holds[svc].ID == 0 ||
		holds[reg].ID == holds[svc].ID || waits[svc].ID != holds[reg].ID || waits[reg].ID != holds[svc].ID {
		t.Fatalf("deadlock goroutines %+v, want two, each holding one of %s and %s and waiting for the other", dl[0].Goroutines, reg, svc)
	}
	frameAt(t, "Registry.mu holder", holds[reg].Stack, "registry", "main.(*Registry).Deregister",
		lineOf(t, "registry", "func (r *Registry) Deregister(", "r.mu.Lock()"))
	frameAt(t, "Service[api].mu holder", holds[svc].Stack, "registry", "main.(*Registry).SetHealth",
		lineOf(t, "registry", "func (r *Registry) SetHealth(", "s.mu.Lock()"))
	frameAt(t, "Service[api].mu waiter", waits[svc].Stack, "registry", "main.(*Service).Serve",
		lineOf(t, "registry", "func (s *Service) Serve(", "s.mu.Lock()"))
	// The two orders were taken, so the inversion is reported as well.
	if len(r.ofKind(report.KindLockOrder)) != 1 {
		t.Errorf("reports %v, want a lock-order report too", kinds(r.reports))
	}
}

func TestRegistryFixedIsSilent(t *testing.T) {
	r := run(t, binary(t, "registry", false), nil, "-fixed")
	r.wantExit(t, 0)
	r.wantSilent(t)
	r.wantStdout(t, "check      api      -> api marked unhealthy", "healthy services: 1 of 2\n")
}

func TestTryLockFailuresPointAtTheHotSite(t *testing.T) {
	r := run(t, binary(t, "trylock", false), nil)
	r.wantExit(t, 0)
	r.wantSilent(t) // TryLock with back-off is correct
	r.wantStdout(t, "jobs done: 1000 of 1000")
	m := match(t, `TryLock failures on Queue\.mu by call site, worst first:\n((?:\s+\d+\s+\S+ \(main\.go:\d+\)\n)+)`, r.stdout)
	rows := regexp.MustCompile(`(\d+)\s+(\S+) \(main\.go:(\d+)\)`).FindAllStringSubmatch(m[1], -1)
	if rows[0][2] != "main.worker" || atoi(t, rows[0][3]) != int64(lineOf(t, "trylock", "func worker(", "q.mu.TryLock()")) {
		t.Errorf("worst TryLock site %s at line %s, want main.worker's TryLock", rows[0][2], rows[0][3])
	}
	var sum int64
	for _, row := range rows {
		sum += atoi(t, row[1])
	}
	total := atoi(t, match(t, `Queue\.mu: (\d+) TryLock failures in all`, r.stdout)[1])
	if total == 0 || total != sum {
		t.Errorf("%d TryLock failures in all, sites add up to %d", total, sum)
	}
	skipped := atoi(t, match(t, `metrics: \d+ samples, (\d+) ticks skipped`, r.stdout)[1])
	if skipped > 0 && !strings.Contains(m[1], "main.reportMetrics") {
		t.Errorf("the metrics reporter failed %d TryLocks, not listed", skipped)
	}
}

func TestCopiedLockIsReportedBeforeTheSnapshotHangs(t *testing.T) {
	r := run(t, binary(t, "copied", false), nil)
	r.wantExit(t, 1)
	r.wantStdout(t, "snapshot.Count is stuck")
	r.wantOnStderr(t)
	cs := r.ofKind(report.KindCopiedLock)
	// Where Go's goroutine leak profile is on (Go 1.27), the runtime also
	// proves the copy's locker blocked forever: a deadlock of that
	// goroutine on that lock, and nothing else.
	if len(cs) != 1 || len(r.reports) != 1+len(r.ofKind(report.KindDeadlock)) {
		t.Fatalf("reports %v, want one copied-lock (and a proven deadlock at most)", kinds(r.reports))
	}
	c := cs[0]
	for _, d := range r.ofKind(report.KindDeadlock) {
		if !strings.Contains(d.Summary, "Registry.mu") || len(c.Goroutines) == 0 ||
			!strings.Contains(d.Summary, fmt.Sprintf("goroutine %d ", c.Goroutines[0].ID)) {
			t.Errorf("deadlock %q is not the copy's locker on Registry.mu", d.Summary)
		}
	}
	if !strings.Contains(c.Summary, "Lock of Mutex Registry.mu") || !strings.Contains(c.Summary, "nobody will unlock it") {
		t.Errorf("summary %q", c.Summary)
	}
	var locker, holder bool
	for _, g := range c.Goroutines {
		switch {
		case strings.HasPrefix(g.Role, "locks the copy"):
			locker = len(g.Stack) > 0 && g.Stack[0].Function == "main.(*Registry).Count" &&
				g.Stack[0].Line == lineOf(t, "copied", "func (r *Registry) Count(", "r.mu.Lock()")
		case strings.HasPrefix(g.Role, "held the original"):
			holder = true
		}
	}
	if !locker || !holder {
		t.Errorf("goroutines %+v: want the copy's locker at Count's Lock and the original's holder", c.Goroutines)
	}
}

func TestABBAReportsBothOrders(t *testing.T) {
	r := run(t, binary(t, "abba", false), nil)
	r.wantExit(t, 0)
	r.wantOnStderr(t)
	if len(r.reports) != 1 || r.reports[0].Kind != report.KindLockOrder {
		t.Fatalf("reports %v, want exactly one lock-order (nothing deadlocked)", kinds(r.reports))
	}
	rep := r.reports[0]
	want := map[string]string{ // order -> function that took it
		"Orders.mu -> Inventory.mu": "main.(*Shop).PlaceOrder",
		"Inventory.mu -> Orders.mu": "main.(*Shop).Restock",
	}
	if len(rep.Edges) != 2 {
		t.Fatalf("%d edges, want 2", len(rep.Edges))
	}
	for _, e := range rep.Edges {
		fn, ok := want[e.From+" -> "+e.To]
		if !ok {
			t.Errorf("edge %s -> %s, want one of %v", e.From, e.To, want)
			continue
		}
		delete(want, e.From+" -> "+e.To)
		for _, s := range [][]report.Frame{e.FromStack, e.ToStack} {
			if len(s) == 0 || s[0].Function != fn {
				t.Errorf("edge %s -> %s taken at %v, want in %s", e.From, e.To, s, fn)
			}
		}
	}
	r.wantStdout(t, "restock 10 apples: orders filled: 4\n", "reports: 1\n")
}

func TestABBAFixedIsSilent(t *testing.T) {
	r := run(t, binary(t, "abba", false), nil, "-fixed")
	r.wantExit(t, 0)
	r.wantSilent(t)
	r.wantStdout(t, "restock 10 apples: orders filled: 4\n")
}

func TestRWRReportsTheRecursiveRead(t *testing.T) {
	r := run(t, binary(t, "rwr", false), nil)
	r.wantExit(t, 0)
	r.wantOnStderr(t)
	rr := r.ofKind(report.KindRecursiveRead)
	if len(rr) != 1 || r.reports[0].Kind != report.KindRecursiveRead {
		t.Fatalf("reports %v, want the recursive read first", kinds(r.reports))
	}
	var again, first []report.Frame
	for _, g := range rr[0].Goroutines {
		if g.ID != rr[0].Goroutines[0].ID {
			t.Errorf("goroutines %+v, want one", rr[0].Goroutines)
		}
		if strings.Contains(g.Role, "again") {
			again = g.Stack
		} else {
			first = g.Stack
		}
	}
	frameAt(t, "second RLock", again, "rwr", "main.(*Config).Get", lineOf(t, "rwr", "func (c *Config) Get(", "c.mu.RLock()"))
	frameAt(t, "first RLock", first, "rwr", "main.(*Config).Describe", lineOf(t, "rwr", "func (c *Config) Describe(", "c.mu.RLock()"))

	// Whether the writer queued between the two RLocks in this run is up
	// to the scheduler; if it did, that is a deadlock, and it is reported.
	dl := r.ofKind(report.KindDeadlock)
	if len(dl)+len(rr) != len(r.reports) || len(dl) > 1 {
		t.Errorf("reports %v, want a recursive-read and at most one deadlock", kinds(r.reports))
	}
	if deadlocked := strings.Contains(r.stdout, "the reader and the writer deadlocked\n"); deadlocked != (len(dl) == 1) {
		t.Errorf("deadlocked: %v, deadlock reports: %d", deadlocked, len(dl))
	} else if !deadlocked {
		r.wantStdout(t, "finished 2000 reads and 2000 writes")
	} else if len(dl[0].Goroutines) < 2 {
		t.Errorf("deadlock report names %d goroutines, want the reader and the writer", len(dl[0].Goroutines))
	}
}

func TestRWRFixedIsSilent(t *testing.T) {
	r := run(t, binary(t, "rwr", false), nil, "-fixed")
	r.wantExit(t, 0)
	r.wantSilent(t)
	r.wantStdout(t, "finished 2000 reads and 2000 writes")
}

func TestServiceProfilesAndSpans(t *testing.T) {
	otlp := newOTLPReceiver(t)
	prof := filepath.Join(t.TempDir(), "contention.pb.gz")
	r := run(t, binary(t, "service", false), []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp.URL,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_SERVICE_NAME=lockscope-example-service",
	}, "-load", "1500", "-profile", prof)
	r.wantExit(t, 0)
	r.wantSilent(t) // a hot lock is not a bug
	r.wantStdout(t, "sent 1500 requests from 8 clients")

	// The ranking from /debug/locks/?format=json: cache.mu first.
	m := match(t, `worst locks \(/debug/locks/\?format=json\):\n.*\n\s+(\S+)\s+(\d+)\s+\S+\s+(\d+)`, r.stdout)
	if m[1] != "cache.mu" || atoi(t, m[3]) == 0 {
		t.Errorf("worst lock %s with %s contentions, want cache.mu, contended", m[1], m[3])
	}
	// The contention profile, read by the example: Cache.Get waited longest.
	m = match(t, `where requests waited \(/debug/locks/contention\):\n\s+\S+\s+(\S+)\n`, r.stdout)
	if m[1] != "main.(*Cache).Get" {
		t.Errorf("longest waits in %s, want main.(*Cache).Get", m[1])
	}
	// The same profile, as go tool pprof reads it.
	out, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=delay", prof).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof: %v\n%s", err, out)
	}
	m = match(t, `flat%\s+sum%\s+cum\s+cum%\n\s+\S+\s+\S+\s+\S+\s+\S+\s+\S+\s+(\S+)`, string(out))
	if m[1] != "main.(*Cache).Get" {
		t.Errorf("go tool pprof -top puts %s first, want main.(*Cache).Get\n%s", m[1], out)
	}

	// Spans: the exporter sent lock waits on cache.mu to the collector.
	m = match(t, `spans: (\d+) of lock waits, holds and reports; of these and the requests' own, (\d+) exported, (\d+) failed`, r.stdout)
	if atoi(t, m[1]) == 0 || atoi(t, m[2]) == 0 || m[3] != "0" {
		t.Errorf("spans: %s of lockscope's, %s exported, %s failed; want some of each, none failed", m[1], m[2], m[3])
	}
	waits := otlp.spans("lockscope.wait cache.mu", "lockscope.lock.name", "cache.mu")
	if waits == 0 {
		t.Errorf("the collector received no lockscope.wait span for cache.mu (spans by name: %v)", otlp.names())
	}
	if svc := otlp.serviceNames(); !slices.Contains(svc, "lockscope-example-service") {
		t.Errorf("service names %v, want OTEL_SERVICE_NAME's", svc)
	}
}

func kinds(reps []report.Report) []report.Kind {
	var out []report.Kind
	for _, r := range reps {
		out = append(out, r.Kind)
	}
	return out
}

// otlpReceiver is an OTLP/HTTP trace collector that keeps what it receives.
type otlpReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*coltracepb.ExportTraceServiceRequest
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	o := &otlpReceiver{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			http.NotFound(w, r)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := new(coltracepb.ExportTraceServiceRequest)
		if err := proto.Unmarshal(b, req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		o.mu.Lock()
		o.reqs = append(o.reqs, req)
		o.mu.Unlock()
		resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(resp)
	}))
	t.Cleanup(o.Close)
	return o
}

// spans counts the spans called name with the string attribute key=value.
func (o *otlpReceiver) spans(name, key, value string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, req := range o.reqs {
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					if s.Name != name {
						continue
					}
					for _, a := range s.Attributes {
						if a.Key == key && a.Value.GetStringValue() == value {
							n++
						}
					}
				}
			}
		}
	}
	return n
}

func (o *otlpReceiver) names() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]int{}
	for _, req := range o.reqs {
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					out[s.Name]++
				}
			}
		}
	}
	return out
}

func (o *otlpReceiver) serviceNames() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, req := range o.reqs {
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" && !slices.Contains(out, a.Value.GetStringValue()) {
					out = append(out, a.Value.GetStringValue())
				}
			}
		}
	}
	return out
}

// heldrecv: a lock held across a channel receive that will never come,
// proven by the runtime and reported as a deadlock within 2s, at the
// default settings.
func TestHeldrecvReportsTheProvenDeadlock(t *testing.T) {
	r := run(t, proofBinary(t, "heldrecv"), nil)
	r.wantExit(t, 0)
	r.wantOnStderr(t)
	r.wantStdout(t, "get a        -> value of a\n", "lockscope found a deadlock")
	m := match(t, `no reply: lockscope reported a deadlock (\S+)s after the requests began`, r.stdout)
	if d := duration(t, m[1]+"s"); d > 2*time.Second {
		t.Errorf("reported %v after the hang, want within 2s", d)
	}
	dl := r.ofKind(report.KindDeadlock)
	if len(dl) != 1 || len(r.reports) != 1 {
		t.Fatalf("reports %v, want one deadlock", kinds(r.reports))
	}
	rep := dl[0]
	recv := lineOf(t, "heldrecv", "func (c *Cache) Get(", "r := <-out")
	lock := lineOf(t, "heldrecv", "func (c *Cache) Get(", "c.mu.Lock()")
	want := fmt.Sprintf("held by goroutine %d, which is blocked forever [chan receive] at main.(*Cache).Get at main.go:%d; the runtime proves goroutine %d blocked forever",
		rep.Goroutines[len(rep.Goroutines)-1].ID, recv, rep.Goroutines[0].ID)
	if !strings.HasPrefix(rep.Summary, "deadlock: goroutine ") || !strings.Contains(rep.Summary, " waits for write lock Cache.mu held by goroutine ") || !strings.HasSuffix(rep.Summary, want) {
		t.Errorf("summary %q, want the waiter, Cache.mu and ...%s", rep.Summary, want)
	}
	if len(rep.Goroutines) != 2 {
		t.Fatalf("goroutines %+v, want the waiter and the holder", rep.Goroutines)
	}
	w, h := rep.Goroutines[0], rep.Goroutines[1]
	if w.Role != "waits for write lock" || w.Lock != "Cache.mu" || w.State != "sync.Mutex.Lock (leaked)" {
		t.Errorf("waiter %+v", w)
	}
	frameAt(t, "waiter", w.Stack, "heldrecv", "main.(*Cache).Get", lock)
	if h.Role != "holds" || h.Lock != "Cache.mu" || h.State != "chan receive (leaked)" {
		t.Errorf("holder %+v", h)
	}
	frameAt(t, "holder's acquisition", h.Stack, "heldrecv", "main.(*Cache).Get", lock)
	frameAt(t, "holder now", h.Current, "heldrecv", "main.(*Cache).Get", recv)
}

func TestHeldrecvFixedIsSilent(t *testing.T) {
	r := run(t, proofBinary(t, "heldrecv"), nil, "-fixed")
	r.wantExit(t, 0)
	r.wantSilent(t)
	r.wantStdout(t, "get missing  -> error: missing: not found\n", "get b        -> value of b\n")
}

// Without the proof (here turned off; on Go 1.26 without the experiment
// it is absent), the same hang is a long wait at the threshold, and
// lockscope says once how to get the proof.
func TestHeldrecvWithoutProofReportsAtTheThresholdAndHints(t *testing.T) {
	r := run(t, proofBinary(t, "heldrecv"), []string{inspect.EnvProof + "=off", inspect.EnvWaitThreshold + "=1s"})
	r.wantExit(t, 0)
	r.wantStdout(t, "no reply: lockscope reported a long-wait")
	if lw := r.ofKind(report.KindLongWait); len(lw) != 1 || !strings.Contains(lw[0].Summary, "for write lock Cache.mu held by goroutine") {
		t.Errorf("reports %v, want one long wait for Cache.mu", kinds(r.reports))
	}
	if n := strings.Count(r.stderr, "lockscope: hangs are reported when thresholds run out"); n != 1 {
		t.Errorf("the hint is on stderr %d times, want once", n)
	}
}

// trylivelock: two transfers, each holding its source account and spinning
// on TryLock of the other's: a livelock, reported once both have spun for
// a second.
func TestTrylivelockReportsTheLivelock(t *testing.T) {
	r := run(t, binary(t, "trylivelock", false), nil)
	r.wantExit(t, 0)
	r.wantOnStderr(t)
	m := match(t, `lockscope reported a livelock (\S+)s after the transfers began`, r.stdout)
	if d := duration(t, m[1]+"s"); d < 900*time.Millisecond || d > 3*time.Second {
		t.Errorf("reported %v after the transfers began, want after the 1s window and within 3s", d)
	}
	ll := r.ofKind(report.KindLivelock)
	if len(ll) != 1 || len(r.reports) != 1 {
		t.Fatalf("reports %v, want one livelock", kinds(r.reports))
	}
	rep := ll[0]
	if !strings.Contains(rep.Summary, "Account[alice].mu") || !strings.Contains(rep.Summary, "Account[bob].mu") || !strings.HasSuffix(rep.Summary, "; neither has let go") {
		t.Errorf("summary %q", rep.Summary)
	}
	spin := lineOf(t, "trylivelock", "func transfer(", "to.mu.TryLock()")
	lock := lineOf(t, "trylivelock", "func transfer(", "from.mu.Lock()")
	if len(rep.Goroutines) != 4 {
		t.Fatalf("goroutines %+v, want each transfer spinning and holding", rep.Goroutines)
	}
	for _, g := range rep.Goroutines {
		switch g.Role {
		case "spins on TryLock of":
			frameAt(t, "spinning", g.Stack, "trylivelock", "main.transfer", spin)
		case "holds":
			frameAt(t, "holding", g.Stack, "trylivelock", "main.transfer", lock)
		default:
			t.Errorf("goroutine %d: role %q", g.ID, g.Role)
		}
	}
}

func TestTrylivelockFixedIsSilent(t *testing.T) {
	r := run(t, binary(t, "trylivelock", false), nil, "-fixed")
	r.wantExit(t, 0)
	r.wantSilent(t)
	r.wantStdout(t, "alice 90, bob 110\n")
}
