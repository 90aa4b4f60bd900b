package delivery

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/trace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockscope/lockscope/internal/config"
	"github.com/lockscope/lockscope/report"
)

// What happened before a report: a runtime/trace flight recorder keeps the
// last seconds of the execution trace in memory, and each new deadlock,
// lock-order, leaked-lock or long-wait report writes that window to a file
// named after the report, which `go tool trace` opens (its goroutine
// analysis shows the goroutines blocked in the deadlock). Off by default:
// LOCKSCOPE_TRACE_DIR=dir turns it on at start, RecordTraces in code.

const (
	// TraceWindow is how much of the past the flight recorder keeps (at
	// least; the runtime keeps whole generations).
	TraceWindow = 10 * time.Second
	// traceMaxBytes bounds the recorder's memory.
	traceMaxBytes = 64 << 20
	// maxTraceFiles bounds the traces one process writes.
	maxTraceFiles = 100
)

// traceKinds are the reports that write a trace.
var traceKinds = map[report.Kind]bool{report.KindDeadlock: true, report.KindLockOrder: true, report.KindLeakedLock: true, report.KindLongWait: true}

type flightRecorder struct {
	dir        string
	fr         *trace.FlightRecorder
	mu         sync.Mutex // guards reqs against close
	closed     bool
	reqs       chan report.Report
	unregister func()
	done       chan struct{}
	written    atomic.Int32
	// Wrote, for tests, receives each file written (nil: no one listens).
	Wrote chan<- string
}

var (
	FlightMu sync.Mutex // guards flight
	Flight   *flightRecorder
)

func init() {
	if dir := os.Getenv(config.EnvTraceDir); dir != "" && !config.Disabled {
		if _, err := RecordTraces(dir); err != nil {
			fmt.Fprintf(os.Stderr, "lockscope: %s=%s: %v\n", config.EnvTraceDir, dir, err)
		}
	}
}

// RecordTraces starts a runtime/trace flight recorder that keeps the last
// TraceWindow of the execution trace, and writes it into dir (created if
// needed) on each new deadlock, lock-order, leaked-lock or long-wait report,
// as lockscope-<program>-<pid>-<n>-<kind>.trace for `go tool trace`, with
// the report's text beside it (.txt). At most 100 files are written. The
// write happens on a goroutine of its own: the goroutine that found the
// problem does not wait for it. Only one flight recorder can run in a
// program (a runtime restriction); stop ends this one.
func RecordTraces(dir string) (stop func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	FlightMu.Lock()
	defer FlightMu.Unlock()
	if Flight != nil {
		return nil, errors.New("lockscope: a trace recorder is already running")
	}
	f := &flightRecorder{
		dir:  dir,
		fr:   trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: TraceWindow, MaxBytes: traceMaxBytes}),
		reqs: make(chan report.Report, 4),
		done: make(chan struct{}),
	}
	if err := f.fr.Start(); err != nil {
		return nil, fmt.Errorf("lockscope: flight recorder: %w", err)
	}
	f.unregister = OnReport(f.onReport)
	go f.run()
	Flight = f
	var once sync.Once
	return func() { once.Do(f.stop) }, nil
}

// onReport runs on the goroutine that found the problem: it only hands the
// report over, and drops it when the writer is busy.
func (f *flightRecorder) onReport(r report.Report) {
	if !traceKinds[r.Kind] {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	select {
	case f.reqs <- r:
	default:
	}
}

func (f *flightRecorder) run() {
	defer close(f.done)
	for r := range f.reqs {
		n := f.written.Add(1)
		if n > maxTraceFiles {
			continue
		}
		name, err := f.write(r, int(n))
		if err != nil {
			fmt.Fprintf(os.Stderr, "lockscope: writing the trace of a %s report: %v\n", r.Kind, err)
			continue
		}
		if f.Wrote != nil {
			f.Wrote <- name
		}
	}
}

func (f *flightRecorder) write(r report.Report, n int) (string, error) {
	prog := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	base := filepath.Join(f.dir, fmt.Sprintf("lockscope-%s-%d-%d-%s", prog, os.Getpid(), n, r.Kind))
	out, err := os.Create(base + ".trace")
	if err != nil {
		return "", err
	}
	w := bufio.NewWriter(out)
	_, err = f.fr.WriteTo(w)
	err = errors.Join(err, w.Flush(), out.Close())
	if err != nil {
		return "", err
	}
	text := fmt.Sprintf("%s\n\ngo tool trace %s.trace\n", r.String(), base)
	if err := os.WriteFile(base+".txt", []byte(text), 0o644); err != nil {
		return "", err
	}
	return base + ".trace", nil
}

func (f *flightRecorder) stop() {
	f.unregister()
	f.mu.Lock()
	f.closed = true
	close(f.reqs)
	f.mu.Unlock()
	<-f.done
	f.fr.Stop()
	FlightMu.Lock()
	Flight = nil
	FlightMu.Unlock()
}
