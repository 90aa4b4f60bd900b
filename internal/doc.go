// Package internal writes down the layers of lockscope's engine, the
// packages below it, as data (like the runtime's lockrank.go), and its
// test checks them: every package imports only packages of lower layers,
// and the packages above the engine reach it as the design says.
//
// From the bottom:
//
//   - config: the settings, from LOCKSCOPE_* and Configure.
//   - rt: what the runtime gives: goroutine ids, frame pointers, the
//     monotonic clock, racy word loads and stores, the engine's own lock
//     ranks, the watchdog's timer and the facts of the runtime's proof.
//   - stacks: stack capture and interning, symbolization, naming locks
//     from the source.
//   - events: subscriptions to notable waits, holds and reports.
//   - record: the lock core, per-goroutine records, the fast paths,
//     sampling, wait registration, the statistics tables.
//   - delivery: reports delivered (standard error, the report file,
//     handlers, events) and the flight recorder.
//   - lockorder: the lock-order graph.
//   - waitfor: the wait-for search.
//   - misuse: copied locks, unlock of unlocked, TryLock livelocks.
//   - verdict: the watchdog, the runtime's proof, the end of the program.
//   - engine: the lock flows (acquire, wait, release) that take a lock
//     call through the layers above in order.
//
// Delivery sits below detection, not above it: a detector delivers what it
// finds at once, from the goroutine that found it (a deadlock is reported
// before the goroutine that closes it blocks), rather than handing reports
// back up through every lock flow.
//
// Above the engine: package debugmutex (the locks) imports the engine and
// verdict; package inspect (what was recorded) imports the layers it reads;
// packages profiler and exporter import inspect and report only; the
// command line imports report only. Package report, the data model, imports
// no other package of lockscope's.
package internal

// Layers lists the engine's packages, lowest first, by path below the
// module's internal directory.
var Layers = []string{
	"config",
	"rt",
	"stacks",
	"events",
	"record",
	"delivery",
	"lockorder",
	"waitfor",
	"misuse",
	"verdict",
	"engine",
}
