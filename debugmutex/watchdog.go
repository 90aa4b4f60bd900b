package debugmutex

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
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
	watchdogMaxInterval = time.Second
	reclaimInterval     = 10 * time.Second
)

// lastReclaim is the nanotime of the last reclamation, and lastSurvivors the
// records it left (guarded by gtableMu).
var lastReclaim, lastSurvivors int64

func init() {
	if disabled {
		return
	}
	// The first run comes at the hold threshold when that is shorter than
	// the interval: a short program (a test binary) with a short threshold
	// is looked at before it ends.
	first := watchdogMaxInterval
	if t := time.Duration(cfg.holdThreshold.Load()); t > 0 && t < first {
		first = t
	}
	watchdogMu.Lock()
	watchdogNext = nanotime() + int64(first)
	watchdogTimer = time.AfterFunc(first, watchdogRun)
	watchdogMu.Unlock()
}

// WatchdogNow runs the watchdog's checks at once, in the calling goroutine.
// Tests and the test helper use it rather than waiting for the timer.
func WatchdogNow() { watchdogCheck() }

// watchdogRuns counts the timer's runs, for tests.
var watchdogRuns atomic.Int64

func watchdogRun() {
	watchdogRuns.Add(1)
	next := watchdogCheck()
	watchdogMu.Lock()
	watchdogNext = nanotime() + int64(next)
	watchdogTimer.Reset(next)
	watchdogMu.Unlock()
}

var watchdogRunMu rankedMutex[rWatchdogRun]

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

// watchdogBeforeDump, when set (by tests), runs between the listing of
// long holds and the goroutine dump: the window in which a holder may
// unlock and exit.
var watchdogBeforeDump func()

var (
	holdsSeen = map[holdKey]*holdSeen{} // guarded by watchdogRunMu
	watchTick uint64                    // guarded by watchdogRunMu
	// goroutineDumps counts the goroutine dumps (stop-the-world) the
	// watchdog has taken, for tests and benchmarks.
	goroutineDumps atomic.Int64
)

type longHold struct {
	g     int64
	e     *heldEntry
	gen   uint32
	lock  uint64
	start int64
	age   int64
	seen  *holdSeen
}

// still reports whether the hold h is still the hold it was when listed.
func (h *longHold) still() bool {
	e := h.e
	return e.live() && ldUint32(&e.gen) == h.gen && ldUint64(&e.lockID) == h.lock && ldInt64(&e.start) == h.start
}

// watchdogCheck does one round and returns when the next should be.
func watchdogCheck() time.Duration {
	watchdogRunMu.Lock()
	defer watchdogRunMu.Unlock()
	watchTick++
	now := nanotime()
	next := int64(watchdogMaxInterval)
	holdT := cfg.holdThreshold.Load()
	waitT := cfg.waitThreshold.Load()
	// A hold or wait that begins after this run is unknown to it: look again
	// within half a threshold, so that it is reported at most 1.5 thresholds
	// after it began.
	for _, t := range []int64{holdT, waitT} {
		if t > 0 && t/2 < next {
			next = t / 2
		}
	}
	var found []*Report
	var long []longHold
	// The runtime's proof (leakproof.go): where it is available it decides
	// the waits that outlast a short delay and the self-waits, and the
	// recursive grace does not apply.
	proofOn := proofAvailable()
	var cands []proofCand
	fresh := false

	gtableMu.Lock()
	// Waiters: self-waits past grace, waits past threshold.
	waitMu.Lock()
	if nwaiting.Load() > 0 {
		forEachG(func(id int64, g *gstate) {
			w := &g.wait
			if !w.active.Load() {
				return
			}
			// A self-wait on a package variable is left to the grace:
			// the runtime always reaches the lock, so it never proves it.
			if !w.proven && w.g == g && !(w.selfWait && w.static) {
				due := w.since + int64(proofDelay)
				if w.selfWait {
					due = w.since + int64(selfWaitProofDelay)
				}
				if now >= due {
					cands = append(cands, proofCand{w: w, goid: id, since: w.since})
					fresh = fresh || w.consulted != w.since
				} else if d := due - now; d < next {
					next = d
				}
			}
			if w.selfWait && (!proofOn || w.static) {
				if now >= w.selfSeq {
					c := w.core()
					if !c.handedOff() && (ldInt64(&c.holder) == w.g.goid || w.g.findHeldAny(w.lock, w.lockID, Read) != nil) {
						found = append(found, selfWaitReport(w))
					}
					w.selfWait = false
				} else if d := w.selfSeq - now; d < next {
					next = d
				}
			}
			if waitT > 0 && !w.reportedLong {
				if age := now - w.since; age >= waitT {
					w.reportedLong = true
					found = append(found, longWaitReport(w, age))
				} else if d := waitT - age; d < next {
					next = d
				}
			}
		})
	}
	waitMu.Unlock()

	// Holds: stamp untimed ones, list long ones.
	needDump := false
	forEachG(func(id int64, g *gstate) {
		n := g.count()
		for i := int32(0); i < n; i++ {
			e := g.entry(i)
			if e == nil || !e.live() {
				continue
			}
			start := ldInt64(&e.start)
			if start == 0 {
				// First sight of an untimed hold: it is at least this old.
				atomic.CompareAndSwapInt64(&e.start, 0, now)
				continue
			}
			if holdT <= 0 || e.isUncertain() {
				continue // an uncertain read hold may be another goroutine's
			}
			age := now - start
			if age < holdT {
				if d := holdT - age; d < next {
					next = d
				}
				continue
			}
			k := holdKey{id, ldUint64(&e.lockID), start}
			seen := holdsSeen[k]
			if seen != nil {
				seen.tick = watchTick
				if seen.exited || now < seen.recheckAt {
					continue
				}
			}
			long = append(long, longHold{g: id, e: e, gen: ldUint32(&e.gen), lock: k.lock, start: start, age: age, seen: seen})
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
	t := gtab.Load()
	claimed := gtab.Load().claimed.Load()
	reclaim := uint64(claimed) > (t.mask+1)/4 && claimed > 2*lastSurvivors &&
		now-lastReclaim >= int64(reclaimInterval)
	if reclaim {
		lastReclaim = now
	}
	gtableMu.Unlock()

	if (needDump || reclaim) && watchdogBeforeDump != nil {
		watchdogBeforeDump()
	}
	// Goroutines that claim a record after this are missing from any dump
	// taken from now on, and are not taken for exited (see reclaim below).
	snapshotAt := nanotime()
	var proof goroutineTable
	consulted, proofComplete := false, false
	if len(cands) > 0 || needDump {
		if !proofOn {
			proofHint()
		} else {
			consulted, proof, proofComplete = consultProof(now, cands, fresh, &next)
		}
	}
	if consulted && len(cands) > 0 {
		gtableMu.Lock()
		waitMu.Lock()
		found = append(found, proofVerdicts(cands, proof)...)
		waitMu.Unlock()
		gtableMu.Unlock()
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
			found = append(found, r)
		}
		if reclaim && complete {
			gtableMu.Lock()
			var dead []int64
			forEachG(func(id int64, g *gstate) {
				// A goroutine that claimed its slot after the snapshot is
				// missing from it but alive (and goroutine ids are not
				// handed out in order across Ps, so its id proves nothing).
				// A record that still holds locks or waits is kept: it is
				// the evidence of a leaked lock.
				if _, ok := live[id]; !ok && atomic.LoadInt64(&g.claimed) < snapshotAt && ldInt32(&g.n) == 0 && !waitActive(g) {
					dead = append(dead, id)
				}
			})
			for _, id := range dead {
				freeG(id)
			}
			lastSurvivors = gtab.Load().claimed.Load()
			gtableMu.Unlock()
		}
	}
	for _, r := range found {
		emitNoAction(r)
	}
	if next < int64(10*time.Millisecond) {
		next = int64(10 * time.Millisecond)
	}
	if next > math.MaxInt64/2 {
		next = int64(watchdogMaxInterval)
	}
	return time.Duration(next)
}

func waitActive(g *gstate) bool {
	return g.wait.active.Load()
}

func longWaitReport(w *waiter, age int64) *Report {
	name := w.meta.Name()
	r := &Report{
		Kind: KindLongWait, Time: wallTime(w.since),
		Summary: fmt.Sprintf("goroutine %d has waited %v for %s %s", w.g.goid,
			time.Duration(age).Round(time.Millisecond), w.wants(), name),
		Locks: []LockRef{w.meta.ref()},
		Goroutines: []GoroutineRef{{ID: w.g.goid, Role: "waits for " + w.wants(), Lock: name,
			For: time.Duration(age), Stack: stackFrames(w.stack)}},
		Key: string(KindLongWait) + "|" + keySite(w.stack, w.pc1, w.pc2),
	}
	if w.holder != 0 {
		r.Summary += fmt.Sprintf(" held by goroutine %d", w.holder)
		r.Goroutines = append(r.Goroutines, GoroutineRef{ID: w.holder, Role: "was holding",
			Lock: name, Stack: stackFrames(w.holderStack)})
	}
	return r
}

func longHoldReport(h *longHold, current goroutineDump, exited bool) *Report {
	e := h.e
	info := e.lockInfo()
	name := info.Name
	acq := stackFrames(e.stackOrSite())
	held := "write"
	if e.mode() == Read {
		held = "read"
	}
	age := time.Duration(h.age).Round(time.Millisecond)
	kind := KindLongHold
	var summary string
	if e.exact() {
		summary = fmt.Sprintf("%s %s has been %s-held for %v, since goroutine %d locked it", info.Type, name, held, age, h.g)
	} else {
		summary = fmt.Sprintf("%s %s has been %s-held for at least %v, since goroutine %d locked it", info.Type, name, held, age, h.g)
	}
	switch {
	case exited && ldInt32(&e.flags)&flagBaton != 0:
		// A baton: other goroutines have unlocked it before, and one of
		// them may yet. A long hold, not a leak.
		summary += "; that goroutine has exited without unlocking it, but this lock has been unlocked by other goroutines than its locker before"
	case exited:
		kind = KindLeakedLock
		summary += "; that goroutine has exited without unlocking it"
	case current.leaked:
		summary += "; the runtime proves that goroutine blocked forever"
	}
	return &Report{
		Kind: kind, Time: wallTime(h.start), Summary: summary,
		Locks: []LockRef{{ID: info.ID, Name: name, Type: info.Type}},
		Goroutines: []GoroutineRef{{ID: h.g, Role: "acquired", Lock: name, For: time.Duration(h.age),
			Stack: acq, SiteOnly: e.siteOnly(), Current: current.frames, State: current.state, Exited: exited}},
		Key: string(kind) + "|" + keySite(e.stackOrSite(), 0, 0),
	}
}

// goroutineDump is one goroutine of a runtime.Stack dump.
type goroutineDump struct {
	state  string // as in the dump's header, e.g. "chan receive (leaked)"
	leaked bool   // the goroutine leak detector proved it blocked forever
	frames []Frame
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
	goroutineDumps.Add(1)
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
	var frames []Frame
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
		frames = append(frames, Frame{Function: fn, File: file, Line: line})
	}
	d.frames = frames
	return id, d
}
