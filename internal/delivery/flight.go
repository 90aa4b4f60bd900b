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
	dir    string
	fr     *trace.FlightRecorder
	mu     sync.Mutex // guards reqs against close, pending and idle
	closed bool
	// pending counts the reports handed to the writer and not yet written
	// (or given up on); idle is closed when it drops to 0.
	pending    int
	idle       chan struct{}
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
// problem does not wait for it. Each file appears complete or not at all
// (written under a temporary name, renamed when done), and Exiting and the
// exit action wait up to 2 s for writes in progress. Only one flight recorder can run in a
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
		if f.pending == 0 {
			f.idle = make(chan struct{})
		}
		f.pending++
	default:
	}
}

// finished counts one handed-over report off.
func (f *flightRecorder) finished() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending--; f.pending == 0 {
		close(f.idle)
	}
}

// TraceWriteWait bounds how long the exit paths wait for traces in progress.
const TraceWriteWait = 2 * time.Second

// WaitTraceWrites waits, at most d, until the traces of the reports made so
// far are written (renamed to their final names). The program is about to
// exit: a trace cut short would be lost anyway, and waiting beyond d would
// make lockscope the reason a program does not end.
func WaitTraceWrites(d time.Duration) {
	FlightMu.Lock()
	f := Flight
	FlightMu.Unlock()
	if f == nil {
		return
	}
	f.mu.Lock()
	idle := f.idle
	pending := f.pending
	f.mu.Unlock()
	if pending == 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	}
}

func (f *flightRecorder) run() {
	defer close(f.done)
	for r := range f.reqs {
		n := f.written.Add(1)
		if n > maxTraceFiles {
			f.finished()
			continue
		}
		name, err := f.write(r, int(n))
		f.finished()
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
	// The text first, then the trace: a reader that finds the trace finds
	// its text beside it. Each is written under a temporary name in the same
	// directory and renamed when complete, so that no reader (go tool
	// trace, a CI step collecting the directory) ever sees a partial file,
	// even when the program exits mid-write.
	text := fmt.Sprintf("%s\n\ngo tool trace %s.trace\n", r.String(), base)
	if err := writeRenamed(base+".txt", func(w *bufio.Writer) error {
		_, err := w.WriteString(text)
		return err
	}); err != nil {
		return "", err
	}
	if err := writeRenamed(base+".trace", func(w *bufio.Writer) error {
		_, err := f.fr.WriteTo(w)
		return err
	}); err != nil {
		return "", err
	}
	return base + ".trace", nil
}

// writeRenamed writes name through a temporary file beside it (a dot name
// no glob for *.trace or *.txt picks up) and renames it into place once
// written and closed; on error the temporary file is removed.
func writeRenamed(name string, write func(*bufio.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(tmp)
	err = errors.Join(write(w), w.Flush(), tmp.Chmod(0o644), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
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
