package profiler

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// Encoding: debugmutex's aggregated records and snapshots in, pprof profiles
// out. Nothing here reads debugmutex's global state, so it is tested and
// benchmarked with records made up by the tests.

// spec describes one profile.
type spec struct {
	name string
	doc  string // one line, for the index page and the profile's comments
	// kind is the statistic the profile is made of (unused for held).
	kind        report.StatKind
	sampleTypes []*profile.ValueType
	periodType  *profile.ValueType
	snapshot    bool // held: a snapshot, no deltas
}

func vt(typ, unit string) *profile.ValueType { return &profile.ValueType{Type: typ, Unit: unit} }

// specs, in the order the index page lists them.
var specs = []*spec{
	{
		name: Contention, kind: report.StatWait,
		doc:         "Where goroutines waited for locks, by the waiter's stack (exact).",
		sampleTypes: []*profile.ValueType{vt("contentions", "count"), vt("delay", "nanoseconds")},
		periodType:  vt("contentions", "count"),
	},
	{
		name: ContentionByHolder, kind: report.StatWaitByHolder,
		doc:         "The same waits, charged to the acquire stack of the goroutine that held the lock.",
		sampleTypes: []*profile.ValueType{vt("contentions", "count"), vt("delay", "nanoseconds")},
		periodType:  vt("contentions", "count"),
	},
	{
		name: Hold, kind: report.StatHold,
		doc:         "Acquisitions and hold time by acquire stack (short holds sampled, weighted; long holds exact).",
		sampleTypes: []*profile.ValueType{vt("acquisitions", "count"), vt("hold", "nanoseconds")},
		periodType:  vt("acquisitions", "count"),
	},
	{
		name: TryLock, kind: report.StatTryFail,
		doc:         "Failed TryLock and TryRLock calls by call site (exact).",
		sampleTypes: []*profile.ValueType{vt("failures", "count")},
		periodType:  vt("failures", "count"),
	},
	{
		name: Held, snapshot: true,
		doc:         "Locks held right now, by acquire stack, with their age and holder goroutine.",
		sampleTypes: []*profile.ValueType{vt("locks", "count"), vt("age", "nanoseconds")},
		periodType:  vt("locks", "count"),
	},
}

func lookupSpec(name string) *spec {
	for _, s := range specs {
		if s.name == name {
			return s
		}
	}
	return nil
}

// builder builds one profile. It is not safe for concurrent use.
type builder struct {
	p     *profile.Profile
	maps  []memMap
	pmaps []*profile.Mapping                // pprof mapping of maps[i], once used
	locs  map[uintptr]*profile.Location     // by return PC
	funcs map[[2]string]*profile.Function   // by name, file
	fakes map[string]*profile.Location      // stand-ins for missing stacks
	lbls  map[[3]string]map[string][]string // shared label maps, by lock, mode, type
}

func newBuilder(sp *spec, maps []memMap, now time.Time) *builder {
	b := &builder{
		p: &profile.Profile{
			SampleType:        sp.sampleTypes,
			DefaultSampleType: sp.sampleTypes[len(sp.sampleTypes)-1].Type,
			PeriodType:        sp.periodType,
			Period:            1,
			TimeNanos:         now.UnixNano(),
		},
		maps:  maps,
		pmaps: make([]*profile.Mapping, len(maps)),
		locs:  map[uintptr]*profile.Location{},
		funcs: map[[2]string]*profile.Function{},
		fakes: map[string]*profile.Location{},
		lbls:  map[[3]string]map[string][]string{},
	}
	b.mappingFor(maps[0].start) // the main executable is Mapping[0]
	b.p.Comments = append(b.p.Comments, "lockscope "+sp.name+" profile: "+sp.doc)
	return b
}

// stack returns the locations of a stack of return PCs, innermost first.
func (b *builder) stack(stk []uintptr) []*profile.Location {
	locs := make([]*profile.Location, 0, len(stk))
	// One location per physical call, whichever form the stack has (frame
	// pointers, or runtime.Callers with a PC per inlined call).
	for pc, frames := range inspect.CallFrames(stk) {
		if l := b.locs[pc]; l != nil {
			locs = append(locs, l)
			continue
		}
		// Like runtime/pprof: the address is that of the call instruction
		// (return PC - 1, as CallersFrames reports it), so that pprof's
		// -addresses and any later symbolization land on the call.
		addr := uint64(pc - 1)
		l := &profile.Location{
			ID:      uint64(len(b.p.Location) + 1),
			Mapping: b.mappingFor(addr),
			Address: addr,
			Line:    make([]profile.Line, len(frames)),
		}
		for i, f := range frames {
			l.Line[i] = profile.Line{Function: b.function(f.Function, f.File), Line: int64(f.Line)}
		}
		b.p.Location = append(b.p.Location, l)
		b.locs[pc] = l
		locs = append(locs, l)
	}
	return locs
}

// fake returns a location standing for a stack that was not kept, so that
// its weight shows under a name that says why.
func (b *builder) fake(name string) []*profile.Location {
	l := b.fakes[name]
	if l == nil {
		l = &profile.Location{
			ID:   uint64(len(b.p.Location) + 1),
			Line: []profile.Line{{Function: b.function(name, "")}},
		}
		b.p.Location = append(b.p.Location, l)
		b.fakes[name] = l
	}
	return []*profile.Location{l}
}

func (b *builder) function(name, file string) *profile.Function {
	k := [2]string{name, file}
	f := b.funcs[k]
	if f == nil {
		f = &profile.Function{ID: uint64(len(b.p.Function) + 1), Name: name, SystemName: name, Filename: file}
		b.p.Function = append(b.p.Function, f)
		b.funcs[k] = f
	}
	return f
}

// labels returns the string labels of a sample: shared between samples of
// one lock and mode (the profile package only reads them).
func (b *builder) labels(lock string, mode report.Mode, typ string) map[string][]string {
	k := [3]string{lock, mode.String(), typ}
	m := b.lbls[k]
	if m == nil {
		m = map[string][]string{"lock": {lock}, "mode": {mode.String()}}
		if typ != "" {
			m["type"] = []string{typ}
		}
		b.lbls[k] = m
	}
	return m
}

// buildRecords makes the profile sp from records (cumulative or a delta).
// Records of other kinds are ignored. dur is the delta's length, 0 for a
// cumulative profile.
func buildRecords(sp *spec, recs []report.Record, maps []memMap, now time.Time, dur time.Duration, dropped report.Dropped) *profile.Profile {
	b := newBuilder(sp, maps, now)
	if dur > 0 {
		b.p.DurationNanos = int64(dur)
		b.p.Comments = append(b.p.Comments, "delta over "+dur.String())
	} else {
		b.p.Comments = append(b.p.Comments, "cumulative since the program started")
	}
	b.p.Comments = append(b.p.Comments, droppedComments(dropped)...)
	var mine []*report.Record
	for i := range recs {
		if recs[i].Kind == sp.kind {
			mine = append(mine, &recs[i])
		}
	}
	// One sample per key: records of one key (several locks sharing a
	// name, however they were obtained) are added up.
	mine = mergeRecords(mine)
	// A stable order makes profiles of the same state identical.
	slices.SortFunc(mine, compareRecords)
	nvals := len(sp.sampleTypes)
	for _, r := range mine {
		s := &profile.Sample{Label: b.labels(r.Lock, r.Mode, r.LockType)}
		if len(r.Labels) > 0 { // LockContext's pprof labels, beside lockscope's own
			l := make(map[string][]string, len(s.Label)+len(r.Labels))
			for k, v := range s.Label {
				l[k] = v
			}
			for k, v := range r.Labels {
				if _, own := l[k]; !own {
					l[k] = []string{v}
				}
			}
			s.Label = l
		}
		if nvals == 1 {
			s.Value = []int64{r.Count}
		} else {
			s.Value = []int64{r.Count, r.Nanos}
		}
		switch {
		case len(r.Stack) > 0:
			s.Location = b.stack(r.Stack)
		case r.Lock == "(overflow)":
			s.Location = b.fake("lockscope: (statistics table full)")
		default:
			s.Location = b.fake("lockscope: (stack not recorded)")
		}
		b.p.Sample = append(b.p.Sample, s)
	}
	return b.p
}

// buildHeld makes the held-now profile from a snapshot: one sample per hold.
func buildHeld(st report.State, maps []memMap) *profile.Profile {
	sp := lookupSpec(Held)
	b := newBuilder(sp, maps, st.Time)
	b.p.Comments = append(b.p.Comments, "snapshot at "+st.Time.Format(time.RFC3339Nano))
	for i := range st.Held {
		h := &st.Held[i]
		lbl := map[string][]string{"exact": {strconv.FormatBool(h.Exact)}}
		for k, v := range b.labels(h.Lock.Name, h.Mode, h.Lock.Type) {
			lbl[k] = v
		}
		s := &profile.Sample{
			Value:    []int64{1, int64(h.For)},
			Label:    lbl,
			NumLabel: map[string][]int64{"goroutine": {h.Goroutine}},
		}
		if len(h.Stack) > 0 {
			s.Location = b.stack(h.Stack)
		} else {
			s.Location = b.fake("lockscope: (stack not recorded)")
		}
		b.p.Sample = append(b.p.Sample, s)
	}
	return b.p
}

func droppedComments(d report.Dropped) []string {
	var out []string
	add := func(n int64, what string) {
		if n > 0 {
			out = append(out, fmt.Sprintf("lockscope dropped: %d %s", n, what))
		}
	}
	add(d.StatRows, "statistics rows (added to \"(overflow)\" rows: totals stay right)")
	add(d.Stacks, "stacks (table full)")
	add(d.TryLockSites, "TryLock failures not attributed to a site (table full)")
	add(d.Goroutines, "goroutines whose holds were not tracked")
	add(d.Nesting, "acquisitions by a goroutine holding over 4036 locks, not tracked")
	add(d.Edges, "lock-order dependencies (graph or a hold's pending list full)")
	add(d.Reports, "distinct problems not reported (a million seen already)")
	add(d.TryStreaks, "failed TryLocks not checked for a livelock (table full)")
	return out
}

func compareRecords(a, b *report.Record) int {
	return cmp.Or(
		cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Lock, b.Lock),
		cmp.Compare(a.LockType, b.LockType),
		cmp.Compare(a.Mode, b.Mode),
		slices.Compare(a.Stack, b.Stack),
		cmp.Compare(labelsKey(a), labelsKey(b)),
	)
}

// labelsKey is r's pprof labels, sorted, as one string.
func labelsKey(r *report.Record) string {
	if len(r.Labels) == 0 {
		return ""
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(r.Labels[k])
		b.WriteByte(0)
	}
	return b.String()
}

// recordKey identifies a record across two calls to inspect.Records:
// its kind, mode, lock name, lock type and the program counters of its
// stack.
func recordKey(r *report.Record) string {
	var buf bytes.Buffer
	buf.WriteByte(byte(r.Kind))
	buf.WriteByte(byte(r.Mode))
	buf.WriteString(r.Lock)
	buf.WriteByte(0)
	buf.WriteString(r.LockType)
	buf.WriteByte(0)
	buf.WriteString(labelsKey(r))
	buf.WriteByte(1)
	if len(r.Stack) > 0 {
		buf.Write(unsafe.Slice((*byte)(unsafe.Pointer(&r.Stack[0])), len(r.Stack)*int(unsafe.Sizeof(uintptr(0)))))
	}
	return buf.String()
}

// mergeRecords returns recs with one record per key (recordKey), in the
// order keys first appear: the counts and times of records of one key are
// added up into a copy, so recs are left as they were. Locks that share a
// name are several rows of one key in debugmutex's sharded tables; a key
// must be one sample, and one row to subtract.
func mergeRecords(recs []*report.Record) []*report.Record {
	at := make(map[string]int, len(recs))
	out := make([]*report.Record, 0, len(recs))
	copied := make([]bool, 0, len(recs))
	for _, r := range recs {
		k := recordKey(r)
		i, ok := at[k]
		if !ok {
			at[k] = len(out)
			out = append(out, r)
			copied = append(copied, false)
			continue
		}
		if !copied[i] {
			c := *out[i]
			out[i], copied[i] = &c, true
		}
		out[i].Count += r.Count
		out[i].Nanos += r.Nanos
	}
	return out
}

func pointers(recs []report.Record) []*report.Record {
	out := make([]*report.Record, len(recs))
	for i := range recs {
		out[i] = &recs[i]
	}
	return out
}

// subtractRecords returns the activity between two calls to
// inspect.Records: per key, the rows of after minus the rows of before
// (rows of one key on either side are added up first), in the order keys
// first appear in after. Keys whose activity is zero are left out, and so
// are keys that went backwards: the tables only ever add, so a count or a
// time lower than before means the rows are not comparable, and no
// negative value is ever made of them.
func subtractRecords(before, after []report.Record) []report.Record {
	prev := map[string]*report.Record{}
	for _, r := range mergeRecords(pointers(before)) {
		prev[recordKey(r)] = r
	}
	var out []report.Record
	for _, a := range mergeRecords(pointers(after)) {
		r := *a
		if p := prev[recordKey(a)]; p != nil {
			r.Count -= p.Count
			r.Nanos -= p.Nanos
		}
		if r.Count < 0 || r.Nanos < 0 || (r.Count == 0 && r.Nanos == 0) {
			continue
		}
		out = append(out, r)
	}
	return out
}
