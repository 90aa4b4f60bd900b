package debugmutex_test

import (
	"bytes"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
)

func TestMain(m *testing.M) {
	// Reports go to a buffer the tests can read; a short recursive grace
	// keeps the recursive-lock tests fast.
	if os.Getenv("LOCKSCOPE_CHILD") == "" {
		debugmutex.SetOutput(&stderrCapture)
	}
	debugmutex.Configure(debugmutex.RecursiveGrace(50 * time.Millisecond))
	code := m.Run()
	if testing.Verbose() {
		io.Copy(os.Stderr, &stderrCapture)
	}
	os.Exit(code)
}

var stderrCapture lockedBuffer

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Read(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// reportWatch collects the new reports made while a test runs.
type reportWatch struct {
	mu  sync.Mutex
	got []debugmutex.Report
	ch  chan debugmutex.Report
}

func watchReports(t *testing.T) *reportWatch {
	t.Helper()
	w := &reportWatch{ch: make(chan debugmutex.Report, 100)}
	unregister := debugmutex.OnReport(func(r debugmutex.Report) {
		w.mu.Lock()
		w.got = append(w.got, r)
		w.mu.Unlock()
		select {
		case w.ch <- r:
		default:
		}
	})
	t.Cleanup(unregister)
	return w
}

func (w *reportWatch) all() []debugmutex.Report {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]debugmutex.Report(nil), w.got...)
}

// waitFor returns the first report of kind k, failing the test after a
// deadline (a deadline, not a sleep: it returns as soon as the report comes).
func (w *reportWatch) waitFor(t *testing.T, k debugmutex.Kind, within time.Duration) debugmutex.Report {
	t.Helper()
	return w.waitForLock(t, k, "", within)
}

// waitForLock is waitFor for a report whose summary names lock.
func (w *reportWatch) waitForLock(t *testing.T, k debugmutex.Kind, lock string, within time.Duration) debugmutex.Report {
	t.Helper()
	match := func(r debugmutex.Report) bool { return r.Kind == k && strings.Contains(r.Summary, lock) }
	for _, r := range w.all() {
		if match(r) {
			return r
		}
	}
	deadline := time.After(within)
	for {
		select {
		case r := <-w.ch:
			if match(r) {
				return r
			}
		case <-deadline:
			t.Fatalf("no %s report within %v; got %v", k, within, kinds(w.all()))
			return debugmutex.Report{}
		}
	}
}

// abandoned are the locks that detector tests leave deadlocked on purpose
// (as they would stay under sync). The watchdog rightly reports them as held
// and awaited too long once the default 30s threshold passes, which on a
// slow machine can happen while a later test runs: those reports are not
// about that test.
var abandoned sync.Map

func abandon(names ...string) {
	for _, n := range names {
		abandoned.Store(n, true)
	}
}

func aboutAbandoned(r debugmutex.Report) bool {
	if len(r.Locks) == 0 {
		return false
	}
	for _, l := range r.Locks {
		if _, ok := abandoned.Load(l.Name); !ok {
			return false
		}
	}
	return true
}

// unexpected returns the reports made other than about abandoned locks.
func (w *reportWatch) unexpected() []debugmutex.Report {
	var out []debugmutex.Report
	for _, r := range w.all() {
		if !aboutAbandoned(r) {
			out = append(out, r)
		}
	}
	return out
}

// assertSilent fails if any report was made (other than about abandoned locks).
func (w *reportWatch) assertSilent(t *testing.T) {
	t.Helper()
	debugmutex.WatchdogNow()
	for _, r := range w.all() {
		if aboutAbandoned(r) {
			continue
		}
		t.Errorf("unexpected report:\n%s", r.String())
	}
}

func kinds(rs []debugmutex.Report) []debugmutex.Kind {
	var out []debugmutex.Kind
	for _, r := range rs {
		out = append(out, r.Kind)
	}
	return out
}

// goid returns the current goroutine id the way Go prints it.
func goid() int64 {
	var buf [64]byte
	s := string(buf[:runtime.Stack(buf[:], false)])
	s = strings.TrimPrefix(s, "goroutine ")
	id, _ := strconv.ParseInt(s[:strings.IndexByte(s, ' ')], 10, 64)
	return id
}

// line returns the caller's line number.
func line() int {
	_, _, l, _ := runtime.Caller(1)
	return l
}

func hasFrame(frames []debugmutex.Frame, fn string) bool {
	for _, f := range frames {
		if strings.HasSuffix(f.Function, fn) {
			return true
		}
	}
	return false
}

func within(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("did not finish within %v", d)
	}
}
