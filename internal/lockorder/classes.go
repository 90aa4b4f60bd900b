package lockorder

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strings"

	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/report"
)

// The class graph. Beside the graph of lock instances, the same committed
// dependencies are kept between lock classes (a lock's declaration, with
// its package path: "example.com/bank.Bank.accounts"; record.LockMeta.Class),
// as Linux's lockdep keeps them: an order taken on one Bank and its inverse
// on another is a cycle of classes, and any Bank on which both run at once
// deadlocks, although no instance cycle exists.
//
// The rules, each a way the instance graph already stays quiet, at class
// level:
//   - Same-class nesting (a self-edge: parent then child of one type, locks
//     ordered by id, hand-over-hand down a list, a pipeline of stages) is no
//     edge at all: only cycles of two or more classes count.
//   - A lock with no declaration (a plain local, a value through a call) has
//     no class and no class edge: classes by site would make the two
//     arguments of a lock-in-id-order helper seem to invert.
//   - Hand-offs and TryLock: class edges come from the dependencies the
//     instance graph commits (when the locker releases the from lock), so
//     those dropped for a hand-off, and TryLock acquisitions, make none.
//   - Gates: an edge keeps the classes held before its from lock every time
//     it was seen; a cycle whose edges all share one is not reported (the
//     gate's instance, per object, serialises both orders). Likewise a class
//     write-held (after the from lock or before it) with every edge of the
//     cycle: on one object, no two of its goroutines can hold it at once
//     (bbolt: Close takes metalock then mmaplock under rwlock; a write
//     transaction begun under a read one takes mmaplock then, holding
//     rwlock, metalock).
//   - Reads: an edge into a read acquisition and one into a write
//     acquisition of the same classes are two edges, each with its own
//     gates. A cycle through an edge into a read of class X is reported
//     only if the next edge's holder write-holds X every time (the read
//     then waits whatever else happens); with X read-held there, only a
//     queued writer would block it, which the instance graph's write guard
//     decides per instance. (bbolt: metalock -> mmaplock is beginTx's read,
//     ungated, and Close's write, under rwlock; mmaplock -> metalock is a
//     write transaction begun under a read one, mmaplock read-held: no
//     class report, as the instance graph says.)
//   - One owner: only cycles whose classes are all fields of one struct
//     type (Bank.accounts and Bank.ledger, DB.rwlock and DB.mmaplock) are
//     reported, the claim then being about one object: any Bank on which
//     both orders run at once deadlocks. A cycle through classes of several
//     types pairs objects the classes cannot tell apart: goleveldb's block
//     cache and table cache share their bucket type, and Reader.mu ->
//     mBucket.mu (a block cache's bucket) against mBucket.mu -> Reader.mu
//     (the table cache's bucket, evicting an unused Reader) is no deadlock
//     (field test). Such cycles are left to the instance graph.
//   - One problem, one report: a class cycle whose first instances close an
//     instance cycle is the instance graph's to report; one that contains a
//     class cycle reported already is a longer copy.
//
// Bounds: at most maxClasses classes and maxClassEdges edges; beyond, new
// ones are counted in Dropped.Edges. Guarded by GraphMu.

const (
	maxClasses    = 1 << 16
	maxClassEdges = 1 << 18
)

type classNode struct {
	name  string
	label string // the declaration without its package path, for reading
	out   map[classKey]*classEdge
}

// classKey keys a class's out-edges: an edge into a read acquisition and
// one into a write acquisition of the same class are kept apart, each with
// its own gates, since the rules judge them differently.
type classKey struct {
	to   *classNode
	read bool
}

type classEdge struct {
	from, to *classNode
	gates    []string // classes held before from every time this edge was seen
	held     []string // classes write-held with from (other than from) every time
	// The first instances that took it, and how.
	fromID, toID     uint64
	fromName, toName string
	fromType, toType string
	g                int64
	fromStk, toStk   uint32
	fromSite         bool
	fromPC           uintptr
	modeTo           report.Mode
	// fromWrite: from was write-held every time this edge was seen (a
	// Mutex always is).
	fromWrite bool
}

var (
	classes         = map[string]*classNode{}
	classEdgeCount  int
	reportedClasses [][]string // the class sets of reported class cycles, for the longer-copy rule
)

// classDep is one committed dependency as the class graph takes it.
type classDep struct {
	from, to         string // classes ("" for none)
	fromID, toID     uint64
	fromName, toName string
	fromType, toType string
	gates, held      []string
	g                int64
	fromStk, toStk   uint32
	fromSite         bool
	fromPC           uintptr
	modeTo           report.Mode
	fromWrite        bool
}

func classNodeFor(name string) *classNode {
	n := classes[name]
	if n == nil {
		if len(classes) >= maxClasses {
			return nil
		}
		n = &classNode{name: name, label: classLabel(name), out: map[classKey]*classEdge{}}
		classes[name] = n
	}
	return n
}

// classLabel is a class without its package path: "Bank.accounts".
func classLabel(class string) string {
	path := stacks.PackagePath(class)
	if path == "" {
		return class
	}
	if elem := path[strings.LastIndexByte(path, '/')+1:]; strings.Count(class[len(path):], ".") == 1 {
		return elem + class[len(path):] // a package variable: "bank.mu"
	}
	return class[len(path)+1:]
}

// addClassDep adds d to the class graph and returns the report of the class
// cycle it closes, if any. GraphMu held.
func addClassDep(d *classDep) *report.Report {
	if d.from == "" || d.to == "" || d.from == d.to {
		return nil
	}
	from, to := classNodeFor(d.from), classNodeFor(d.to)
	if from == nil || to == nil {
		EdgesDropped.Add(1)
		return nil
	}
	key := classKey{to, d.modeTo == report.Read}
	if ed := from.out[key]; ed != nil {
		had := len(ed.gates) > 0
		hadHeld := len(ed.held) > 0
		ed.gates = intersectStrings(ed.gates, d.gates)
		ed.held = intersectStrings(ed.held, d.held)
		ed.fromWrite = ed.fromWrite && d.fromWrite // only ever fewer reports
		if had && len(ed.gates) == 0 || hadHeld && len(ed.held) == 0 {
			return classCycle(ed) // seen now without its gate, or without a lock held with it
		}
		return nil
	}
	if classEdgeCount >= maxClassEdges {
		EdgesDropped.Add(1)
		return nil
	}
	ed := &classEdge{from: from, to: to, gates: slices.Clone(d.gates), held: slices.Clone(d.held),
		fromID: d.fromID, toID: d.toID, fromName: d.fromName, toName: d.toName, fromType: d.fromType, toType: d.toType,
		g: d.g, fromStk: d.fromStk, toStk: d.toStk, fromSite: d.fromSite, fromPC: d.fromPC, modeTo: d.modeTo, fromWrite: d.fromWrite}
	from.out[key] = ed
	classEdgeCount++
	return classCycle(ed)
}

// classCycle returns the report of the shortest class cycle through ed, if
// it is one the rules above report. The path back from ed's to to its from
// may have two edges on a hop (into a read and into a write); each choice
// is judged, up to maxEdgeChoices of them. GraphMu held.
func classCycle(ed *classEdge) *report.Report {
	hops := classPath(ed.to, ed.from)
	if hops == nil {
		return nil
	}
	choices := 1
	for _, h := range hops {
		choices = min(choices*len(h), maxEdgeChoices)
	}
	var cycle []*classEdge
	for c := range choices {
		try := make([]*classEdge, 0, len(hops)+1)
		for _, h := range hops {
			try = append(try, h[c%len(h)])
			c /= len(h)
		}
		try = append(try, ed)
		if classCycleCounts(try) {
			cycle = try
			break
		}
	}
	if cycle == nil {
		return nil
	}
	set := make([]string, len(cycle))
	for i, e := range cycle {
		set[i] = e.from.name
	}
	sort.Strings(set)
	rememberClasses(set)
	return classReport(cycle)
}

// maxEdgeChoices bounds the choices of parallel edges judged per cycle.
const maxEdgeChoices = 64

// classCycleCounts says whether cycle is one the rules report: no edge
// into a read unless the class read is write-held by the next edge's
// holder (a read waits then whether or not a writer is queued; with the
// class read-held there, only a queued writer blocks it, which the
// instance graph's write guard judges per instance), no common gate or
// write-held class, one owner, and neither an instance cycle nor a longer
// copy of a reported one.
func classCycleCounts(cycle []*classEdge) bool {
	common, commonHeld := cycle[0].gates, cycle[0].held
	for i, e := range cycle {
		if e.modeTo == report.Read && !cycle[(i+1)%len(cycle)].fromWrite {
			return false
		}
		common = intersectStrings(common, e.gates)
		commonHeld = intersectStrings(commonHeld, e.held)
	}
	if len(common) > 0 || len(commonHeld) > 0 {
		return false
	}
	return sameOwner(cycle) != "" && !instanceCycle(cycle) && !longerClassCopy(cycle)
}

// classPath returns the shortest path of classes from a to b, as the
// edges of each hop (one or two: into a read, into a write), or nil.
func classPath(a, b *classNode) [][]*classEdge {
	via := map[*classNode]*classNode{a: nil}
	queue := []*classNode{a}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n == b {
			var path [][]*classEdge
			for x := b; x != a; x = via[x] {
				prev := via[x]
				var hop []*classEdge
				for _, read := range []bool{false, true} {
					if e := prev.out[classKey{x, read}]; e != nil {
						hop = append(hop, e)
					}
				}
				path = append(path, hop)
			}
			slices.Reverse(path)
			return path
		}
		for k := range n.out {
			if _, seen := via[k.to]; !seen {
				via[k.to] = n
				queue = append(queue, k.to)
			}
		}
	}
	return nil
}

// instanceCycle reports whether the first instances of the cycle's edges
// close a cycle of instances themselves: the instance graph's to report.
func instanceCycle(cycle []*classEdge) bool {
	for i, e := range cycle {
		if e.toID != cycle[(i+1)%len(cycle)].fromID {
			return false
		}
	}
	return true
}

func longerClassCopy(cycle []*classEdge) bool {
	set := make([]string, 0, len(cycle))
	for _, e := range cycle {
		set = append(set, e.from.name)
	}
	return classSetReported(set)
}

// rememberClasses notes a reported cycle's classes (by the instance graph or
// the class graph), for the one-problem-one-report and longer-copy rules.
// GraphMu held.
func rememberClasses(set []string) {
	reportedClasses = append(reportedClasses, set)
	if len(reportedClasses) > maxCycleMemory {
		reportedClasses = reportedClasses[1:]
	}
}

// classSetReported reports whether a cycle of the classes in set, or of a
// subset of them, was reported. GraphMu held.
func classSetReported(classes []string) bool {
	set := map[string]bool{}
	for _, c := range classes {
		set[c] = true
	}
	for _, r := range reportedClasses {
		if len(r) > len(set) {
			continue
		}
		sub := true
		for _, c := range r {
			if !set[c] {
				sub = false
				break
			}
		}
		if sub {
			return true
		}
	}
	return false
}

// classReport is the report of a class cycle: which instances took which
// order, with their stacks, and what it means for the type.
func classReport(cycle []*classEdge) *report.Report {
	r := &report.Report{Kind: report.KindLockOrder, Time: rt.WallTime(rt.Nanotime())}
	var order, keys []string
	seen := map[uint64]bool{}
	owner := sameOwner(cycle)
	for _, e := range cycle {
		order = append(order, e.from.label)
		r.Edges = append(r.Edges, report.Edge{
			From:      fmt.Sprintf("%s (class %s, #%d)", e.fromName, e.from.name, e.fromID),
			To:        fmt.Sprintf("%s (class %s, #%d)", e.toName, e.to.name, e.toID),
			Goroutine: e.g, FromStack: stacks.StackFrames(e.fromStk), ToStack: stacks.StackFrames(e.toStk), FromSiteOnly: e.fromSite,
		})
		for _, l := range []report.LockRef{{ID: e.fromID, Name: e.fromName, Type: e.fromType, Class: e.from.name}, {ID: e.toID, Name: e.toName, Type: e.toType, Class: e.to.name}} {
			if !seen[l.ID] {
				seen[l.ID] = true
				r.Locks = append(r.Locks, l)
			}
		}
		keys = append(keys, fmt.Sprintf("%s>%s", stacks.KeySite(e.fromStk, e.fromPC, 0), stacks.KeySite(e.toStk, 0, 0)))
	}
	order = append(order, cycle[0].from.label)
	any := fmt.Sprintf("any %s on which both run at once deadlocks", owner[strings.LastIndexByte(owner, '.')+1:])
	r.Summary = fmt.Sprintf("potential deadlock: lock-order inversion between lock classes %s, each order taken on other instances (%s)",
		strings.Join(order, " -> "), any)
	r.Key = string(report.KindLockOrder) + "|class|" + strings.Join(SortedCopy(keys), "|")
	return r
}

// sameOwner returns the struct type ("example.com/bank.Bank") whose fields
// all the cycle's classes are, or "".
func sameOwner(cycle []*classEdge) string {
	owner := ""
	for i, e := range cycle {
		t := report.ClassOwner(e.from.name)
		if t == "" || i > 0 && t != owner {
			return ""
		}
		owner = t
	}
	return owner
}

func intersectStrings(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// maxClassEdgesWritten bounds the class edges a process writes at its end.
const maxClassEdgesWritten = 10000

// ClassEdges returns the class graph's edges, at most maxClassEdgesWritten
// of them (the rest counted in Dropped.Edges), for the report file: other
// processes' edges close the cycles no process saw whole.
func ClassEdges() []report.ClassEdge {
	type raw struct {
		e    classEdge
		from string
		to   string
	}
	GraphMu.Lock()
	var edges []raw
	for _, n := range classes {
		for _, e := range n.out {
			if len(edges) >= maxClassEdgesWritten {
				EdgesDropped.Add(1)
				continue
			}
			edges = append(edges, raw{*e, e.from.name, e.to.name})
		}
	}
	GraphMu.Unlock()
	program, version := programIdentity()
	out := make([]report.ClassEdge, 0, len(edges))
	for _, r := range edges {
		out = append(out, report.ClassEdge{
			From: r.from, To: r.to, ToMode: r.e.modeTo, Gates: r.e.gates, Program: program, Version: version,
			FromLock: r.e.fromName, ToLock: r.e.toName, Goroutine: r.e.g,
			FromStack: stacks.StackFrames(r.e.fromStk), ToStack: stacks.StackFrames(r.e.toStk), FromSiteOnly: r.e.fromSite,
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].To < out[j].To
	})
	return out
}

// programIdentity names this process for merged class graphs: its main
// package's path (a test binary's is its package path and ".test") and the
// main module's version.
func programIdentity() (program, version string) {
	program = filepath.Base(os.Args[0])
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Path != "" {
			program = bi.Path
		}
		version = bi.Main.Version
	}
	return program, version
}
