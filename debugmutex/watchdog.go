package debugmutex

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
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

// lastReclaim is the nanotime of the last reclamation (guarded by gtableMu).
var lastReclaim int64

var (
	watchdogMu    sync.Mutex // serialises runs and rescheduling
	watchdogTimer *time.Timer
	watchdogNext  time.Time // when the timer is set to fire
)

func init() {
	if disabled {
		return
	}
	watchdogMu.Lock()
	watchdogNext = time.Now().Add(watchdogMaxInterval)
	watchdogTimer = time.AfterFunc(watchdogMaxInterval, watchdogRun)
	watchdogMu.Unlock()
}

// kickWatchdog asks for a run soon.
func kickWatchdog() { kickWatchdogAfter(int64(10 * time.Millisecond)) }

// kickWatchdogAfter brings the next run forward to at most d from now.
func kickWatchdogAfter(d int64) {
	watchdogMu.Lock()
	defer watchdogMu.Unlock()
	if watchdogTimer == nil {
		return
	}
	at := time.Now().Add(time.Duration(d))
	if at.Before(watchdogNext) {
		watchdogNext = at
		watchdogTimer.Reset(time.Duration(d))
	}
}

// WatchdogNow runs the watchdog's checks at once, in the calling goroutine.
// Tests and the test helper use it rather than waiting for the timer.
func WatchdogNow() { watchdogCheck() }

func watchdogRun() {
	next := watchdogCheck()
	watchdogMu.Lock()
	watchdogNext = time.Now().Add(next)
	watchdogTimer.Reset(next)
	watchdogMu.Unlock()
}

var watchdogRunMu sync.Mutex

// watchdogCheck does one round and returns when the next should be.
func watchdogCheck() time.Duration {
	watchdogRunMu.Lock()
	defer watchdogRunMu.Unlock()
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

	// Waiters: self-waits past grace, waits past threshold.
	waitMu.Lock()
	for _, w := range waiting {
		if w.selfWait {
			if now >= w.selfSeq {
				if ldInt64(&w.core.holder) == w.g.goid || w.g.findHeldAny(w.core, Read) {
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
	}
	waitMu.Unlock()

	// Holds: stamp untimed ones, report long ones.
	type longHold struct {
		g   int64
		e   *heldEntry
		c   *lockCore
		age int64
	}
	var long []longHold
	gtableMu.Lock()
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
			if holdT <= 0 {
				continue
			}
			if age := now - start; age >= holdT {
				long = append(long, longHold{id, e, e.lock(), age})
			} else if d := holdT - age; d < next {
				next = d
			}
		}
	})
	// Reclaiming needs every live goroutine's id, which stops the world:
	// at most once per reclaimInterval, however full the table stays.
	reclaim := gclaimed.Load() > gtableSize/2 && now-lastReclaim >= int64(reclaimInterval)
	if reclaim {
		lastReclaim = now
	}
	gtableMu.Unlock()

	if len(long) > 0 || reclaim {
		snapshotAt := nanotime()
		live := liveGoroutines()
		for _, h := range long {
			if h.c == nil {
				continue
			}
			cur, alive := live[h.g]
			found = append(found, longHoldReport(h.g, h.e, h.c, h.age, cur, !alive))
		}
		if reclaim {
			gtableMu.Lock()
			var dead []int64
			forEachG(func(id int64, g *gstate) {
				// A goroutine that claimed its slot after the snapshot is
				// missing from it but alive (and goroutine ids are not
				// handed out in order across Ps, so its id proves nothing).
				if _, ok := live[id]; !ok && atomic.LoadInt64(&g.claimed) < snapshotAt {
					dead = append(dead, id)
				}
			})
			for _, id := range dead {
				freeG(id)
			}
			gtableMu.Unlock()
		}
	}
	for _, r := range found {
		emit(r, false)
	}
	if next < int64(10*time.Millisecond) {
		next = int64(10 * time.Millisecond)
	}
	if next > math.MaxInt64/2 {
		next = int64(watchdogMaxInterval)
	}
	return time.Duration(next)
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
		Key: string(KindLongWait) + "|" + siteOf(w.pc1, w.pc2).Site(),
	}
	if w.holder != 0 {
		r.Summary += fmt.Sprintf(" held by goroutine %d", w.holder)
		r.Goroutines = append(r.Goroutines, GoroutineRef{ID: w.holder, Role: "was holding",
			Lock: name, Stack: stackFrames(w.holderStack)})
	}
	return r
}

func longHoldReport(id int64, e *heldEntry, c *lockCore, age int64, current goroutineDump, exited bool) *Report {
	meta := c.getMeta()
	name := meta.Name()
	acq := stackFrames(e.stackOrSite())
	held := "write"
	if e.mode() == Read {
		held = "read"
	}
	kind := KindLongHold
	summary := fmt.Sprintf("%s %s has been %s-held by goroutine %d for %v", meta.typ, name, held, id,
		time.Duration(age).Round(time.Millisecond))
	if !e.exact() {
		summary = fmt.Sprintf("%s %s has been %s-held by goroutine %d for at least %v", meta.typ, name, held, id,
			time.Duration(age).Round(time.Millisecond))
	}
	if exited {
		kind = KindLeakedLock
		summary += "; the goroutine has exited, so it will never be released"
	}
	return &Report{
		Kind: kind, Time: wallTime(ldInt64(&e.start)), Summary: summary,
		Locks: []LockRef{meta.ref()},
		Goroutines: []GoroutineRef{{ID: id, Role: "acquired", Lock: name, For: time.Duration(age),
			Stack: acq, Current: current.frames, State: current.state, Exited: exited}},
		Key: string(kind) + "|" + siteOf(e.site()).Site(),
	}
}

// liveGoroutines returns every live goroutine's id and current stack,
// parsed from runtime.Stack. It stops the world: only the watchdog calls it,
// and only when it has something to report or reclaim.
// goroutineDump is one goroutine of a runtime.Stack dump.
type goroutineDump struct {
	state  string
	frames []Frame
}

func liveGoroutines() map[int64]goroutineDump {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		if len(buf) >= 64<<20 {
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[int64]goroutineDump{}
	for _, block := range bytes.Split(buf, []byte("\n\n")) {
		id, d := parseGoroutine(block)
		if id > 0 {
			out[id] = d
		}
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
