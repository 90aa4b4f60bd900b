package inspect

import (
	"context"
	"io"
	"iter"
	"time"

	"github.com/lockscope/lockscope/internal/config"
	"github.com/lockscope/lockscope/internal/delivery"
	"github.com/lockscope/lockscope/internal/events"
	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/internal/verdict"
	"github.com/lockscope/lockscope/report"
)

// The environment variables lockscope reads at start. All start LOCKSCOPE_.
const (
	// EnvSwitch turns recording off when set to "off", "0" or "false": every
	// lock then costs a branch more than sync's.
	EnvSwitch = config.EnvSwitch
	// EnvHoldThreshold is the hold duration after which a lock is reported
	// as held too long (a Go duration, e.g. "30s"; "0" disables).
	EnvHoldThreshold = config.EnvHoldThreshold
	// EnvWaitThreshold is the same for waiting.
	EnvWaitThreshold = config.EnvWaitThreshold
	// EnvReportFile names a file that reports are appended to as JSON lines.
	EnvReportFile = config.EnvReportFile
	// EnvOnReport says what happens after a report: "continue" (default),
	// "panic", or "exit" (exit status 66 after flushing the report).
	EnvOnReport = config.EnvOnReport
	// EnvQuiet, when set to 1, stops reports going to standard error.
	EnvQuiet = config.EnvQuiet
	// EnvSampling is the largest sampling period for timing holds of locks
	// whose holds are short (default 64; 1 times every acquisition).
	EnvSampling = config.EnvSampling
	// EnvRecursiveGrace is how long a goroutine must wait for a lock it
	// holds itself before that is reported as a deadlock (default 1s).
	EnvRecursiveGrace = config.EnvRecursiveGrace
	// EnvProof, set to "off", stops lockscope asking for the runtime's
	// proof that a goroutine is blocked forever (its goroutine leak profile).
	EnvProof = config.EnvProof
	// EnvTraceDir names a directory where a runtime/trace flight recording
	// is written for each deadlock, lock-order, leaked-lock and long-wait
	// report (see RecordTraces).
	EnvTraceDir = config.EnvTraceDir
)

// TraceWindow is how much of the program's recent past a flight recording
// (RecordTraces) keeps.
const TraceWindow = delivery.TraceWindow

// Enabled reports whether lockscope is recording: false under the
// nolockscope build tag or when LOCKSCOPE=off.
func Enabled() bool { return !config.Disabled }

// ReportAction returns what happens after a report now (LOCKSCOPE_ON_REPORT
// or debugmutex.OnReportAction): writers of what lockscope recorded
// (profiles) flush on a report when it is report.Exit, as the program ends
// right after it.
func ReportAction() report.Action { return report.Action(config.Cfg.Action.Load()) }

// Reports returns every distinct problem reported so far, oldest first, with
// its current count.
func Reports() []report.Report { return delivery.Reports() }

// OnReport registers a handler called with every new report (repeats of a
// known problem only increase its count), from the goroutine that found it.
// A handler must not block for long or lock the lock being reported on. It
// returns a function that unregisters the handler.
func OnReport(h func(report.Report)) (unregister func()) { return delivery.OnReport(h) }

// SetOutput sends the readable reports to w instead of standard error
// (nil restores standard error). Tests use it to capture them.
func SetOutput(w io.Writer) { delivery.SetOutput(w) }

// RecordTraces starts a runtime/trace flight recorder that keeps the last
// TraceWindow of the execution trace, and writes it into dir (created if
// needed) on each new deadlock, lock-order, leaked-lock or long-wait report,
// as lockscope-<program>-<pid>-<n>-<kind>.trace for `go tool trace`, with
// the report's text beside it (.txt). At most 100 files are written. The
// write happens on a goroutine of its own: the goroutine that found the
// problem does not wait for it. Only one flight recorder can run in a
// program (a runtime restriction); stop ends this one.
func RecordTraces(dir string) (stop func(), err error) { return delivery.RecordTraces(dir) }

// Records returns the aggregated statistics: cumulative totals since the
// program started, one Record per (kind, stack, lock, mode). Call it twice
// and subtract to get the activity in between (package profiler does).
//
// The table is sharded by lock id, and TryLock counters are kept per lock,
// so locks that share a name (SetName, or locks first taken at one site)
// have several rows of one key: they are added up here, so that a key is
// one Record, whichever shards its locks fell in.
func Records() []report.Record { return record.Records() }

// LockStats sums the statistics per lock name, worst first (by total wait,
// then hold time).
func LockStats() []report.LockStat { return record.LockStats() }

// SortLockStats sorts ls worst first, as LockStats returns them: by wait
// time, then hold time, then name.
func SortLockStats(ls []report.LockStat) { record.SortLockStats(ls) }

// Symbolize turns return program counters (as in Record.Stack, Holding.Stack
// and Event.Stack, or from runtime.Callers) into frames, innermost first,
// one per call including inlined calls, without lockscope's own lock methods.
func Symbolize(pcs []uintptr) []report.Frame { return stacks.Symbolize(pcs) }

// CallFrames walks a stack of return program counters, innermost first (as
// in Record.Stack, Holding.Stack and Event.Stack, or from runtime.Callers),
// one physical call at a time. For each it yields the call's return program
// counter and its frames, innermost first, one per call including inlined
// calls, the physical function last. Stacks from frame-pointer walks hold
// one PC per physical call; runtime.Callers adds a "virtual" PC per inlined
// caller, which CallFrames folds into the call it belongs to, so both forms
// give the same calls. PCs in no Go function (0, runtime.goexit) are
// skipped; lockscope's own frames are kept. The frames are cached and
// shared: do not modify them.
//
// It is for callers that need the calls themselves (a pprof Location per
// physical PC with a Line per inlined call) or lockscope's frames.
func CallFrames(pcs []uintptr) iter.Seq2[uintptr, []report.Frame] { return stacks.CallFrames(pcs) }

// GoroutineID returns the current goroutine's id, the one events and
// reports name (and Go's stack dumps print).
func GoroutineID() int64 { return events.GoroutineID() }

// SetEventContext installs f to give a context to the wait and hold events
// that have none (the lock was taken with Lock, not LockContext): f receives
// the goroutine that waited or held and returns a context carrying its
// current span, or nil. The exporter installs its table of the spans active
// per goroutine so. f is called on the locking goroutine, only for events
// some subscription wants (waits and holds above a threshold), never on the
// uncontended path; it must be fast, must not block and must not take a
// debugmutex lock. nil removes it.
func SetEventContext(f func(goroutine int64) context.Context) { events.SetEventContext(f) }

// WatchdogNow runs the watchdog's checks at once, in the calling goroutine.
// Tests and the test helper use it rather than waiting for the timer.
func WatchdogNow() { verdict.WatchdogNow() }

// CheckEnd reports, now, what the end of a program makes final: every lock
// held by a goroutine that has exited (a leaked lock), whatever the hold
// threshold, and every goroutine waiting for a lock it holds itself (a
// recursive-locking deadlock), whatever the recursive grace. Then it runs
// the watchdog's usual checks. Locks held by goroutines still alive are not
// reported unless held past the threshold: holding a lock while the program
// ends is no bug. A lock that other goroutines than its locker have
// unlocked before (a baton) is not reported as leaked either.
//
// Call it when the program or a test binary is about to end; Exiting does.
func CheckEnd() { verdict.CheckEnd() }

// Exiting is for the end of main or TestMain: it runs CheckEnd, adds to
// LOCKSCOPE_REPORT_FILE a Repeat line for each problem seen again since its
// report was written (report.Report.Repeat), and runs the functions
// registered with AtExit, the first time it is called, and returns code
// unchanged.
//
//	func TestMain(m *testing.M) { os.Exit(inspect.Exiting(m.Run())) }
//
// Go has no exit hook: a program that ends another way (os.Exit elsewhere,
// log.Fatal) skips it, and its last moments are checked only by the
// watchdog's timer. lockscope test calls it at the end of every test binary
// of the module, after TestMain.
func Exiting(code int) int { return verdict.Exiting(code) }

// AtExit registers f to run in Exiting, after CheckEnd, in the order of
// registration: for the writers of what lockscope recorded (profiles),
// which must see the reports of the end.
func AtExit(f func()) { verdict.AtExit(f) }

// SubscribeOptions says which events a Subscription receives.
type SubscribeOptions struct {
	// MinWait: waits at least this long are delivered (0: none).
	MinWait time.Duration
	// MinHold: holds at least this long are delivered (0: none).
	MinHold time.Duration
	// Reports: deliver every Report.
	Reports bool
	// Buffer is the channel capacity (default 1024). When it is full,
	// events are dropped and counted, never waited for.
	Buffer int
}

// Subscription receives Events; see Subscribe.
type Subscription struct{ s *events.Subscription }

// Subscribe starts delivering events to a new Subscription. Events are
// never waited for: when the channel is full they are dropped and counted
// (Dropped). Close the subscription when done.
func Subscribe(opts SubscribeOptions) *Subscription {
	return &Subscription{events.Subscribe(events.Options(opts))}
}

// C returns the channel events arrive on. It is closed by Close.
func (s *Subscription) C() <-chan report.Event { return s.s.C() }

// Dropped returns how many events did not fit in the channel.
func (s *Subscription) Dropped() uint64 { return s.s.Dropped() }

// Close stops delivery and closes the channel.
func (s *Subscription) Close() { s.s.Close() }
