package delivery

import (
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/lockscope/lockscope/internal/config"
	"github.com/lockscope/lockscope/internal/events"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/report"
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
	Mu    rt.RankedMutex[rt.RReports]
	ByKey map[string]*report.Report
	Order []string
	// Seen remembers the keys of problems beyond maxKeptReports (by hash):
	// they are delivered once and counted after, like the kept ones, but
	// not kept whole. Beyond maxSeenKeys problems, new ones are dropped and
	// counted (Dropped.Reports): a bounded table never delivers a repeat.
	Seen     map[uint64]int
	dropped  int64
	handlers map[int]func(report.Report)
	nextH    int
	file     *os.File
	fileErr  bool
	written  map[string]int // per kept report's key, the count the file has
	Stderr   io.Writer
	winStart time.Time
	inWin    int
	limited  int64
	OutMu    rt.RankedMutex[rt.RReportOut] // serialises writes so blocks do not interleave
}

var Table = reportState{ByKey: map[string]*report.Report{}, Seen: map[uint64]int{}, handlers: map[int]func(report.Report){}, Stderr: os.Stderr}

const (
	// MaxKeptReports bounds the distinct problems kept whole (Reports).
	MaxKeptReports = 10000
	// maxSeenKeys bounds the distinct problems remembered at all.
	maxSeenKeys = 1 << 20
)

// EmitAll delivers rs and applies the configured action: for Exit it exits;
// for Panic it returns the first new report, for the caller to panic with
// once the lock is back in the state sync would leave it in (a report
// action never changes what the lock does).
func EmitAll(rs []*report.Report) *report.Report {
	var panicWith *report.Report
	for _, r := range rs {
		// The panic carries the first new report, or the deadlock if one
		// was found: the gravest.
		if p := Emit(r); p != nil && (panicWith == nil || p.Kind == report.KindDeadlock) {
			panicWith = p
		}
	}
	return panicWith
}

// Emit delivers r and applies the configured action (see emitAll).
func Emit(r *report.Report) *report.Report {
	if !Deliver(r, true) {
		return nil
	}
	switch report.Action(config.Cfg.Action.Load()) {
	case report.Panic:
		return r
	case report.Exit:
		exitForReport()
	}
	return nil
}

// EmitNoAction delivers r whatever the configured action (the watchdog's
// reports, made on no goroutine of the program's).
func EmitNoAction(r *report.Report) { Deliver(r, true) }

// Deliver dedupes and delivers r. It reports whether r was new.
func Deliver(r *report.Report, applyLimit bool) bool {
	r.CompleteSiteOnly()
	if r.Count == 0 {
		r.Count = 1
	}
	Table.Mu.Lock()
	if old := Table.ByKey[r.Key]; old != nil {
		old.Count++
		Table.Mu.Unlock()
		return false
	}
	if len(Table.Order) < MaxKeptReports {
		Table.ByKey[r.Key] = r
		Table.Order = append(Table.Order, r.Key)
	} else {
		h := rt.HashString(r.Key)
		if _, ok := Table.Seen[h]; ok {
			Table.Seen[h]++
			Table.Mu.Unlock()
			return false
		}
		if len(Table.Seen) >= maxSeenKeys {
			Table.dropped++
			Table.Mu.Unlock()
			return false
		}
		Table.Seen[h] = 1
	}
	print := !config.Cfg.Quiet.Load()
	if applyLimit {
		now := time.Now()
		if now.Sub(Table.winStart) > time.Second {
			Table.winStart, Table.inWin = now, 0
		}
		Table.inWin++
		if Table.inWin > reportBurst {
			Table.limited++
			print = false
		}
	}
	var hs []func(report.Report)
	keys := make([]int, 0, len(Table.handlers))
	for k := range Table.handlers {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		hs = append(hs, Table.handlers[k])
	}
	f := reportFile()
	stderr := Table.Stderr
	cp := *r // the kept report's Count changes under reports.mu: work on a copy
	if f != nil && Table.ByKey[r.Key] == r {
		if Table.written == nil {
			Table.written = map[string]int{}
		}
		Table.written[r.Key] = cp.Count
	}
	Table.Mu.Unlock()

	Table.OutMu.Lock()
	if print {
		fmt.Fprint(stderr, cp.String())
	}
	if f != nil {
		if b, err := report.AppendLine(nil, &cp); err == nil {
			f.Write(b)
		}
	}
	Table.OutMu.Unlock()
	for _, h := range hs {
		h(cp)
	}
	if events.AnyRep.Load() {
		ev := cp
		events.PublishEvent(report.Event{Kind: report.EventReport, Start: cp.Time, Report: &ev})
	}
	return true
}

// FlushRepeats appends to LOCKSCOPE_REPORT_FILE a Repeat line for each
// kept problem seen again since the file last had its count.
func FlushRepeats() {
	Table.Mu.Lock()
	f := Table.file
	var lines []report.Report
	if f != nil {
		for _, k := range Table.Order {
			r := Table.ByKey[k]
			if had, ok := Table.written[k]; ok && r.Count > had {
				// What names the problem; its stacks are in its report.
				lines = append(lines, report.Report{Kind: r.Kind, Summary: r.Summary, Time: r.Time,
					Count: r.Count - had, Key: r.Key, Locks: r.Locks, Repeat: true})
				Table.written[k] = r.Count
			}
		}
	}
	Table.Mu.Unlock()
	if len(lines) == 0 {
		return
	}
	Table.OutMu.Lock()
	for i := range lines {
		if b, err := report.AppendLine(nil, &lines[i]); err == nil {
			f.Write(b)
		}
	}
	Table.OutMu.Unlock()
}

// WriteClassEdges appends edges to LOCKSCOPE_REPORT_FILE, one line each,
// if it is set.
func WriteClassEdges(edges []report.ClassEdge) {
	Table.Mu.Lock()
	f := reportFile()
	Table.Mu.Unlock()
	if f == nil {
		return
	}
	var b []byte
	for i := range edges {
		b, _ = report.AppendClassEdge(b, &edges[i])
	}
	Table.OutMu.Lock()
	f.Write(b)
	Table.OutMu.Unlock()
}

// exitForReport ends the process for the Exit action, after the report is
// written (deliver wrote it synchronously).
func exitForReport() {
	FlushRepeats()
	WaitTraceWrites(TraceWriteWait)
	Table.Mu.Lock()
	f := Table.file
	Table.Mu.Unlock()
	if f != nil {
		f.Sync()
	}
	os.Exit(report.ExitCode)
}

// reportFile opens LOCKSCOPE_REPORT_FILE once. reports.mu held.
func reportFile() *os.File {
	if Table.file != nil || Table.fileErr {
		return Table.file
	}
	name := os.Getenv(config.EnvReportFile)
	if name == "" {
		Table.fileErr = true
		return nil
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "lockscope: cannot write reports to %s=%s: %v\n", config.EnvReportFile, name, err)
		Table.fileErr = true
		return nil
	}
	Table.file = f
	return f
}

// OnReport registers a handler called with every new report (repeats of a
// known problem only increase its count), from the goroutine that found it.
// A handler must not block for long or lock the lock being reported on. It
// returns a function that unregisters the handler.
func OnReport(h func(report.Report)) (unregister func()) {
	Table.Mu.Lock()
	id := Table.nextH
	Table.nextH++
	Table.handlers[id] = h
	Table.Mu.Unlock()
	return func() {
		Table.Mu.Lock()
		delete(Table.handlers, id)
		Table.Mu.Unlock()
	}
}

// Reports returns every distinct problem reported so far, oldest first, with
// its current count.
func Reports() []report.Report {
	Table.Mu.Lock()
	defer Table.Mu.Unlock()
	out := make([]report.Report, 0, len(Table.Order))
	for _, k := range Table.Order {
		out = append(out, *Table.ByKey[k])
	}
	return out
}

// ReportsDropped returns how many distinct problems were not delivered
// because the table of problems seen was full.
func ReportsDropped() int64 {
	Table.Mu.Lock()
	defer Table.Mu.Unlock()
	return Table.dropped
}

// SetOutput sends the readable reports to w instead of standard error
// (nil restores standard error). Tests use it to capture them.
func SetOutput(w io.Writer) {
	if w == nil {
		w = os.Stderr
	}
	Table.Mu.Lock()
	Table.Stderr = w
	Table.Mu.Unlock()
}
