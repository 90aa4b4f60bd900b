package debugmutex

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
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
	mu    rankedMutex[rReports]
	byKey map[string]*Report
	order []string
	// seen remembers the keys of problems beyond maxKeptReports (by hash):
	// they are delivered once and counted after, like the kept ones, but
	// not kept whole. Beyond maxSeenKeys problems, new ones are dropped and
	// counted (Dropped.Reports): a bounded table never delivers a repeat.
	seen     map[uint64]int
	dropped  int64
	handlers map[int]func(Report)
	nextH    int
	file     *os.File
	fileErr  bool
	written  map[string]int // per kept report's key, the count the file has
	stderr   io.Writer
	winStart time.Time
	inWin    int
	limited  int64
	outMu    rankedMutex[rReportOut] // serialises writes so blocks do not interleave
}

var reports = reportState{byKey: map[string]*Report{}, seen: map[uint64]int{}, handlers: map[int]func(Report){}, stderr: os.Stderr}

const (
	// maxKeptReports bounds the distinct problems kept whole (Reports).
	maxKeptReports = 10000
	// maxSeenKeys bounds the distinct problems remembered at all.
	maxSeenKeys = 1 << 20
)

// emitAll delivers rs and applies the configured action: for Exit it exits;
// for Panic it returns the first new report, for the caller to panic with
// once the lock is back in the state sync would leave it in (a report
// action never changes what the lock does).
func emitAll(rs []*Report) *Report {
	var panicWith *Report
	for _, r := range rs {
		// The panic carries the first new report, or the deadlock if one
		// was found: the gravest.
		if p := emit(r); p != nil && (panicWith == nil || p.Kind == KindDeadlock) {
			panicWith = p
		}
	}
	return panicWith
}

// emit delivers r and applies the configured action (see emitAll).
func emit(r *Report) *Report {
	if !deliver(r, true) {
		return nil
	}
	switch Action(cfg.action.Load()) {
	case Panic:
		return r
	case Exit:
		exitForReport()
	}
	return nil
}

// emitNoAction delivers r whatever the configured action (the watchdog's
// reports, made on no goroutine of the program's).
func emitNoAction(r *Report) { deliver(r, true) }

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
	} else {
		h := hashString(r.Key)
		if _, ok := reports.seen[h]; ok {
			reports.seen[h]++
			reports.mu.Unlock()
			return false
		}
		if len(reports.seen) >= maxSeenKeys {
			reports.dropped++
			reports.mu.Unlock()
			return false
		}
		reports.seen[h] = 1
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
	cp := *r // the kept report's Count changes under reports.mu: work on a copy
	if f != nil && reports.byKey[r.Key] == r {
		if reports.written == nil {
			reports.written = map[string]int{}
		}
		reports.written[r.Key] = cp.Count
	}
	reports.mu.Unlock()

	reports.outMu.Lock()
	if print {
		fmt.Fprint(stderr, cp.String())
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
		ev := cp
		publishEvent(Event{Kind: EventReport, Start: cp.Time, Report: &ev})
	}
	return true
}

func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// flushRepeats appends to LOCKSCOPE_REPORT_FILE a Repeat line for each
// kept problem seen again since the file last had its count.
func flushRepeats() {
	reports.mu.Lock()
	f := reports.file
	var lines []Report
	if f != nil {
		for _, k := range reports.order {
			r := reports.byKey[k]
			if had, ok := reports.written[k]; ok && r.Count > had {
				// What names the problem; its stacks are in its report.
				lines = append(lines, Report{Kind: r.Kind, Summary: r.Summary, Time: r.Time,
					Count: r.Count - had, Key: r.Key, Locks: r.Locks, Repeat: true})
				reports.written[k] = r.Count
			}
		}
	}
	reports.mu.Unlock()
	if len(lines) == 0 {
		return
	}
	reports.outMu.Lock()
	for i := range lines {
		if b, err := json.Marshal(&lines[i]); err == nil {
			f.Write(append(b, '\n'))
		}
	}
	reports.outMu.Unlock()
}

// exitForReport ends the process for the Exit action, after the report is
// written (deliver wrote it synchronously).
func exitForReport() {
	flushRepeats()
	reports.mu.Lock()
	f := reports.file
	reports.mu.Unlock()
	if f != nil {
		f.Sync()
	}
	os.Exit(ExitCode)
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

// reportsDropped returns how many distinct problems were not delivered
// because the table of problems seen was full.
func reportsDropped() int64 {
	reports.mu.Lock()
	defer reports.mu.Unlock()
	return reports.dropped
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
