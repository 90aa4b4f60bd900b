package verdict

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"strconv"
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

// The watchdog looks at held and awaited locks on a timer: holds and waits
// past their thresholds, goroutines waiting for a lock they hold themselves
// past the recursive grace, locks held by goroutines that have exited, and
// the slots of exited goroutines when the record table fills up.
//
// It is a time.AfterFunc timer created during package initialisation, never
// a goroutine of its own: no goroutine of lockscope's is alive between runs
// (so goroutine-leak checkers see none), and the timer is never created
// inside a testing/synctest bubble (it would belong to the bubble and keep
// it from ending). Each run reschedules it, from its own goroutine, outside
// any bubble; a lock call inside a bubble may bring it forward with Reset,
// which is allowed on a timer that is not the bubble's.

const (
	WatchdogMaxInterval = time.Second
	reclaimInterval     = 10 * time.Second
)

// LastReclaim is the nanotime of the last reclamation, and lastSurvivors the
// records it left (guarded by gtableMu).
var LastReclaim, LastSurvivors int64

func init() {
	if config.Disabled {
		return
	}
	// The first run comes at the hold threshold when that is shorter than
	// the interval: a short program (a test binary) with a short threshold
	// is looked at before it ends.
	first := WatchdogMaxInterval
	if t := time.Duration(config.Cfg.HoldThreshold.Load()); t > 0 && t < first {
		first = t
	}
	rt.WatchdogMu.Lock()
	rt.WatchdogNext = rt.Nanotime() + int64(first)
	rt.WatchdogTimer = time.AfterFunc(first, watchdogRun)
	rt.WatchdogMu.Unlock()
}

// WatchdogNow runs the watchdog's checks at once, in the calling goroutine.
// Tests and the test helper use it rather than waiting for the timer.
func WatchdogNow() { WatchdogCheck() }

// WatchdogRuns counts the timer's runs, for tests.
var WatchdogRuns atomic.Int64

func watchdogRun() {
	WatchdogRuns.Add(1)
	next := WatchdogCheck()
	rt.WatchdogMu.Lock()
	rt.WatchdogNext = rt.Nanotime() + int64(next)
	rt.WatchdogTimer.Reset(next)
	rt.WatchdogMu.Unlock()
}

var WatchdogRunMu rt.RankedMutex[rt.RWatchdogRun]

// holdKey identifies one hold across watchdog runs: a lock taken by a
// goroutine at a time.
type holdKey struct {
	goid  int64
	lock  uint64
	start int64
}

// holdSeen is what the watchdog remembers of a long hold it has reported,
// so that a hold held forever costs one goroutine dump, not one per run.
type holdSeen struct {
	recheckAt int64 // nanotime of the next look
	exited    bool  // reported as leaked: nothing more to learn
	tick      uint64
}

// WatchdogBeforeDump, when set (by tests), runs between the listing of
// long holds and the goroutine dump: the window in which a holder may
// unlock and exit.
var WatchdogBeforeDump func()

var (
	holdsSeen = map[holdKey]*holdSeen{} // guarded by watchdogRunMu
	watchTick uint64                    // guarded by watchdogRunMu
	// GoroutineDumps counts the goroutine dumps (stop-the-world) the
	// watchdog has taken, for tests and benchmarks.
	GoroutineDumps atomic.Int64
)

type longHold struct {
	g     int64
	e     *record.HeldEntry
	gen   uint32
	lock  uint64
	start int64
	age   int64
	seen  *holdSeen
}

// still reports whether the hold h is still the hold it was when listed.
func (h *longHold) still() bool {
	e := h.e
	return e.Live() && rt.LdUint32(&e.Gen) == h.gen && record.LdUint64(&e.LockID) == h.lock && rt.LdInt64(&e.Start) == h.start
}

// WatchdogCheck does one round and returns when the next should be.
func WatchdogCheck() time.Duration {
	WatchdogRunMu.Lock()
	defer WatchdogRunMu.Unlock()
	watchTick++
	now := rt.Nanotime()
	next := int64(WatchdogMaxInterval)
	holdT := config.Cfg.HoldThreshold.Load()
	waitT := config.Cfg.WaitThreshold.Load()
	// A hold or wait that begins after this run is unknown to it: look again
	// within half a threshold, so that it is reported at most 1.5 thresholds
	// after it began.
	for _, t := range []int64{holdT, waitT} {
		if t > 0 && t/2 < next {
			next = t / 2
		}
	}
	var found []*report.Report
	var long []longHold
	// The runtime's proof (leakproof.go): where it is available it decides
	// the waits that outlast a short delay and the self-waits, and the
	// recursive grace does not apply.
	proofOn := rt.ProofAvailable()
	var cands []proofCand
	fresh := false

	record.GtableMu.Lock()
	// Waiters: self-waits past grace, waits past threshold.
	record.WaitMu.Lock()
	// The goroutines blocked for good in a reported deadlock (a cycle, or
	// a wait the runtime proved endless): the long waits and holds they
	// cause, theirs and those of goroutines waiting for their locks, are
	// that report's, not new ones.
	deadlocked := map[int64]bool{}
	for id, since := range waitfor.Deadlocked {
		if g := record.FindG(id); g == nil || !g.Wait.Active.Load() || g.Wait.Since != since {
			delete(waitfor.Deadlocked, id)
		} else {
			deadlocked[id] = true
		}
	}
	if record.Nwaiting.Load() > 0 {
		record.ForEachG(func(id int64, g *record.Gstate) {
			if w := &g.Wait; w.Active.Load() && w.Proven {
				deadlocked[id] = true
			}
		})
	}
	if record.Nwaiting.Load() > 0 {
		record.ForEachG(func(id int64, g *record.Gstate) {
			w := &g.Wait
			if !w.Active.Load() {
				return
			}
			// A self-wait on a package variable is left to the grace:
			// the runtime always reaches the lock, so it never proves it.
			if !w.Proven && w.G == g && !(w.SelfWait && w.Static) {
				due := w.Since + int64(rt.ProofDelay)
				if w.SelfWait {
					due = w.Since + int64(rt.SelfWaitProofDelay)
				}
				if now >= due {
					cands = append(cands, proofCand{w: w, goid: id, since: w.Since})
					fresh = fresh || w.Consulted != w.Since
				} else if d := due - now; d < next {
					next = d
				}
			}
			if w.SelfWait && (!proofOn || w.Static) {
				if now >= w.SelfSeq {
					c := w.Core()
					if !c.HandedOff() && (rt.LdInt64(&c.Holder) == w.G.Goid || w.G.FindHeldAny(w.Lock, w.LockID, report.Read) != nil) {
						found = append(found, waitfor.SelfWaitReport(w))
					}
					w.SelfWait = false
				} else if d := w.SelfSeq - now; d < next {
					next = d
				}
			}
			if waitT > 0 && !w.ReportedLong {
				if age := now - w.Since; age >= waitT {
					w.ReportedLong = true
					if c := w.Core(); deadlocked[id] || deadlocked[rt.LdInt64(&c.Holder)] {
						return // part of a reported deadlock, or waiting behind one
					}
					found = append(found, longWaitReport(w, age))
				} else if d := waitT - age; d < next {
					next = d
				}
			}
		})
	}
	record.WaitMu.Unlock()

	// Holds: stamp untimed ones, list long ones.
	needDump := false
	record.ForEachG(func(id int64, g *record.Gstate) {
		n := g.Count()
		for i := int32(0); i < n; i++ {
			e := g.Entry(i)
			if e == nil || !e.Live() {
				continue
			}
			start := rt.LdInt64(&e.Start)
			if start == 0 {
				// First sight of an untimed hold: it is at least this old.
				atomic.CompareAndSwapInt64(&e.Start, 0, now)
				continue
			}
			if holdT <= 0 || e.IsUncertain() {
				continue // an uncertain read hold may be another goroutine's
			}
			age := now - start
			if age < holdT {
				if d := holdT - age; d < next {
					next = d
				}
				continue
			}
			k := holdKey{id, record.LdUint64(&e.LockID), start}
			seen := holdsSeen[k]
			if seen != nil {
				seen.tick = watchTick
				if seen.exited || now < seen.recheckAt {
					continue
				}
			}
			long = append(long, longHold{g: id, e: e, gen: rt.LdUint32(&e.Gen), lock: k.lock, start: start, age: age, seen: seen})
			needDump = true
		}
	})
	// Forget holds that ended.
	for k, s := range holdsSeen {
		if s.tick != watchTick {
			delete(holdsSeen, k)
		}
	}
	// Reclaiming needs every live goroutine's id, which stops the world:
	// at most once per reclaimInterval, and only when the records have
	// doubled since the last reclamation left survivors (a steady
	// population of live goroutines costs no dump).
	t := record.Gtab.Load()
	claimed := record.Gtab.Load().Claimed.Load()
	reclaim := uint64(claimed) > (t.Mask+1)/4 && claimed > 2*LastSurvivors &&
		now-LastReclaim >= int64(reclaimInterval)
	if reclaim {
		LastReclaim = now
	}
	record.GtableMu.Unlock()

	if (needDump || reclaim) && WatchdogBeforeDump != nil {
		WatchdogBeforeDump()
	}
	// Goroutines that claim a record after this are missing from any dump
	// taken from now on, and are not taken for exited (see reclaim below).
	snapshotAt := rt.Nanotime()
	var proof goroutineTable
	consulted, proofComplete := false, false
	if len(cands) > 0 || needDump {
		if !proofOn {
			proofHint()
		} else {
			consulted, proof, proofComplete = ConsultProof(now, cands, fresh, &next)
		}
	}
	if consulted && len(cands) > 0 {
		record.GtableMu.Lock()
		record.WaitMu.Lock()
		found = append(found, proofVerdicts(cands, proof)...)
		record.WaitMu.Unlock()
		record.GtableMu.Unlock()
	}

	if needDump || reclaim {
		live, complete := proof, proofComplete
		if proof == nil || !proofComplete {
			live, complete = liveGoroutines()
		}
		for i := range long {
			h := &long[i]
			// Re-check before claiming anything: the holder may have
			// unlocked (and exited) between the listing and the dump.
			if !h.still() {
				continue
			}
			cur, alive := live.get(h.g)
			exited := complete && !alive
			r := longHoldReport(h, cur, exited)
			if !h.still() {
				continue
			}
			k := holdKey{h.g, h.lock, h.start}
			s := holdsSeen[k]
			if s == nil {
				s = &holdSeen{}
				holdsSeen[k] = s
			}
			s.tick, s.exited = watchTick, exited
			// One dump per problem: a holder alive now is not looked at
			// again while it holds this lock (its exit later goes
			// unreported; the long hold was).
			s.recheckAt = math.MaxInt64
			if h.seen != nil && !exited {
				continue // reported as a long hold already; still alive
			}
			if deadlocked[h.g] && !exited {
				continue // held by a goroutine of a reported deadlock: that report's
			}
			found = append(found, r)
		}
		if reclaim && complete {
			record.GtableMu.Lock()
			var dead []int64
			record.ForEachG(func(id int64, g *record.Gstate) {
				// A goroutine that claimed its slot after the snapshot is
				// missing from it but alive (and goroutine ids are not
				// handed out in order across Ps, so its id proves nothing).
				// A record that still holds locks or waits is kept: it is
				// the evidence of a leaked lock.
				if _, ok := live[id]; !ok && atomic.LoadInt64(&g.Claimed) < snapshotAt && rt.LdInt32(&g.N) == 0 && !waitActive(g) {
					dead = append(dead, id)
				}
			})
			for _, id := range dead {
				record.FreeG(id)
			}
			LastSurvivors = record.Gtab.Load().Claimed.Load()
			record.GtableMu.Unlock()
		}
	}
	for _, r := range found {
		delivery.EmitNoAction(r)
	}
	if next < int64(10*time.Millisecond) {
		next = int64(10 * time.Millisecond)
	}
	if next > math.MaxInt64/2 {
		next = int64(WatchdogMaxInterval)
	}
	return time.Duration(next)
}

func waitActive(g *record.Gstate) bool {
	return g.Wait.Active.Load()
}

func longWaitReport(w *record.Waiter, age int64) *report.Report {
	name := w.Meta.Name()
	r := &report.Report{
		Kind: report.KindLongWait, Time: rt.WallTime(w.Since),
		Summary: fmt.Sprintf("goroutine %d has waited %v for %s %s", w.G.Goid,
			time.Duration(age).Round(time.Millisecond), w.Wants(), name),
		Locks: []report.LockRef{w.Meta.Ref()},
		Goroutines: []report.GoroutineRef{{ID: w.G.Goid, Role: "waits for " + w.Wants(), Lock: name,
			For: time.Duration(age), Stack: stacks.StackFrames(w.Stack)}},
		Key: string(report.KindLongWait) + "|" + stacks.KeySite(w.Stack, w.Pc1, w.Pc2),
	}
	if w.Holder != 0 {
		r.Summary += fmt.Sprintf(" held by goroutine %d", w.Holder)
		r.Goroutines = append(r.Goroutines, report.GoroutineRef{ID: w.Holder, Role: "was holding",
			Lock: name, Stack: stacks.StackFrames(w.HolderStack)})
	}
	return r
}

func longHoldReport(h *longHold, current goroutineDump, exited bool) *report.Report {
	e := h.e
	info := e.LockInfo()
	name := info.Name
	acq := stacks.StackFrames(e.StackOrSite())
	held := "write"
	if e.Mode() == report.Read {
		held = "read"
	}
	age := time.Duration(h.age).Round(time.Millisecond)
	kind := report.KindLongHold
	var summary string
	// forAge is "for 1.2s,", "for at least 1.2s," (a hold that was not timed
	// from its start is as old as the watchdog has seen it), or nothing
	// when an untimed hold is first seen at the end of the program.
	forAge, untimed := fmt.Sprintf(" for %v,", age), ""
	if !e.Exact() {
		forAge = fmt.Sprintf(" for at least %v,", age)
		if age == 0 {
			forAge, untimed = "", " (the hold was not sampled, so not timed)"
		}
	}
	role := "acquired"
	if info.Type == record.OnceType || info.Type == record.OnceFuncType {
		role = "runs the function of " + info.Type
		// A Do whose function runs this long keeps every other caller of
		// Do waiting as long: a long hold of the Once's Mutex.
		summary = fmt.Sprintf("%s %s has been running its function%s in goroutine %d (every other call waits for it to return)", info.Type, name, forAge, h.g)
	} else {
		summary = fmt.Sprintf("%s %s has been %s-held%s since goroutine %d locked it", info.Type, name, held, forAge, h.g)
	}
	switch {
	case exited && rt.LdInt32(&e.Flags)&record.FlagBaton != 0:
		// A baton: other goroutines have unlocked it before, and one of
		// them may yet. A long hold, not a leak.
		summary += "; that goroutine has exited without unlocking it, but this lock has been unlocked by other goroutines than its locker before"
	case exited:
		kind = report.KindLeakedLock
		summary += "; that goroutine has exited without unlocking it"
	case current.leaked:
		summary += "; the runtime proves that goroutine blocked forever"
	}
	summary += untimed
	return &report.Report{
		Kind: kind, Time: rt.WallTime(h.start), Summary: summary,
		Locks: []report.LockRef{{ID: info.ID, Name: name, Type: info.Type}},
		Goroutines: []report.GoroutineRef{{ID: h.g, Role: role, Lock: name, For: time.Duration(h.age),
			Stack: acq, SiteOnly: e.SiteOnly(), Current: current.frames, State: current.state, Exited: exited}},
		Key: string(kind) + "|" + stacks.KeySite(e.StackOrSite(), 0, 0),
	}
}

// goroutineDump is one goroutine of a runtime.Stack dump.
type goroutineDump struct {
	state  string // as in the dump's header, e.g. "chan receive (leaked)"
	leaked bool   // the goroutine leak detector proved it blocked forever
	frames []report.Frame
}

// goroutineTable is a runtime.Stack dump: each goroutine's block of text,
// by id, parsed when asked for (a dump of many goroutines is mostly not).
type goroutineTable map[int64]goroutineBlock

type goroutineBlock struct {
	leaked bool
	text   []byte
}

// get returns goroutine id of the dump, parsed.
func (t goroutineTable) get(id int64) (goroutineDump, bool) {
	b, ok := t[id]
	if !ok {
		return goroutineDump{}, false
	}
	_, d := parseGoroutine(b.text)
	return d, true
}

// liveGoroutines returns every live goroutine's id and current stack,
// parsed from runtime.Stack. It stops the world: only the watchdog calls it,
// and only when it has something to report or reclaim.
func liveGoroutines() (dump goroutineTable, complete bool) {
	GoroutineDumps.Add(1)
	// Each try stops the world: size the buffer so that one is enough
	// (a parked goroutine's entry is a few hundred bytes).
	buf := make([]byte, max(1<<20, runtime.NumGoroutine()*1024))
	complete = true
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		if len(buf) >= 1<<30 {
			complete = false // too many to list: nobody is taken for exited
			break
		}
		buf = make([]byte, 4*len(buf))
	}
	return splitDump(buf), complete
}

// splitDump indexes a runtime.Stack dump by goroutine id, reading only the
// headers.
func splitDump(buf []byte) goroutineTable {
	out := goroutineTable{}
	for len(buf) > 0 {
		block := buf
		if i := bytes.Index(buf, []byte("\n\n")); i >= 0 {
			block, buf = buf[:i], buf[i+2:]
		} else {
			buf = nil
		}
		head := block
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			head = head[:i]
		}
		if !bytes.HasPrefix(head, []byte("goroutine ")) {
			continue
		}
		rest := head[len("goroutine "):]
		sp := bytes.IndexByte(rest, ' ')
		if sp < 0 {
			continue
		}
		id, err := strconv.ParseInt(string(rest[:sp]), 10, 64)
		if err != nil || id <= 0 {
			continue
		}
		out[id] = goroutineBlock{leaked: bytes.Contains(head, []byte(" (leaked)")), text: block}
	}
	return out
}

// parseGoroutine parses one "goroutine N [state]:" block of runtime.Stack.
func parseGoroutine(block []byte) (int64, goroutineDump) {
	var d goroutineDump
	lines := bytes.Split(bytes.TrimSpace(block), []byte("\n"))
	if len(lines) == 0 || !bytes.HasPrefix(lines[0], []byte("goroutine ")) {
		return 0, d
	}
	head := lines[0][len("goroutine "):]
	sp := bytes.IndexByte(head, ' ')
	if sp < 0 {
		return 0, d
	}
	id, err := strconv.ParseInt(string(head[:sp]), 10, 64)
	if err != nil {
		return 0, d
	}
	// "[chan receive, 2 minutes]:" -> "chan receive"
	if i, j := bytes.IndexByte(head, '['), bytes.LastIndexByte(head, ']'); i >= 0 && j > i {
		state := string(head[i+1 : j])
		if c := strings.IndexByte(state, ','); c >= 0 {
			state = state[:c]
		}
		d.state = state
		d.leaked = strings.Contains(state, " (leaked)")
	}
	var frames []report.Frame
	for i := 1; i+1 < len(lines); i += 2 {
		fn := string(lines[i])
		if p := bytes.LastIndexByte(lines[i], '('); p > 0 && bytes.HasSuffix(lines[i], []byte(")")) {
			fn = string(lines[i][:p])
		}
		loc := bytes.TrimSpace(lines[i+1])
		if sp := bytes.LastIndexByte(loc, ' '); sp > 0 {
			loc = loc[:sp]
		}
		file, line := string(loc), 0
		if c := bytes.LastIndexByte(loc, ':'); c > 0 {
			file = string(loc[:c])
			line, _ = strconv.Atoi(string(loc[c+1:]))
		}
		frames = append(frames, report.Frame{Function: fn, File: file, Line: line})
	}
	d.frames = frames
	return id, d
}
