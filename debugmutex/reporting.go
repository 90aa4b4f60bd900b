package debugmutex

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"
)

// Delivering reports.
//
// A problem is identified by Report.Key (kind and sites). The first
// occurrence is delivered; repeats only increase its count (Reports shows
// it). Delivery: the text block to standard error (unless quiet), a JSON
// line to LOCKSCOPE_REPORT_FILE, every handler registered with OnReport,
// and an EventReport to subscribers. At most reportBurst reports are
// printed per second; the rest are still counted, kept, and handed to
// handlers.

const reportBurst = 20

type reportState struct {
	mu       sync.Mutex
	byKey    map[string]*Report
	order    []string
	handlers map[int]func(Report)
	nextH    int
	file     *os.File
	fileErr  bool
	stderr   io.Writer
	winStart time.Time
	inWin    int
	limited  int64
	outMu    sync.Mutex // serialises writes so blocks do not interleave
}

var reports = reportState{byKey: map[string]*Report{}, handlers: map[int]func(Report){}, stderr: os.Stderr}

// maxKeptReports bounds the distinct problems remembered.
const maxKeptReports = 10000

// emit delivers r and applies the configured action.
func emit(r *Report, canPanic bool) {
	if deliver(r, true) && canPanic {
		switch Action(cfg.action.Load()) {
		case Panic:
			panic(r)
		case Exit:
			os.Exit(ExitCode)
		}
	}
}

// deliver dedupes and delivers r. It reports whether r was new.
func deliver(r *Report, applyLimit bool) bool {
	if r.Count == 0 {
		r.Count = 1
	}
	reports.mu.Lock()
	if old := reports.byKey[r.Key]; old != nil {
		old.Count++
		reports.mu.Unlock()
		return false
	}
	if len(reports.order) < maxKeptReports {
		reports.byKey[r.Key] = r
		reports.order = append(reports.order, r.Key)
	}
	print := !cfg.quiet.Load()
	if applyLimit {
		now := time.Now()
		if now.Sub(reports.winStart) > time.Second {
			reports.winStart, reports.inWin = now, 0
		}
		reports.inWin++
		if reports.inWin > reportBurst {
			reports.limited++
			print = false
		}
	}
	var hs []func(Report)
	keys := make([]int, 0, len(reports.handlers))
	for k := range reports.handlers {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		hs = append(hs, reports.handlers[k])
	}
	f := reportFile()
	stderr := reports.stderr
	cp := *r
	reports.mu.Unlock()

	reports.outMu.Lock()
	if print {
		fmt.Fprint(stderr, r.String())
	}
	if f != nil {
		if b, err := json.Marshal(&cp); err == nil {
			b = append(b, '\n')
			f.Write(b)
		}
	}
	reports.outMu.Unlock()
	for _, h := range hs {
		h(cp)
	}
	if anyRep.Load() {
		publishEvent(Event{Kind: EventReport, Start: r.Time, Report: &cp})
	}
	return true
}

// reportFile opens LOCKSCOPE_REPORT_FILE once. reports.mu held.
func reportFile() *os.File {
	if reports.file != nil || reports.fileErr {
		return reports.file
	}
	name := os.Getenv(EnvReportFile)
	if name == "" {
		reports.fileErr = true
		return nil
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "lockscope: cannot write reports to %s=%s: %v\n", EnvReportFile, name, err)
		reports.fileErr = true
		return nil
	}
	reports.file = f
	return f
}

// OnReport registers a handler called with every new report (repeats of a
// known problem only increase its count), from the goroutine that found it.
// A handler must not block for long or lock the lock being reported on. It
// returns a function that unregisters the handler.
func OnReport(h func(Report)) (unregister func()) {
	reports.mu.Lock()
	id := reports.nextH
	reports.nextH++
	reports.handlers[id] = h
	reports.mu.Unlock()
	return func() {
		reports.mu.Lock()
		delete(reports.handlers, id)
		reports.mu.Unlock()
	}
}

// Reports returns every distinct problem reported so far, oldest first, with
// its current count.
func Reports() []Report {
	reports.mu.Lock()
	defer reports.mu.Unlock()
	out := make([]Report, 0, len(reports.order))
	for _, k := range reports.order {
		out = append(out, *reports.byKey[k])
	}
	return out
}

// SetOutput sends the readable reports to w instead of standard error
// (nil restores standard error). Tests use it to capture them.
func SetOutput(w io.Writer) {
	if w == nil {
		w = os.Stderr
	}
	reports.mu.Lock()
	reports.stderr = w
	reports.mu.Unlock()
}
