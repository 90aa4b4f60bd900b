package profiler

import (
	"context"
	"errors"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/report"
)

// callersHere returns runtime.Callers' stack of its caller: one PC per
// physical frame plus one "virtual" PC per inlined call.
//
//go:noinline
func callersHere() []uintptr {
	pcs := make([]uintptr, 64)
	return pcs[:runtime.Callers(2, pcs)]
}

func inlinedInner() []uintptr { return callersHere() }
func inlinedOuter() []uintptr { return inlinedInner() }

// physicalOnly drops the virtual PCs of inlined calls from a runtime.Callers
// stack, leaving what a frame-pointer walk gives: a PC is virtual when the
// frame before it was inlined (Frame.Func is nil for inlined frames).
func physicalOnly(stk []uintptr) []uintptr {
	var out []uintptr
	frames := runtime.CallersFrames(stk)
	inlinedBefore := false
	for i := 0; ; i++ {
		f, more := frames.Next()
		if !inlinedBefore {
			out = append(out, stk[i])
		}
		inlinedBefore = f.Func == nil
		if !more {
			break
		}
	}
	return out
}

// lines renders a sample's stack as "function:line" strings, innermost first.
func lines(s *profile.Sample) []string {
	var out []string
	for _, l := range s.Location {
		for _, ln := range l.Line {
			out = append(out, ln.Function.Name[strings.LastIndexByte(ln.Function.Name, '/')+1:]+":"+strconv.FormatInt(ln.Line, 10))
		}
	}
	return out
}

func TestInlinedCallsAreOneLocationWithALinePerCallInBothStackForms(t *testing.T) {
	callers := inlinedOuter()
	phys := physicalOnly(callers)
	if len(phys) >= len(callers) {
		t.Fatalf("no inlined call in the test stack (go test -gcflags=-l turns inlining off): %d PCs", len(callers))
	}
	build := func(stk []uintptr) *profile.Profile {
		recs := []report.Record{{Kind: report.StatWait, Lock: "l", LockType: "Mutex", Stack: stk, Count: 1, Nanos: 5}}
		p := buildRecords(lookupSpec(Contention), recs, readMappings(), time.Now(), 0, report.Dropped{})
		checkValid(t, p)
		return p
	}
	pc, pp := build(callers), build(phys)
	lc, lp := lines(pc.Sample[0]), lines(pp.Sample[0])
	if !slices.Equal(lc, lp) {
		t.Errorf("runtime.Callers form:\n%v\nframe-pointer form:\n%v", lc, lp)
	}
	want := []string{"profiler.inlinedInner:", "profiler.inlinedOuter:", "profiler.TestInlinedCallsAreOneLocationWithALinePerCallInBothStackForms:"}
	for i, w := range want {
		if i >= len(lp) || !strings.HasPrefix(lp[i], w) {
			t.Fatalf("stack %v, want it to begin with %v", lp, want)
		}
	}
	// inlinedInner and inlinedOuter are inlined into the test: one
	// location; then one per physical frame but runtime.goexit, left out.
	first := pp.Sample[0].Location[0]
	if len(first.Line) != 3 || len(pp.Sample[0].Location) != len(phys)-1 {
		t.Errorf("first location has %d lines (want 3), %d locations for %d physical PCs (want one less)", len(first.Line), len(pp.Sample[0].Location), len(phys))
	}
	// Addresses are those of the call instructions, inside the main mapping.
	if m := first.Mapping; m == nil || first.Address < m.Start || first.Address >= m.Limit || first.Address != uint64(phys[0]-1) {
		t.Errorf("location address %#x (return PC %#x) in mapping %+v", first.Address, phys[0], m)
	}
}

func TestMainMappingIsTheExecutable(t *testing.T) {
	p, err := Collect(Contention)
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	m := p.Mapping[0]
	if m.File != exe || !m.HasFunctions || !m.HasFilenames || !m.HasLineNumbers || !m.HasInlineFrames {
		t.Errorf("main mapping %+v, want %s, symbolized", m, exe)
	}
}

func TestParseProcMapsKeepsExecutableFileMappings(t *testing.T) {
	maps := parseProcMaps([]byte(`00400000-0040b000 r-xp 00000000 fc:01 787766                             /bin/cat
0060a000-0060b000 r--p 0000a000 fc:01 787766                             /bin/cat
014ab000-014cc000 rw-p 00000000 00:00 0                                  [heap]
7f7d7797c000-7f7d77b36000 r-xp 00001000 fc:01 1180226                    /lib/with space/libc.so (deleted)
7f7d77d3c000-7f7d77d41000 r-xp 00000000 00:00 0
7ffc34343000-7ffc34345000 r-xp 00000000 00:00 0                          [vdso]
garbage
`))
	want := []memMap{
		{start: 0x400000, limit: 0x40b000, file: "/bin/cat"},
		{start: 0x7f7d7797c000, limit: 0x7f7d77b36000, offset: 0x1000, file: "/lib/with space/libc.so"},
		{start: 0x7ffc34343000, limit: 0x7ffc34345000, file: "[vdso]"},
	}
	for i := range maps {
		maps[i].buildID = ""
	}
	if !slices.Equal(maps, want) {
		t.Errorf("got %+v\nwant %+v", maps, want)
	}
}

func TestMissingStacksShowUnderANameThatSaysWhy(t *testing.T) {
	recs := []report.Record{
		{Kind: report.StatHold, Lock: "(overflow)", Count: 3, Nanos: 30},
		{Kind: report.StatHold, Lock: "x", Mode: report.Read, Count: 2, Nanos: 20},
		{Kind: report.StatWait, Lock: "x", Count: 9, Nanos: 90}, // another kind: left out
	}
	p := buildRecords(lookupSpec(Hold), recs, readMappings(), time.Now(), 0, report.Dropped{StatRows: 4})
	checkValid(t, p)
	if len(p.Sample) != 2 {
		t.Fatalf("%d samples, want the 2 hold records", len(p.Sample))
	}
	got := map[string]string{}
	for _, s := range p.Sample {
		got[s.Label["lock"][0]+"/"+s.Label["mode"][0]] = s.Location[0].Line[0].Function.Name
	}
	if got["(overflow)/write"] != "lockscope: (statistics table full)" || got["x/read"] != "lockscope: (stack not recorded)" {
		t.Errorf("stand-in frames: %v", got)
	}
	if !slices.ContainsFunc(p.Comments, func(c string) bool { return strings.Contains(c, "dropped: 4 statistics rows") }) {
		t.Errorf("comments do not report the dropped rows: %q", p.Comments)
	}
}

func TestSubtractRecordsKeepsOnlyWhatChanged(t *testing.T) {
	stk := []uintptr{1, 2}
	before := []report.Record{
		{Kind: report.StatWait, Lock: "a", Stack: stk, Count: 2, Nanos: 20},
		{Kind: report.StatWait, Lock: "b", Stack: stk, Count: 5, Nanos: 50},
		{Kind: report.StatHold, Lock: "a", Stack: stk, Count: 1, Nanos: 10},
	}
	after := []report.Record{
		{Kind: report.StatWait, Lock: "a", Stack: stk, Count: 3, Nanos: 35},                // grew
		{Kind: report.StatWait, Lock: "b", Stack: stk, Count: 5, Nanos: 50},                // same
		{Kind: report.StatHold, Lock: "a", Stack: stk, Count: 1, Nanos: 10},                // same
		{Kind: report.StatHold, Lock: "a", Mode: report.Read, Stack: stk, Count: 4},        // new mode
		{Kind: report.StatWait, Lock: "a", Stack: []uintptr{1, 3}, Count: 1, Nanos: 7},     // new stack
		{Kind: report.StatWaitByHolder, Lock: "a", Stack: stk, Count: 1, Nanos: 15},        // new kind
		{Kind: report.StatTryFail, Lock: "a", LockType: "RWMutex", Stack: stk, Count: 8},   // new type
		{Kind: report.StatTryFail, Lock: "a", LockType: "Mutex", Stack: stk[:1], Count: 0}, // zero
	}
	got := subtractRecords(before, after)
	want := []report.Record{
		{Kind: report.StatWait, Lock: "a", Stack: stk, Count: 1, Nanos: 15},
		after[3], after[4], after[5], after[6],
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if compareRecords(&got[i], &want[i]) != 0 || got[i].Count != want[i].Count || got[i].Nanos != want[i].Nanos {
			t.Errorf("record %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestCollectRejectsUnknownProfilesAndDeltasOfSnapshots(t *testing.T) {
	var unknown *UnknownProfileError
	if _, err := Collect("mutex"); !errors.As(err, &unknown) || unknown.Name != "mutex" {
		t.Errorf("Collect(\"mutex\") = %v", err)
	}
	if _, err := CollectDelta(context.Background(), Held, time.Second); err == nil {
		t.Error("a delta of the held snapshot was made")
	}
	if _, err := CollectDelta(context.Background(), Hold, 0); err == nil {
		t.Error("a delta of 0s was made")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := CollectDelta(ctx, Hold, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled delta returned %v", err)
	}
}

func TestEveryProfileIsValidAndLabelled(t *testing.T) {
	var rw debugmutex.RWMutex
	debugmutex.SetName(&rw, "valid.rw")
	rw.RLock()
	if rw.TryLock() {
		t.Fatal("TryLock of a read-held RWMutex succeeded")
	}
	rw.RUnlock()
	for _, name := range Names() {
		p, err := Collect(name)
		if err != nil {
			t.Fatal(err)
		}
		checkValid(t, p)
		if p.PeriodType == nil || p.PeriodType.Type != p.SampleType[0].Type || p.Period != 1 {
			t.Errorf("%s: period type %v, period %d", name, p.PeriodType, p.Period)
		}
	}
	p, _ := Collect(TryLock)
	found := false
	for _, s := range p.Sample {
		found = found || s.Label["lock"][0] == "valid.rw" && s.Label["mode"][0] == "write" && s.Label["type"][0] == "RWMutex"
	}
	if !found {
		t.Error("the RWMutex TryLock failure is not in the trylock profile with its labels")
	}
}
