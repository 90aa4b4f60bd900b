package record

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/report"
)

// Aggregated statistics.
//
// Waits (exact), sampled holds and the wait-by-holder view are added to a
// table keyed by (kind, stack, lock name, mode) under one of 16 shard locks;
// this happens only on contended acquisitions and sampled releases, never on
// the uncontended fast path. The table holds at most maxStatEntries rows
// (16 shards x 2048); rows that do not fit are added to one "(overflow)" row
// per kind and lock, so totals stay right, and counted in StatsDropped. A row
// is ~100 bytes plus its interned stack (shared), so the table is bounded at
// a few MiB.
//
// TryLock failures are counted on their own path, which must stay within a
// few nanoseconds of sync's failing TryLock: a lock-free table of counters
// keyed by (call site, lock), one atomic add per failure.

const (
	statShards      = 16
	maxStatPerShard = 2048
	maxStatEntries  = statShards * maxStatPerShard
)

type statKey struct {
	kind   report.StatKind
	mode   report.Mode
	stack  uint32
	lock   string
	typ    string
	labels string // pprof labels of LockContext's context (labels.go)
}

type statVal struct{ count, nanos atomic.Int64 }

// statCache is a lock's most recent row of one kind: a contended lock adds
// to it with two atomic adds, without the shard's mutex (every waiter of a
// hot lock would otherwise queue on one shard).
type statCache struct {
	stack uint32
	mode  report.Mode
	name  string
	v     *statVal
}

type statShard struct {
	mu   rt.RankedMutex[rt.RStats]
	rows map[statKey]*statVal
}

var (
	statTab      [statShards]statShard
	StatsDropped atomic.Int64
)

func addStat(kind report.StatKind, stack uint32, meta *LockMeta, mode report.Mode, count, nanos int64) {
	addStatLabels(kind, stack, meta, mode, count, nanos, "")
}

// addStatLabels is addStat for a row with pprof labels (labels.go); rows
// with labels bypass the lock's cached row.
// statSlot is the index in lockMeta.stats of a row of kind and mode.
func statSlot(kind report.StatKind, mode report.Mode) int { return int(kind)*2 + int(mode&1) }

func addStatLabels(kind report.StatKind, stack uint32, meta *LockMeta, mode report.Mode, count, nanos int64, labels string) {
	slot := statSlot(kind, mode)
	if labels == "" && meta != nil && slot < len(meta.stats) {
		if c := meta.stats[slot].Load(); c != nil && c.stack == stack && c.mode == mode && c.name == meta.Name() {
			c.v.count.Add(count)
			c.v.nanos.Add(nanos)
			return
		}
	}
	info := meta.Info()
	k := statKey{kind: kind, mode: mode, stack: stack, lock: info.Name, typ: info.Type, labels: labels}
	// Rows are keyed by name, so shard by name: one key, one shard.
	s := &statTab[(uint64(stack)*31+uint64(kind)*7+rt.HashString(info.Name))%statShards]
	s.mu.Lock()
	v := s.rows[k]
	if v == nil {
		if s.rows == nil {
			s.rows = make(map[statKey]*statVal)
		}
		if len(s.rows) >= maxStatPerShard {
			StatsDropped.Add(1)
			k.stack = 0
			k.lock = "(overflow)"
			v = s.rows[k]
		}
		if v == nil {
			v = new(statVal)
			s.rows[k] = v
		}
	}
	v.count.Add(count)
	v.nanos.Add(nanos)
	s.mu.Unlock()
	if labels == "" && meta != nil && slot < len(meta.stats) && k.lock == info.Name {
		meta.stats[slot].Store(&statCache{stack: stack, mode: mode, name: info.Name, v: v})
	}
}

// TryLock failure counters.

const (
	TrySlotsBits = 12
	TrySlots     = 1 << TrySlotsBits
)

type trySlot struct {
	State  atomic.Int32 // 0 empty, 1 being filled, 2 ready
	Pc1    uintptr
	Pc2    uintptr
	LockID uint64
	Meta   *LockMeta // for the name; keeps at most trySlots metas alive
	Mode   report.Mode
	Count  atomic.Int64
}

var (
	TryTab      [TrySlots]trySlot
	TryOverflow atomic.Int64 // failures not attributed to a site: table full
)

// Records returns the aggregated statistics: cumulative totals since the
// program started, one Record per (kind, stack, lock, mode). Call it twice
// and subtract to get the activity in between (package profiler does).
//
// The table is sharded by lock id, and TryLock counters are kept per lock,
// so locks that share a name (SetName, or locks first taken at one site)
// have several rows of one key: they are added up here, so that a key is
// one Record, whichever shards its locks fell in.
func Records() []report.Record {
	type recKey struct {
		statKey
		site uintptr // StatTryFail: the call site
	}
	var out []report.Record
	at := map[recKey]int{} // index in out
	add := func(k recKey, r report.Record) {
		if i, ok := at[k]; ok {
			out[i].Count += r.Count
			out[i].Nanos += r.Nanos
			return
		}
		at[k] = len(out)
		out = append(out, r)
	}
	for i := range statTab {
		s := &statTab[i]
		s.mu.Lock()
		for k, v := range s.rows {
			rk := recKey{statKey: k}
			if j, ok := at[rk]; ok { // a repeat: no stack copy
				out[j].Count += v.count.Load()
				out[j].Nanos += v.nanos.Load()
				continue
			}
			add(rk, report.Record{
				Kind: k.kind, Lock: k.lock, LockType: k.typ, Mode: k.mode, Labels: labelMap(k.labels),
				Stack: k.stackCopy(), Count: v.count.Load(), Nanos: v.nanos.Load(),
			})
		}
		s.mu.Unlock()
	}
	for i := range TryTab {
		s := &TryTab[i]
		if s.State.Load() != 2 {
			continue
		}
		site := stacks.SitePC(s.Pc1, s.Pc2)
		name := s.Meta.Name()
		add(recKey{statKey: statKey{kind: report.StatTryFail, mode: s.Mode, lock: name, typ: s.Meta.Typ}, site: site}, report.Record{
			Kind: report.StatTryFail, Lock: name, LockType: s.Meta.Typ, Mode: s.Mode,
			Stack: []uintptr{site}, Count: s.Count.Load(),
		})
	}
	return out
}

func (k statKey) stackCopy() []uintptr {
	return append([]uintptr(nil), stacks.StackPCs(k.stack)...)
}

// LockStats sums the statistics per lock name, worst first (by total wait,
// then hold time).
func LockStats() []report.LockStat {
	byLock := map[string]*report.LockStat{}
	for _, r := range Records() {
		ls := byLock[r.Lock]
		if ls == nil {
			ls = &report.LockStat{Lock: r.Lock, Type: r.LockType}
			byLock[r.Lock] = ls
		}
		switch r.Kind {
		case report.StatHold:
			ls.Acquisitions += r.Count
			ls.HoldTime += time.Duration(r.Nanos)
		case report.StatWait:
			ls.Contentions += r.Count
			ls.WaitTime += time.Duration(r.Nanos)
		case report.StatTryFail:
			ls.TryLockFailures += r.Count
		}
	}
	out := make([]report.LockStat, 0, len(byLock))
	for _, ls := range byLock {
		out = append(out, *ls)
	}
	SortLockStats(out)
	return out
}

// SortLockStats sorts ls worst first, as LockStats returns them: by wait
// time, then hold time, then name.
func SortLockStats(ls []report.LockStat) {
	sort.Slice(ls, func(i, j int) bool {
		if ls[i].WaitTime != ls[j].WaitTime {
			return ls[i].WaitTime > ls[j].WaitTime
		}
		if ls[i].HoldTime != ls[j].HoldTime {
			return ls[i].HoldTime > ls[j].HoldTime
		}
		return ls[i].Lock < ls[j].Lock
	})
}

func DurationNS(ns int64) time.Duration { return time.Duration(ns) }
