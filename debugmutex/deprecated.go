package debugmutex

import (
	"context"
	"io"
	"iter"

	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// The names below moved out of debugmutex, which keeps only sync's API and
// what a program calls on its own locks: the data model of what lockscope
// tells to package report, the reading of what it recorded to package
// inspect. They keep working as forwards for this release and will be
// removed in the next.

// Deprecated forwards to package report.
type (
	// Deprecated: use report.Report.
	Report = report.Report
	// Deprecated: use report.Kind.
	Kind = report.Kind
	// Deprecated: use report.LockRef.
	LockRef = report.LockRef
	// Deprecated: use report.GoroutineRef.
	GoroutineRef = report.GoroutineRef
	// Deprecated: use report.Edge.
	Edge = report.Edge
	// Deprecated: use report.Frame.
	Frame = report.Frame
	// Deprecated: use report.Mode.
	Mode = report.Mode
	// Deprecated: use report.LockInfo.
	LockInfo = report.LockInfo
	// Deprecated: use report.Holding.
	Holding = report.Holding
	// Deprecated: use report.Waiting.
	Waiting = report.Waiting
	// Deprecated: use report.State.
	State = report.State
	// Deprecated: use report.StatKind.
	StatKind = report.StatKind
	// Deprecated: use report.Record.
	Record = report.Record
	// Deprecated: use report.LockStat.
	LockStat = report.LockStat
	// Deprecated: use report.EventKind.
	EventKind = report.EventKind
	// Deprecated: use report.Event.
	Event = report.Event
	// Deprecated: use report.Dropped.
	Dropped = report.Dropped
	// Deprecated: use inspect.SubscribeOptions.
	SubscribeOptions = inspect.SubscribeOptions
	// Deprecated: use inspect.Subscription.
	Subscription = inspect.Subscription
)

// Deprecated forwards to package report.
const (
	// Deprecated: use report.KindDeadlock.
	KindDeadlock = report.KindDeadlock
	// Deprecated: use report.KindLockOrder.
	KindLockOrder = report.KindLockOrder
	// Deprecated: use report.KindRecursiveRead.
	KindRecursiveRead = report.KindRecursiveRead
	// Deprecated: use report.KindUnlockUnlocked.
	KindUnlockUnlocked = report.KindUnlockUnlocked
	// Deprecated: use report.KindLongHold.
	KindLongHold = report.KindLongHold
	// Deprecated: use report.KindLongWait.
	KindLongWait = report.KindLongWait
	// Deprecated: use report.KindLeakedLock.
	KindLeakedLock = report.KindLeakedLock
	// Deprecated: use report.KindCopiedLock.
	KindCopiedLock = report.KindCopiedLock
	// Deprecated: use report.KindLivelock.
	KindLivelock = report.KindLivelock
	// Deprecated: use report.Write.
	Write = report.Write
	// Deprecated: use report.Read.
	Read = report.Read
	// Deprecated: use report.StatWait.
	StatWait = report.StatWait
	// Deprecated: use report.StatWaitByHolder.
	StatWaitByHolder = report.StatWaitByHolder
	// Deprecated: use report.StatHold.
	StatHold = report.StatHold
	// Deprecated: use report.StatTryFail.
	StatTryFail = report.StatTryFail
	// Deprecated: use report.EventWait.
	EventWait = report.EventWait
	// Deprecated: use report.EventHold.
	EventHold = report.EventHold
	// Deprecated: use report.EventReport.
	EventReport = report.EventReport
	// Deprecated: use report.ExitCode.
	ExitCode = report.ExitCode
)

// Deprecated: use report.Kinds.
var Kinds = report.Kinds

// Deprecated forwards to package inspect.
const (
	// Deprecated: use inspect.EnvSwitch.
	EnvSwitch = inspect.EnvSwitch
	// Deprecated: use inspect.EnvHoldThreshold.
	EnvHoldThreshold = inspect.EnvHoldThreshold
	// Deprecated: use inspect.EnvWaitThreshold.
	EnvWaitThreshold = inspect.EnvWaitThreshold
	// Deprecated: use inspect.EnvReportFile.
	EnvReportFile = inspect.EnvReportFile
	// Deprecated: use inspect.EnvOnReport.
	EnvOnReport = inspect.EnvOnReport
	// Deprecated: use inspect.EnvQuiet.
	EnvQuiet = inspect.EnvQuiet
	// Deprecated: use inspect.EnvSampling.
	EnvSampling = inspect.EnvSampling
	// Deprecated: use inspect.EnvRecursiveGrace.
	EnvRecursiveGrace = inspect.EnvRecursiveGrace
	// Deprecated: use inspect.EnvProof.
	EnvProof = inspect.EnvProof
	// Deprecated: use inspect.EnvTraceDir.
	EnvTraceDir = inspect.EnvTraceDir
	// Deprecated: use inspect.TraceWindow.
	TraceWindow = inspect.TraceWindow
)

// Deprecated: use inspect.Snapshot.
func Snapshot() State { return inspect.Snapshot() }

// Deprecated: use inspect.Records.
func Records() []Record { return inspect.Records() }

// Deprecated: use inspect.LockStats.
func LockStats() []LockStat { return inspect.LockStats() }

// Deprecated: use inspect.SortLockStats.
func SortLockStats(ls []LockStat) { inspect.SortLockStats(ls) }

// Deprecated: use inspect.Reports.
func Reports() []Report { return inspect.Reports() }

// Deprecated: use inspect.OnReport.
func OnReport(h func(Report)) (unregister func()) { return inspect.OnReport(h) }

// Deprecated: use inspect.SetOutput.
func SetOutput(w io.Writer) { inspect.SetOutput(w) }

// Deprecated: use inspect.Subscribe.
func Subscribe(opts SubscribeOptions) *Subscription { return inspect.Subscribe(opts) }

// Deprecated: use inspect.SetEventContext.
func SetEventContext(f func(goroutine int64) context.Context) { inspect.SetEventContext(f) }

// Deprecated: use inspect.GoroutineID.
func GoroutineID() int64 { return inspect.GoroutineID() }

// Deprecated: use inspect.Symbolize.
func Symbolize(pcs []uintptr) []Frame { return inspect.Symbolize(pcs) }

// Deprecated: use inspect.CallFrames.
func CallFrames(pcs []uintptr) iter.Seq2[uintptr, []Frame] { return inspect.CallFrames(pcs) }

// Deprecated: use inspect.DroppedCounts.
func DroppedCounts() Dropped { return inspect.DroppedCounts() }

// Deprecated: use inspect.WatchdogNow.
func WatchdogNow() { inspect.WatchdogNow() }

// Deprecated: use inspect.CheckEnd.
func CheckEnd() { inspect.CheckEnd() }

// Deprecated: use inspect.Exiting.
func Exiting(code int) int { return inspect.Exiting(code) }

// Deprecated: use inspect.AtExit.
func AtExit(f func()) { inspect.AtExit(f) }

// Deprecated: use inspect.RecordTraces.
func RecordTraces(dir string) (stop func(), err error) { return inspect.RecordTraces(dir) }

// Deprecated: use inspect.ReportAction.
func ReportAction() Action { return inspect.ReportAction() }
