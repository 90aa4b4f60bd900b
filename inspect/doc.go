// Package inspect reads what lockscope's locks have recorded: the locks held
// and awaited now (Snapshot), the aggregated statistics (Records, LockStats),
// the problems reported (Reports, OnReport), a stream of notable waits,
// holds and reports (Subscribe), what bounded tables dropped
// (DroppedCounts), and the end-of-program checks (CheckEnd, Exiting). It is
// for tools and tests: packages profiler and exporter are built on it, and
// package debugmutex/locktest uses it to fail tests.
//
// The values it returns are package report's data model. Importing inspect
// has no side effect of its own; the locks themselves are package
// debugmutex's.
package inspect
