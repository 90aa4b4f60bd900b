package verdict

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lockscope/lockscope/internal/config"
	"github.com/lockscope/lockscope/internal/delivery"
	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/internal/waitfor"
	"github.com/lockscope/lockscope/report"
)

// Verdicts the runtime proves.
//
// Go's goroutine leak profile (Go 1.27; Go 1.26 built with
// GOEXPERIMENT=goroutineleakprofile) runs a garbage collection that marks
// from runnable goroutines only, and reports the goroutines blocked on
// channels, selects, WaitGroups, Conds and mutexes that nothing runnable can
// reach: blocked forever, proven. lockscope knows who holds and who waits
// for which of its locks; together they decide, without a threshold:
//
//   - a goroutine that has waited for a lock longer than proofDelay, and is
//     proven blocked forever, is reported as a deadlock with the whole
//     chain: the lock, its holder, what the holder waits for in turn, and
//     where the last goroutine of the chain is blocked (channel, select,
//     WaitGroup, Cond, another lock) or that it has exited;
//   - a goroutine waiting for a lock it holds itself is reported as soon as
//     it is proven blocked forever, and never while anything runnable (a
//     goroutine holding the baton, a pending timer's function) can still
//     unlock it: the recursive grace does not apply, except to a lock that
//     is a package variable, which the runtime always reaches (staticAddr):
//     that self-wait is reported when the grace ends, as without the proof;
//   - the watchdog's long-hold reports say when the holder is proven
//     blocked forever.
//
// The proof costs a garbage collection cycle (plus, when the runtime finds
// goroutines leaked that it had not before, a goroutine dump, which stops
// the world: about 30 ms and 60-130 ms with 10,000 goroutines alive, see
// BenchmarkProofConsultation10kGoroutines), so the watchdog asks for it
// (consultProof) only when a
// wait has outlasted proofDelay or a goroutine waits for itself, at most
// once per proofMinInterval, or 20 times the last consultation's cost if
// that is longer; a set of candidates already asked about is asked about
// again at doubling intervals, up to proofMaxInterval. Locks, waits and
// holds that never outlast the delay cost nothing.
//
// A lock the program can still reach from a package variable or from a
// runnable goroutine is never proven stuck (the runtime cannot tell that
// nobody will unlock it): such hangs are reported when the thresholds run
// out, as they are where the proof is unavailable (Go 1.26 without the
// experiment). There, lockscope says once how to get it (proofHint).
//
// Correctness rests on lockscope not keeping user locks reachable: its
// records hold locks by address (uintptr) and id, never by pointer (issue
// 11; goroutineleak_test.go), and the watchdog holds no pointer to a user
// lock while it consults.

var (
	// Guarded by watchdogRunMu (consultations happen in watchdog rounds).
	ProofLast     int64 // nanotime the last consultation began, 0 if none
	proofCost     int64 // how long it took
	proofInterval int64 // the current interval for unchanged candidates
	// proofLeaked are the goroutines the last dump showed leaked, and
	// proofDumped how many: while the count stays the same no dump is
	// needed to know who is.
	proofLeaked = map[int64]bool{}
	ProofDumped int

	// ProofConsultations counts consultations, for tests and benchmarks.
	ProofConsultations atomic.Int64
	proofHinted        atomic.Bool
)

// proofCand is a wait the proof is asked about.
type proofCand struct {
	w     *record.Waiter
	goid  int64
	since int64
}

// ConsultProof asks the runtime which goroutines are blocked forever, if
// the rate limit allows (it brings next forward to when it will). cands are
// the waits asking, if any (else only long holds, which take a dump
// anyway); fresh says whether some were not asked about before. It reports
// whether it consulted, and returns a goroutine dump if one was needed to
// name the leaked goroutines (nil: none of cands is leaked), and whether
// the dump is complete. The dump, which stops the world for as long as it
// takes to print every goroutine's stack, is taken only when the runtime
// has found goroutines leaked that the last dump did not show, or when a
// candidate is one the last dump showed. Called by the watchdog, holding
// watchdogRunMu and no other lockscope lock, and no pointer to a user lock
// (it would keep the lock reachable, and its waiters unproven).
func ConsultProof(now int64, cands []proofCand, fresh bool, next *int64) (consulted bool, dump goroutineTable, complete bool) {
	waits := len(cands) > 0
	gap := max(int64(rt.ProofMinInterval), rt.ProofCostFactor*proofCost)
	wait := gap
	if waits && !fresh {
		wait = max(gap, proofInterval)
	}
	if ProofLast != 0 && now-ProofLast < wait {
		if waits {
			if d := ProofLast + wait - now; d < *next {
				*next = d
			}
		}
		return false, nil, false
	}
	if waits && !fresh {
		proofInterval = min(max(2*proofInterval, gap), int64(rt.ProofMaxInterval))
	} else {
		proofInterval = gap
	}
	start := rt.Nanotime()
	ProofLast = start
	ProofConsultations.Add(1)
	n, err := rt.LeakCount()
	defer func() { proofCost = rt.Nanotime() - start }()
	if err != nil {
		return false, nil, false
	}
	need := n > ProofDumped
	for _, c := range cands {
		need = need || proofLeaked[c.goid]
	}
	if !need {
		return true, nil, false
	}
	dump, complete = liveGoroutines()
	clear(proofLeaked)
	for id, b := range dump {
		if b.leaked {
			proofLeaked[id] = true
		}
	}
	ProofDumped = len(proofLeaked)
	return true, dump, complete
}

// proofVerdicts decides the candidate waits with the dump d. Callers hold
// gtableMu and waitMu (exclusive).
func proofVerdicts(cands []proofCand, d goroutineTable) []*report.Report {
	var out []*report.Report
	for _, c := range cands {
		w := c.w
		if !w.Active.Load() || w.Since != c.since || atomic.LoadInt64(&w.G.Goid) != c.goid {
			continue // the wait ended since it was listed
		}
		w.Consulted = c.since
		if b, ok := d[c.goid]; d == nil || !ok || !b.leaked {
			continue
		}
		// Blocked forever: whatever the chain says, this wait is decided.
		w.Proven = true
		w.ReportedLong = true
		if w.SelfWait {
			out = append(out, provenSelfWait(w, d))
		} else if r := provenReport(w, d); r != nil {
			out = append(out, r)
		}
	}
	return out
}

// A link of a proven chain: goroutine w waits for a lock held by holder.
type proofLink struct {
	w      *record.Waiter
	holder int64
}

// provenReport describes the proven-endless wait w: the chain of lockscope
// waits from it through the locks' holders, and the last goroutine's state.
// It returns nil if w is on a wait-for cycle of two or more (reported by
// the cycle check when it closed). waitMu held (exclusive).
func provenReport(w *record.Waiter, d goroutineTable) *report.Report {
	var chain []proofLink
	seen := map[int64]bool{w.G.Goid: true}
	var end string // how the chain ends, for the summary
	var last int64 // the goroutine the chain ends at, 0 if none
	cur := w
	for hops := 0; ; hops++ {
		c := cur.Core()
		h := rt.LdInt64(&c.Holder)
		chain = append(chain, proofLink{w: cur, holder: h})
		if h == 0 {
			if cur.Typ == record.RwMutexType {
				end = "which is read-locked"
			} else {
				end = "which no goroutine lockscope knows holds"
			}
			break
		}
		if seen[h] {
			if h != w.G.Goid {
				end = "which is on a deadlocked cycle"
				break
			}
			if len(chain) > 1 {
				return nil // w is on the cycle: reported when it closed
			}
			return provenSelfWait(w, d)
		}
		seen[h] = true
		hg := record.FindG(h)
		if hg != nil && hg.Wait.Active.Load() && hg.Wait.G == hg && hops < 64 {
			cur = &hg.Wait
			continue
		}
		last = h
		break
	}

	metas := make([]*record.LockMeta, len(chain))
	for i, l := range chain {
		metas[i] = l.w.Meta
	}
	names := waitfor.DisplayNames(metas)
	r := &report.Report{Kind: report.KindDeadlock, Time: rt.WallTime(w.Since)}
	var parts []string
	for i, l := range chain {
		name := names[l.w.Meta.Id]
		part := fmt.Sprintf("goroutine %d waits for %s %s", l.w.G.Goid, l.w.Wants(), name)
		if i > 0 {
			part = fmt.Sprintf("which waits for %s %s", l.w.Wants(), name)
		}
		if l.holder != 0 && l.w.IsOnce() {
			part += fmt.Sprintf(", whose function goroutine %d is running", l.holder)
		} else if l.holder != 0 {
			part += fmt.Sprintf(" held by goroutine %d", l.holder)
			if l.w.Core().HandedOff() {
				part += " (last locker: the lock has been unlocked by other goroutines than its lockers)"
			}
		}
		parts = append(parts, part)
		r.Locks = waitfor.AppendLock(r.Locks, l.w.Meta, name)
		ref := report.GoroutineRef{
			ID: l.w.G.Goid, Role: "waits for " + l.w.Wants(), Lock: name,
			For: record.DurationNS(rt.Nanotime() - l.w.Since), Stack: stacks.StackFrames(l.w.Stack),
		}
		if b, ok := d.get(l.w.G.Goid); ok {
			ref.State = b.state
		}
		r.Goroutines = append(r.Goroutines, ref)
		if l.holder != 0 {
			hold := report.GoroutineRef{ID: l.holder, Role: waitfor.HolderRole(l.w), Lock: name}
			if hg := record.FindG(l.holder); hg != nil {
				hold.Stack, hold.SiteOnly = waitfor.HoldStackOf(hg, l.w.Lock, l.w.LockID)
			}
			if l.holder == last {
				if b, ok := d.get(last); ok {
					hold.Current, hold.State = b.frames, b.state
					end = blockedHow(b)
				} else {
					hold.Exited = true
					end = "which has exited without unlocking it"
				}
			}
			r.Goroutines = append(r.Goroutines, hold)
		}
	}
	r.Summary = "deadlock: " + strings.Join(parts, ", ") + ", " + end +
		"; the runtime proves goroutine " + fmt.Sprint(w.G.Goid) + " blocked forever"
	r.Key = string(report.KindDeadlock) + "|proven|" + stacks.KeySite(w.Stack, w.Pc1, w.Pc2) + "|" + endKey(last, d)
	return r
}

// provenSelfWait is the self-wait report of a wait proven endless.
func provenSelfWait(w *record.Waiter, d goroutineTable) *report.Report {
	r := waitfor.SelfWaitReport(w)
	r.Summary += "; the runtime proves it blocked forever"
	if b, ok := d.get(w.G.Goid); ok && len(r.Goroutines) > 0 {
		r.Goroutines[0].State = b.state
	}
	return r
}

// blockedHow says where the dumped goroutine b is blocked.
func blockedHow(b goroutineDump) string {
	state := strings.TrimSuffix(b.state, " (leaked)")
	how := "which is [" + state + "]"
	if b.leaked {
		how = "which is blocked forever [" + state + "]"
	}
	if f, ok := userFrame(b.frames); ok {
		how += " at " + f.Site()
	}
	return how
}

// endKey identifies where a proven chain ends, for the report's key.
func endKey(last int64, d goroutineTable) string {
	if last == 0 {
		return "-"
	}
	b, ok := d.get(last)
	if !ok {
		return "exited"
	}
	if f, ok := userFrame(b.frames); ok {
		return f.Site()
	}
	return b.state
}

// userFrame returns the innermost frame of a dumped stack that is the
// program's: not the runtime's, sync's or lockscope's.
func userFrame(frames []report.Frame) (report.Frame, bool) {
	for _, f := range frames {
		fn := f.Function
		if strings.HasPrefix(fn, "created by ") {
			break
		}
		if strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "sync.") ||
			strings.HasPrefix(fn, "internal/") || stacks.IsInternalFunc(fn) {
			continue
		}
		return f, true
	}
	return report.Frame{}, false
}

// proofHint says, once, how to have hangs proven where the proof is
// unavailable: at the first decision it would have made.
func proofHint() {
	if !proofHinted.CompareAndSwap(false, true) || config.Cfg.Quiet.Load() {
		return
	}
	how := "build or run the program with GOEXPERIMENT=goroutineleakprofile (Go 1.26), or with Go 1.27 or later"
	if rt.ProofDisabled.Load() && rt.LeakCount != nil {
		how = "unset " + config.EnvProof + ", which turns it off"
	}
	msg := fmt.Sprintf("lockscope: hangs are reported when thresholds run out (a goroutine waiting for a lock it holds after %v, any wait after %v, a hold after %v): "+
		"this program (%s) has no goroutine leak profile, the runtime's proof that a goroutine is blocked forever, which would report them within a second; to have it, %s.\n",
		time.Duration(config.Cfg.RecursiveGrace.Load()), time.Duration(config.Cfg.WaitThreshold.Load()), time.Duration(config.Cfg.HoldThreshold.Load()),
		runtime.Version(), how)
	delivery.Table.Mu.Lock()
	out := delivery.Table.Stderr
	delivery.Table.Mu.Unlock()
	delivery.Table.OutMu.Lock()
	fmt.Fprint(out, msg)
	delivery.Table.OutMu.Unlock()
}
