package report

import (
	"fmt"
	"strings"
	"time"
)

// Kind says what a Report diagnoses.
type Kind string

// The kinds of Report. Their string values are stable: they appear in JSON
// reports and on the lockscope command line (lockscope report -kind ...).
const (
	// KindDeadlock: goroutines wait for each other in a cycle (including a
	// goroutine waiting for a lock it holds itself). Nothing will ever move.
	KindDeadlock Kind = "deadlock"
	// KindLockOrder: a lock-order inversion. Locks were taken in orders that
	// form a cycle (A then B here, B then A there); the program can deadlock
	// although this run did not.
	KindLockOrder Kind = "lock-order"
	// KindRecursiveRead: RLock of an RWMutex the goroutine already read-holds.
	// It deadlocks as soon as a writer queues between the two RLocks.
	KindRecursiveRead Kind = "recursive-read"
	// KindUnlockUnlocked: Unlock of an unlocked Mutex or RWMutex, or RUnlock
	// of an RWMutex that is not read-locked. sync throws a fatal error next.
	KindUnlockUnlocked Kind = "unlock-of-unlocked"
	// KindLongHold: a lock held longer than the configured threshold.
	KindLongHold Kind = "long-hold"
	// KindLongWait: a goroutine waiting for a lock longer than the threshold.
	KindLongWait Kind = "long-wait"
	// KindLeakedLock: a lock still held by a goroutine that has exited.
	// Nobody can release it any more.
	KindLeakedLock Kind = "leaked-lock"
	// KindCopiedLock: a lock used at an address other than the one it was
	// first used at: it was copied, with its state, after use (go vet's
	// copylocks finds the copies it can see). The copy protects nothing the
	// original protects; a copy made while the original was held is locked
	// with nobody to unlock it.
	KindCopiedLock Kind = "copied-lock"
	// KindLivelock: goroutines spinning on TryLock of each other's locks,
	// each holding what the other tries for, for a second or more.
	KindLivelock Kind = "livelock"
)

// Kinds lists every Kind, in the order reports document them.
var Kinds = []Kind{KindDeadlock, KindLockOrder, KindRecursiveRead, KindUnlockUnlocked,
	KindLongHold, KindLongWait, KindLeakedLock, KindCopiedLock, KindLivelock}

// Report is one diagnosis. Reports are values: they are printed to standard
// error, written as JSON lines (one Report per line) to the file named by
// LOCKSCOPE_REPORT_FILE, passed to handlers registered with OnReport, and
// exported as span events by package exporter.
type Report struct {
	// Kind says what was found.
	Kind Kind `json:"kind"`
	// Summary is a one-line description naming the locks and goroutines.
	Summary string `json:"summary"`
	// Time is when the problem was first seen.
	Time time.Time `json:"time"`
	// Count is how many times this problem (same kind, same sites) was seen
	// before this report was made; later repeats are counted, not printed.
	Count int `json:"count"`
	// Key identifies the problem for de-duplication: same kind, same locks'
	// sites, same acquisition sites.
	Key string `json:"key"`
	// Locks are the locks involved.
	Locks []LockRef `json:"locks"`
	// Goroutines are the goroutines involved, with their stacks.
	Goroutines []GoroutineRef `json:"goroutines"`
	// Edges, for KindLockOrder, are the lock-order edges of the cycle: for
	// each, where the second lock was taken while the first was held.
	Edges []Edge `json:"edges,omitempty"`
	// Repeat marks a line of LOCKSCOPE_REPORT_FILE that is no new problem:
	// it adds Count repeats to the report of the same Key written before
	// it, and has no goroutines or edges of its own. Exiting writes one for
	// each problem seen again since its report was written, so that the
	// file's counts are the program's.
	Repeat bool `json:"repeat,omitempty"`
}

// LockRef names a lock in a report.
type LockRef struct {
	// ID is unique for the life of the process; a new lock at a recycled
	// address gets a new ID.
	ID uint64 `json:"id"`
	// Name is the name given with SetName, or else the site where the lock
	// was first acquired ("pkg.(*T).Method at file.go:123").
	Name string `json:"name"`
	// Type is "Mutex", "RWMutex", "Once", or "OnceFunc" (the Once of a
	// function OnceFunc, OnceValue or OnceValues returned).
	Type string `json:"type"`
	// Class is the lock's class (see debugmutex.SetClass): its declaration
	// qualified by package path, "example.com/store.DB.mu"; "" if it has
	// none.
	Class string `json:"class,omitempty"`
}

// GoroutineRef is a goroutine's part in a report.
type GoroutineRef struct {
	// ID is the goroutine id, as printed in Go's own stack dumps.
	ID int64 `json:"id"`
	// Role says what the goroutine does in this report, e.g. "waits for
	// write lock", "holds", "unlocks".
	Role string `json:"role"`
	// Lock is the name of the lock the role refers to.
	Lock string `json:"lock,omitempty"`
	// For is how long the goroutine has held or waited for Lock, if known.
	For time.Duration `json:"for,omitempty"`
	// Stack is where the goroutine is now (for waiters and unlockers) or
	// where it acquired Lock (for holders), innermost frame first.
	Stack []Frame `json:"stack,omitempty"`
	// Current is, for holders, where the holder is now, and State what the
	// runtime says it is doing ("chan receive", "sync.Mutex.Lock",
	// "running"...), as in a goroutine dump's header.
	Current []Frame `json:"current,omitempty"`
	State   string  `json:"state,omitempty"`
	// Exited is true when the goroutine no longer exists.
	Exited bool `json:"exited,omitempty"`
	// SiteOnly is true when Stack is a holder's acquire site alone: the
	// hold was not sampled, so its stack was not captured
	// (LOCKSCOPE_SAMPLING=1 captures every one).
	SiteOnly bool `json:"site_only,omitempty"`
	// Below, when SiteOnly, says where the frames after the acquire site
	// come from: another stack of the same goroutine, captured while it
	// still held the lock, that passes through the acquire site's function
	// (see CompleteSiteOnly). "" when Stack is the site alone.
	Below string `json:"below,omitempty"`
}

// Edge is one lock-order edge: lock To was acquired while From was held.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Goroutine is the goroutine that first took this order.
	Goroutine int64 `json:"goroutine"`
	// FromStack is where From was acquired; ToStack is where To was then
	// acquired while From was held. Both innermost frame first.
	FromStack []Frame `json:"from_stack,omitempty"`
	ToStack   []Frame `json:"to_stack,omitempty"`
	// FromSiteOnly is true when FromStack is From's acquire site alone (see
	// GoroutineRef.SiteOnly).
	FromSiteOnly bool `json:"from_site_only,omitempty"`
	// FromBelow is Below (see GoroutineRef) for FromStack.
	FromBelow string `json:"from_below,omitempty"`
}

// Frame is one symbolised stack frame. Inlined calls have frames of their own.
type Frame struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
}

// String formats f as "function\n\tfile:line", like a Go stack dump.
func (f Frame) String() string {
	return fmt.Sprintf("%s\n      %s:%d", f.Function, f.File, f.Line)
}

// Site formats f on one line: "function at file.go:line" (base file name).
func (f Frame) Site() string {
	file := f.File
	if i := strings.LastIndexByte(file, '/'); i >= 0 {
		file = file[i+1:]
	}
	return fmt.Sprintf("%s at %s:%d", f.Function, file, f.Line)
}

const reportRule = "=================="

// String formats r as the readable block lockscope prints to standard error,
// in the tone of the race detector's reports.
func (r *Report) String() string {
	var b strings.Builder
	b.WriteString(reportRule + "\n")
	fmt.Fprintf(&b, "LOCKSCOPE: %s\n", r.Summary)
	if r.Count > 1 {
		fmt.Fprintf(&b, "(seen %d times)\n", r.Count)
	}
	for _, g := range r.Goroutines {
		b.WriteString("\n")
		fmt.Fprintf(&b, "Goroutine %d %s", g.ID, g.Role)
		if g.Lock != "" {
			fmt.Fprintf(&b, " %s", g.Lock)
		}
		if g.For > 0 {
			fmt.Fprintf(&b, " (for %v)", g.For.Round(time.Microsecond))
		}
		if g.Exited {
			b.WriteString(" [goroutine has exited]")
		}
		b.WriteString(":\n")
		writeStack(&b, g.Stack)
		if g.SiteOnly {
			b.WriteString(siteOnly(g.Below))
		}
		if len(g.Current) > 0 {
			if g.State != "" {
				fmt.Fprintf(&b, "  and is now [%s] at:\n", g.State)
			} else {
				fmt.Fprintf(&b, "  and is now at:\n")
			}
			writeStack(&b, g.Current)
		}
	}
	for _, e := range r.Edges {
		b.WriteString("\n")
		fmt.Fprintf(&b, "Lock order %s -> %s, first taken by goroutine %d:\n", e.From, e.To, e.Goroutine)
		fmt.Fprintf(&b, "  %s acquired at:\n", e.From)
		writeStack(&b, e.FromStack)
		if e.FromSiteOnly {
			b.WriteString(siteOnly(e.FromBelow))
		}
		fmt.Fprintf(&b, "  then %s acquired at:\n", e.To)
		writeStack(&b, e.ToStack)
	}
	if len(r.Locks) > 0 {
		b.WriteString("\nLocks:\n")
		// Locks of more than one package (a dependency's and the
		// module's, say) are told apart by their classes, which carry
		// package paths.
		pkgs := map[string]bool{}
		for _, l := range r.Locks {
			pkgs[ClassPackage(l.Class)] = true
		}
		for _, l := range r.Locks {
			if len(pkgs) > 1 && l.Class != "" {
				fmt.Fprintf(&b, "  %s (%s #%d, class %s)\n", l.Name, l.Type, l.ID, l.Class)
			} else {
				fmt.Fprintf(&b, "  %s (%s #%d)\n", l.Name, l.Type, l.ID)
			}
		}
	}
	b.WriteString(reportRule + "\n")
	return b.String()
}

// siteOnly is the note that follows a holder's stack that is its acquire
// site alone, or that site and the frames below it from another stack of
// the goroutine (below).
func siteOnly(below string) string {
	if below != "" {
		return "      (the acquire site, then the frames below it in " + below + ": this hold was not sampled; LOCKSCOPE_SAMPLING=1 records every acquire stack)\n"
	}
	return "      (the acquire site only: this hold was not sampled; LOCKSCOPE_SAMPLING=1 records every acquire stack)\n"
}

// CompleteSiteOnly gives each stack of r that is a hold's acquire site
// alone (a hold that was not sampled) the frames below that site, where
// another stack of the same goroutine, taken while it held the lock,
// passes through the site's function: the inner lock's acquire stack of a
// lock-order edge, the goroutine's wait in a deadlock, where it is now for
// a long hold. The frames after that function in the other stack are the
// callers of the acquisition, unless the function returned and was called
// again while the lock stayed held, which Below's wording leaves open.
func (r *Report) CompleteSiteOnly() {
	for i := range r.Edges {
		e := &r.Edges[i]
		if e.FromSiteOnly && e.FromBelow == "" && len(e.FromStack) == 1 {
			if below, ok := framesBelow(e.FromStack[0], e.ToStack); ok {
				e.FromStack = append(e.FromStack, below...)
				e.FromBelow = "the stack where it then took " + e.To
			}
		}
	}
	for i := range r.Goroutines {
		g := &r.Goroutines[i]
		if !g.SiteOnly || g.Below != "" || len(g.Stack) != 1 {
			continue
		}
		if below, ok := framesBelow(g.Stack[0], g.Current); ok {
			g.Stack, g.Below = append(g.Stack, below...), "its stack now"
			continue
		}
		for _, o := range r.Goroutines {
			if o.ID == g.ID && !o.SiteOnly && strings.HasPrefix(o.Role, "waits") {
				if below, ok := framesBelow(g.Stack[0], o.Stack); ok {
					g.Stack, g.Below = append(g.Stack, below...), "its wait for "+o.Lock
					break
				}
			}
		}
	}
}

// framesBelow returns the frames of other after the first frame in the
// function and file of site, and whether there are any.
func framesBelow(site Frame, other []Frame) ([]Frame, bool) {
	for i, f := range other {
		if f.Function == site.Function && f.File == site.File {
			return append([]Frame(nil), other[i+1:]...), i+1 < len(other)
		}
	}
	return nil, false
}

func writeStack(b *strings.Builder, stack []Frame) {
	if len(stack) == 0 {
		b.WriteString("      (stack not recorded)\n")
		return
	}
	for _, f := range stack {
		if strings.HasPrefix(f.Function, "created by ") {
			fmt.Fprintf(b, "      %s\n          %s:%d\n", f.Function, f.File, f.Line)
			continue
		}
		fmt.Fprintf(b, "      %s()\n          %s:%d\n", f.Function, f.File, f.Line)
	}
}

// Action is what happens after a report has been delivered.
type Action int

// ExitCode is the status the Exit action exits with.
const ExitCode = 66

const (
	// Continue: carry on (the default). The program is never killed by default.
	Continue Action = iota
	// Panic: panic in the goroutine that made the report, with the Report
	// as value (the watchdog's reports are delivered without panicking).
	Panic
	// Exit: exit the process with status 66 after the report is written.
	Exit
)
