package lockorder

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"unsafe"
	"weak"

	"github.com/lockscope/lockscope/internal/delivery"
	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/report"
)

// The lock-order graph.
//
// Acquiring B while holding A is a dependency A->B between lock instances
// (two instances of one struct type locked in a consistent order, such as by
// account id, are correct and stay quiet). An edge that closes a cycle is a
// potential deadlock, reported the first time it is seen, even though no
// goroutine blocked.
//
// Hand-offs: a goroutine that locks A and hands it to another goroutine to
// unlock does not hold A in any sense that matters while it goes on; what it
// locks meanwhile is no dependency on A. Which case it is is known only when
// A is released. So a dependency is pending on the hold of A it came from
// and enters the graph when the goroutine that took A releases it; if
// another goroutine releases A, the dependency is dropped. (Likewise a
// second RLock under a read hold, see checkRecursiveRead.) A goroutine that
// blocks forever holding A never releases it: when the wait-for graph proves
// it deadlocked, its pending dependencies enter the graph then.
//
// Fast path: like Linux's lockdep, each goroutine keeps a hash of its chain
// of held locks. A chain whose hash is in chainSet has had all its edges
// recorded already: one lock-free lookup, no graph work. A chain pending on
// the hold on top is skipped too.
//
// Quiet cases: an acquisition by TryLock cannot block, so it gets no edge
// into it. Each edge keeps its gate set: the locks that were held before its
// "from" lock every time the edge was seen. A cycle whose edges all share a
// gate cannot deadlock (the gate serialises them) and is not reported. A
// cycle is reported through its shortest path, and not when a shorter cycle
// among its locks was reported already (it would be a longer copy of it),
// nor when it needs a writer queued on an RWMutex that no writer could be
// queued on while the cycle stands (see readImpossible).
//
// Memory: nodes are lock instances, keyed by id, created when a lock first
// takes part in an edge, removed (with their edges) by a cleanup on the
// lock's meta when the lock is garbage; nothing here points at a lock. At
// most maxEdges edges are kept; beyond that new edges are counted, not
// recorded. chainSet is a fixed 64K-entry table that evicts at random when full.

const (
	chainBits       = 16
	chainSize       = 1 << chainBits
	maxEdges        = 1 << 18
	maxPendingEdges = 256 // per hold; beyond, counted in Dropped.Edges
	maxCycleMemory  = 4096
)

var chainSet [chainSize]uint64

func chainKnown(h uint64) bool {
	if h == 0 {
		h = 1
	}
	i := h >> (64 - chainBits)
	for p := uint64(0); p < 8; p++ {
		switch atomic.LoadUint64(&chainSet[(i+p)&(chainSize-1)]) {
		case h:
			return true
		case 0:
			return false
		}
	}
	return false
}

func chainAdd(h uint64) {
	if h == 0 {
		h = 1
	}
	i := h >> (64 - chainBits)
	for p := uint64(0); p < 8; p++ {
		s := &chainSet[(i+p)&(chainSize-1)]
		old := atomic.LoadUint64(s)
		if old == h {
			return
		}
		if old == 0 && atomic.CompareAndSwapUint64(s, 0, h) {
			return
		}
	}
	// Neighbourhood full: evict one at random. It is only a cache; the
	// graph keeps every edge (an evicted chain is checked again, cheaply:
	// its edges are known).
	atomic.StoreUint64(&chainSet[(i+uint64(rt.Cheaprand()%8))&(chainSize-1)], h)
}

type node struct {
	id    uint64
	name  string
	typ   string
	class string // the lock's class, "" if none
	ord   int    // position in a topological order of the acyclic edges
	meta  weak.Pointer[record.LockMeta]
	out   map[uint64]*edge
	in    map[uint64]*edge
}

type edge struct {
	from, to *node
	gates    []uint64 // ids of locks held before from every time this edge was seen
	held     []uint64 // ids of the other locks held with from every time
	g        int64    // goroutine that first took it
	fromStk  uint32   // where from was acquired
	fromSite bool     // fromStk is from's acquire site alone (heldEntry.siteOnly)
	fromPC   uintptr
	toStk    uint32 // where to was acquired while from was held
	// modeTo is the mode to was first wanted in with from held;
	// fromWrite says whether from was ever held for writing then. A read in
	// a cycle blocks without any queued writer if the cycle write-holds its
	// lock (readImpossible).
	modeTo    report.Mode
	fromWrite bool
	// back: the edge closes a cycle (reported, or gated). It is kept, so it
	// is recorded once, but it is not part of the acyclic graph the
	// searches walk: a later cycle through it would be a longer copy.
	back bool
}

var (
	nextOrd      int // guarded by graphMu
	GraphMu      rt.RankedMutex[rt.RGraph]
	Graph        = map[uint64]*node{}
	graphPeak    int // the most nodes graph has held since it was last rebuilt
	edgeCount    int
	EdgesDropped atomic.Int64
	// reportedCycles are the lock sets of the cycles reported, for the
	// longer-copy rule (guarded by graphMu; bounded).
	reportedCycles []map[uint64]bool
	// suspended are the cycles not reported because a writer they need
	// cannot be there (readImpossible), as far as the writes seen so far
	// tell; a later write of the lock may make them possible (guarded by
	// graphMu; bounded).
	suspended  []suspendedCycle
	nsuspended atomic.Int32
)

type suspendedCycle struct {
	cycle []*edge
	reads []uint64 // the locks read in the cycle, whose writes decide
}

const maxSuspended = 1024

// suspend remembers a cycle readImpossible ruled out. graphMu held.
func suspend(cycle []*edge) {
	if len(suspended) >= maxSuspended {
		EdgesDropped.Add(1)
		return
	}
	var reads []uint64
	for _, e := range cycle {
		if e.modeTo == report.Read {
			reads = append(reads, e.to.id)
		}
	}
	suspended = append(suspended, suspendedCycle{cycle: append([]*edge(nil), cycle...), reads: reads})
	nsuspended.Store(int32(len(suspended)))
}

// recheckSuspended reports the suspended cycles through lock id that a
// change of its write guard has made possible.
func recheckSuspended(id uint64) {
	if nsuspended.Load() == 0 {
		return
	}
	GraphMu.Lock()
	reports := resume(func(s *suspendedCycle) bool { return slices.Contains(s.reads, id) })
	GraphMu.Unlock()
	for _, r := range reports {
		delivery.EmitNoAction(r) // found on a lock's write path, which must not panic holding it
	}
}

// resumeThrough reports the suspended cycles through edge ed that a write
// now seen at one of its ends has made possible. graphMu held.
func resumeThrough(ed *edge) []*report.Report {
	return resume(func(s *suspendedCycle) bool { return slices.Contains(s.cycle, ed) })
}

// resume reports the suspended cycles that through says a change concerns
// and readImpossible no longer rules out, and forgets them. graphMu held.
func resume(through func(*suspendedCycle) bool) []*report.Report {
	if len(suspended) == 0 {
		return nil
	}
	var reports []*report.Report
	kept := suspended[:0]
	for i := range suspended {
		s := &suspended[i]
		if through(s) && !readImpossible(s.cycle) {
			if !longerCopy(s.cycle) {
				reports = append(reports, inversionReport(s.cycle))
				rememberCycle(s.cycle)
			}
			continue
		}
		kept = append(kept, *s)
	}
	for i := len(kept); i < len(suspended); i++ {
		suspended[i] = suspendedCycle{}
	}
	suspended = kept
	nsuspended.Store(int32(len(suspended)))
	return reports
}

func graphNode(m *record.LockMeta) *node {
	n := Graph[m.Id]
	if n == nil {
		nextOrd++
		n = &node{id: m.Id, name: m.Name(), typ: m.Typ, class: m.Class(), ord: nextOrd, meta: weak.Make(m), out: map[uint64]*edge{}, in: map[uint64]*edge{}}
		Graph[m.Id] = n
		graphPeak = max(graphPeak, len(Graph))
		if !m.InGraph.Swap(true) {
			runtime.AddCleanup(m, removeNode, m.Id)
		}
	}
	return n
}

// removeNode drops a dead lock's node and its edges.
func removeNode(id uint64) {
	GraphMu.Lock()
	defer GraphMu.Unlock()
	n := Graph[id]
	if n == nil {
		return
	}
	for _, e := range n.out {
		delete(e.to.in, id)
		edgeCount--
	}
	for _, e := range n.in {
		delete(e.from.out, id)
		edgeCount--
	}
	delete(Graph, id)
	// Go maps keep their buckets after deletes: once most nodes are gone,
	// copy the survivors into a fresh map so the memory goes back.
	if graphPeak > 1024 && len(Graph) < graphPeak/4 {
		fresh := make(map[uint64]*node, len(Graph))
		for k, v := range Graph {
			fresh[k] = v
		}
		Graph, graphPeak = fresh, len(fresh)
	}
}

// CheckOrder records, pending on each lock g holds, the dependency on c
// that acquiring (or waiting for) c in mode now creates, unless this chain
// of held locks is known. fp is the lock method's frame.
func CheckOrder(g *record.Gstate, id int64, c *record.LockCore, typ string, mode report.Mode, fp unsafe.Pointer, chain uint64) {
	if chainKnown(chain) {
		return
	}
	top := g.Top()
	if top == nil || (top.Pend != nil && top.Pend.LastChain == chain) {
		return
	}
	addPending(g, id, c, typ, mode, fp, chain)
}

//go:noinline
func addPending(g *record.Gstate, id int64, c *record.LockCore, typ string, mode report.Mode, fp unsafe.Pointer, chain uint64) {
	pc1, pc2 := rt.CallerPCs(fp)
	to := c.MetaFor(g, typ, pc1, pc2)
	to.ClassAt(pc1, pc2) // a lock named before its first use gets its class here
	toStk := stacks.CaptureStack(fp)
	var all []uint64 // every other lock held
	type heldClass struct {
		id    uint64
		class string
	}
	var writeHeld []heldClass // the classes of those write-held
	for i := int32(0); i < g.N; i++ {
		if h := g.Entry(i); h.Live() && !h.Is(c) {
			all = append(all, h.LockID)
			if m := h.GetMeta(); m != nil && h.Mode() == report.Write && !h.IsUncertain() {
				if cl := m.ClassAt(h.Pc1, h.Pc2); cl != "" {
					writeHeld = append(writeHeld, heldClass{h.LockID, cl})
				}
			}
		}
	}
	if typ == record.RwMutexType && mode == report.Write {
		guardWrite(c, to, all)
	}
	heldClassesBut := func(id uint64) []string {
		var out []string
		for _, w := range writeHeld {
			if w.id != id && !slices.Contains(out, w.class) {
				out = append(out, w.class)
			}
		}
		return out
	}
	var before []uint64
	var beforeClasses []string
	var top *record.HeldEntry
	for i := int32(0); i < g.N; i++ {
		h := g.Entry(i)
		if !h.Live() {
			continue
		}
		top = h
		if h.Is(c) || h.IsUncertain() {
			continue // a recursive lock: the wait-for graph's business; or a hold that may be another's
		}
		if record.EntryMeta(g, h) == nil {
			continue
		}
		if h.Pend == nil {
			h.Pend = new(record.Pending)
		}
		hid := h.LockID
		if !h.Pend.Has(to.Id, mode) {
			if len(h.Pend.Edges) >= maxPendingEdges {
				EdgesDropped.Add(1)
			} else {
				others := make([]uint64, 0, len(all))
				for _, x := range all {
					if x != hid {
						others = append(others, x)
					}
				}
				h.Pend.Edges = append(h.Pend.Edges, record.PendingEdge{
					To: to, ToMode: mode, ToStk: toStk, Gates: append([]uint64(nil), before...), Held: others, G: id, Chain: chain,
					GateClasses: slices.Clone(beforeClasses), HeldClasses: heldClassesBut(hid),
				})
			}
		}
		before = append(before, hid)
		if c := h.GetMeta().ClassAt(h.Pc1, h.Pc2); c != "" {
			beforeClasses = append(beforeClasses, c)
		}
	}
	if top != nil && top.Pend != nil {
		top.Pend.LastChain = chain
	}
}

// CommitPending commits what was pending on the owner's hold e, which the
// owner is releasing, and delivers the reports that makes. It reports
// the one whose configured action is a panic, if any.
func CommitPending(g *record.Gstate, e *record.HeldEntry) *report.Report {
	return delivery.EmitAll(commitEntry(g, e))
}

// CommitAllPending commits what is pending on every hold of g: g is proven
// to hold them for good. waitMu held, g blocked.
func CommitAllPending(g *record.Gstate) []*report.Report {
	var out []*report.Report
	for i := int32(0); i < g.N; i++ {
		if e := g.Entry(i); e != nil && e.Live() && e.Pend != nil {
			out = append(out, commitEntry(g, e)...)
		}
	}
	return out
}

// commitEntry adds the dependencies pending on hold e to the graph and
// returns the reports they make.
func commitEntry(g *record.Gstate, e *record.HeldEntry) []*report.Report {
	p := e.Pend
	e.Pend = nil
	if p == nil || e.IsUncertain() {
		return nil // an uncertain hold proves nothing
	}
	var reports []*report.Report
	if p.Rr != nil {
		reports = append(reports, recursiveReadReport(e, p.Rr))
	}
	if len(p.Edges) == 0 {
		return reports
	}
	fm := e.GetMeta()
	if fm == nil {
		return reports
	}
	fromStk, fromSite := e.StackOrSite(), e.SiteOnly()
	fromPC := stacks.SitePC(e.Pc1, e.Pc2)
	fromWrite := e.Mode() == report.Write
	fromInfo, fromClass := fm.Info(), fm.Class()
	deps := make([]classDep, 0, len(p.Edges))
	for i := range p.Edges {
		pe := &p.Edges[i]
		if fromClass == "" {
			break
		}
		toInfo := pe.To.Info()
		deps = append(deps, classDep{from: fromClass, to: pe.To.Class(), fromID: fromInfo.ID, toID: toInfo.ID,
			fromName: fromInfo.Name, toName: toInfo.Name, fromType: fromInfo.Type, toType: toInfo.Type,
			gates: pe.GateClasses, held: pe.HeldClasses, g: pe.G, fromStk: fromStk, toStk: pe.ToStk, fromSite: fromSite, fromPC: fromPC, modeTo: pe.ToMode,
			fromWrite: fromWrite})
	}

	GraphMu.Lock()
	from, rs := graphNodeWith(fm)
	reports = append(reports, rs...)
	for i := range p.Edges {
		pe := &p.Edges[i]
		src := edgeSource{from: from, pe: *pe, fromStk: fromStk, fromSite: fromSite, fromPC: fromPC, fromWrite: fromWrite}
		if Graph[pe.To.Id] == nil && deferEdge(pe.To, &src) {
			continue // into a lock that holds nothing yet: no cycle can pass through it
		}
		to, rs := graphNodeWith(pe.To)
		reports = append(reports, rs...)
		reports = append(reports, addEdge(to, &src)...)
	}
	for i := range deps {
		if r := addClassDep(&deps[i]); r != nil {
			reports = append(reports, r)
		}
	}
	GraphMu.Unlock()
	for i := range p.Edges {
		chainAdd(p.Edges[i].Chain)
	}
	return reports
}

// edgeSource is what a lock-order edge is made of: the from node, the
// dependency that was pending on the from hold, and that hold's stack,
// site and mode.
type edgeSource struct {
	from      *node  // nil while deferred: fromID names it
	fromID    uint64 // the from node's id, while deferred
	pe        record.PendingEdge
	fromStk   uint32
	fromSite  bool
	fromPC    uintptr
	fromWrite bool
}

// addEdge adds (or merges) the edge src describes into node to, and returns
// the reports of the cycles it closes. graphMu held.
func addEdge(to *node, src *edgeSource) []*report.Report {
	var reports []*report.Report
	from, pe := src.from, &src.pe
	ed := from.out[to.id]
	if ed != nil {
		had := len(ed.gates) > 0
		ed.gates = intersect(ed.gates, pe.Gates)
		ed.held = intersect(ed.held, pe.Held)
		if src.fromWrite && !ed.fromWrite {
			// Seen now with its from lock write-held: a cycle through it
			// that needed a queued writer may no longer need one.
			ed.fromWrite = true
			reports = append(reports, resumeThrough(ed)...)
		}
		// modeTo stays the first seen. Taking a later write for the whole
		// edge would mix its read observations' held locks into the write
		// (bbolt: metalock->mmaplock is beginTx's read, and Close's write
		// under rwlock; as a write it made a cycle that rwlock rules out).
		if ed.back && had && len(ed.gates) == 0 {
			// A gated cycle's edge, now seen without its gate.
			if path := findPath(to, from); path != nil {
				if r := cycleFound(path, ed); r != nil {
					reports = append(reports, r)
				}
			}
		}
		return reports
	}
	if edgeCount >= maxEdges {
		EdgesDropped.Add(1)
		return nil
	}
	ed = &edge{from: from, to: to, gates: pe.Gates, held: pe.Held, g: pe.G,
		fromStk: src.fromStk, fromSite: src.fromSite, fromPC: src.fromPC, toStk: pe.ToStk, modeTo: pe.ToMode, fromWrite: src.fromWrite}
	from.out[to.id] = ed
	to.in[from.id] = ed
	edgeCount++
	if path := orderEdge(ed); path != nil {
		ed.back = true
		if r := cycleFound(path, ed); r != nil {
			reports = append(reports, r)
		}
	}
	return reports
}

// cycleFound decides the cycle that edge ed closes with path (from ed.to
// back to ed.from): quiet if its edges share a gate or it is a longer copy
// of a reported one, suspended if it needs a writer that cannot be queued,
// else remembered and returned as a report. graphMu held.
func cycleFound(path []*edge, ed *edge) *report.Report {
	cycle := append(path, ed)
	if gated(path, ed) || longerCopy(cycle) {
		return nil
	}
	if readImpossible(cycle) {
		suspend(cycle)
		return nil
	}
	if set := cycleClasses(cycle); set != nil {
		if classSetReported(set) {
			// One problem, one report: the class graph reported this
			// cycle of classes, taken on other instances, already.
			rememberCycle(cycle)
			return nil
		}
		rememberClasses(set)
	}
	r := inversionReport(cycle)
	rememberCycle(cycle)
	return r
}

// cycleClasses returns the sorted classes of an instance cycle's locks, or
// nil if one has none.
func cycleClasses(cycle []*edge) []string {
	set := make([]string, 0, len(cycle))
	for _, e := range cycle {
		if e.from.class == "" {
			return nil
		}
		if !slices.Contains(set, e.from.class) {
			set = append(set, e.from.class)
		}
	}
	if len(set) < 2 {
		return nil // same-class nesting: the class graph has no such cycle
	}
	sort.Strings(set)
	return set
}

// Leaf locks stay out of the graph. A lock that has never been held while
// another was acquired has no edge out of it, so no cycle passes through
// it: the edges into it wait on its meta (deferredIn), by the ids of their
// from nodes, and enter the graph, in the order they came, when its first
// edge out does (or when more than maxDeferredIn wait). Per-object locks
// taken under a container's lock (a cache's entries, a tree's nodes) are
// such leaves: they cost no node, no weak pointer, no cleanup, and the
// container's node no edge to each of them.
const maxDeferredIn = 16

// deferEdge keeps src on the meta m of its to lock, which has no node,
// merging it with a kept edge from the same lock. It reports false when m
// keeps maxDeferredIn already: m then needs its node. graphMu held.
func deferEdge(m *record.LockMeta, src *edgeSource) bool {
	list := deferredList(m, true)
	for i := range *list {
		d := &(*list)[i]
		if d.fromID != src.from.id {
			continue
		}
		d.pe.Gates = intersect(d.pe.Gates, src.pe.Gates)
		d.pe.Held = intersect(d.pe.Held, src.pe.Held)
		d.fromWrite = d.fromWrite || src.fromWrite
		return true
	}
	if len(*list) >= maxDeferredIn {
		return false
	}
	d := *src
	d.from, d.fromID = nil, src.from.id // by id: a dead lock's node is not kept
	d.pe.To = nil                       // m itself: no pointer to it from its own list
	*list = append(*list, d)
	return true
}

// deferredList returns the edges deferred on m (its deferredIn, which the
// record layer keeps opaque), making the list if asked to. graphMu held.
func deferredList(m *record.LockMeta, create bool) *[]edgeSource {
	if p, ok := m.DeferredIn.(*[]edgeSource); ok {
		return p
	}
	if !create {
		return nil
	}
	p := new([]edgeSource)
	m.DeferredIn = p
	return p
}

// graphNodeWith returns m's node, creating it, and then adding the edges
// deferred on m (whose from nodes still exist), with the reports they make.
// graphMu held.
func graphNodeWith(m *record.LockMeta) (*node, []*report.Report) {
	n := graphNode(m)
	list := deferredList(m, false)
	if list == nil || len(*list) == 0 {
		return n, nil
	}
	deferred := *list
	*list = nil
	var reports []*report.Report
	for i := range deferred {
		d := &deferred[i]
		if d.from = Graph[d.fromID]; d.from == nil {
			continue // its from lock is gone: so is the dependency
		}
		d.pe.To = m
		reports = append(reports, addEdge(n, d)...)
	}
	return n, reports
}

// orderEdge keeps the topological order of the acyclic edges when e joins
// them (Pearce and Kelly's dynamic topological sort: an edge that agrees
// with the order costs nothing; one that does not costs a search of the
// nodes between its ends). If e closes a cycle it returns the path from
// e.to back to e.from and leaves e out of the order. graphMu held.
func orderEdge(e *edge) []*edge {
	x, y := e.from, e.to
	if x.ord < y.ord {
		return nil
	}
	if x == y {
		return []*edge{}
	}
	lb, ub := y.ord, x.ord
	// Forward from y through nodes ordered at most ub: reaching x is a cycle.
	path, fwd := searchPath(y, x, e, ub)
	if path != nil {
		return path
	}
	// Backward from x through nodes ordered at least lb.
	seenB := map[uint64]bool{x.id: true}
	bwd := []*node{x}
	for i := 0; i < len(bwd); i++ {
		for _, in := range bwd[i].in {
			if in.back || in == e || in.from.ord < lb || seenB[in.from.id] {
				continue
			}
			seenB[in.from.id] = true
			bwd = append(bwd, in.from)
		}
	}
	// Reorder: the backward set before the forward set, in the slots they
	// held between them.
	sort.Slice(fwd, func(i, j int) bool { return fwd[i].ord < fwd[j].ord })
	sort.Slice(bwd, func(i, j int) bool { return bwd[i].ord < bwd[j].ord })
	slots := make([]int, 0, len(fwd)+len(bwd))
	for _, n := range bwd {
		slots = append(slots, n.ord)
	}
	for _, n := range fwd {
		slots = append(slots, n.ord)
	}
	sort.Ints(slots)
	k := 0
	for _, n := range bwd {
		n.ord = slots[k]
		k++
	}
	for _, n := range fwd {
		n.ord = slots[k]
		k++
	}
	return nil
}

func pathVia(via map[uint64]*edge, from, to *node) []*edge {
	var path []*edge
	for n := to; n != from; {
		e := via[n.id]
		path = append(path, e)
		n = e.from
	}
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return path
}

// findPath returns the edges of a shortest path from a to b through the
// acyclic edges, or nil. graphMu held.
func findPath(a, b *node) []*edge {
	if a == b {
		return nil
	}
	path, _ := searchPath(a, b, nil, math.MaxInt)
	return path
}

// searchPath searches breadth first from a to b through the acyclic edges
// other than skip, into nodes ordered at most maxOrd. It returns the path
// found, or nil and the nodes visited (a first). graphMu held.
func searchPath(a, b *node, skip *edge, maxOrd int) ([]*edge, []*node) {
	via := map[uint64]*edge{a.id: nil}
	visited := []*node{a}
	for i := 0; i < len(visited); i++ {
		for _, o := range visited[i].out {
			if o.back || o == skip || o.to.ord > maxOrd {
				continue
			}
			if _, seen := via[o.to.id]; seen {
				continue
			}
			via[o.to.id] = o
			if o.to == b {
				return pathVia(via, a, b), nil
			}
			visited = append(visited, o.to)
		}
	}
	return nil, visited
}

// gated reports whether one lock was held, before the first lock of each
// edge, on every edge of the cycle path+e.
func gated(path []*edge, e *edge) bool {
	common := e.gates
	for _, p := range path {
		common = intersect(common, p.gates)
		if len(common) == 0 {
			return false
		}
	}
	return len(common) > 0
}

// readImpossible reports whether the cycle needs a writer that cannot be
// there: an edge into a read acquisition of Y blocks only behind a writer of
// Y (holding it, or queued). If every write acquisition of Y seen since its
// first read held some lock G, and a goroutine of the cycle holds G while
// it waits, no such writer can exist while the cycle stands (RWMutex's
// rules, reasoned as lockdep does with read/write dependencies).
// graphMu held.
func readImpossible(cycle []*edge) bool {
	var inCycle map[uint64]bool
	for i, e := range cycle {
		if e.modeTo != report.Read {
			continue
		}
		if cycle[(i+1)%len(cycle)].fromWrite {
			continue // the cycle write-holds the lock read: no writer need queue
		}
		m := e.to.meta.Value()
		if m == nil || m.Wunguarded.Load() {
			continue
		}
		m.Rmu.Lock()
		seen, guard := m.Wseen.Load(), m.WriteGuard
		m.Rmu.Unlock()
		if !seen {
			return true // no writer yet; a write later rechecks (recheckSuspended)
		}
		if len(guard) == 0 {
			continue
		}
		if inCycle == nil {
			inCycle = map[uint64]bool{}
			for _, c := range cycle {
				inCycle[c.from.id] = true
				for _, h := range c.held {
					inCycle[h] = true
				}
			}
		}
		for _, gid := range guard {
			if inCycle[gid] {
				return true
			}
		}
	}
	return false
}

// longerCopy reports whether a cycle on a strict subset of the locks of
// cycle was reported already. graphMu held.
func longerCopy(cycle []*edge) bool {
	set := make(map[uint64]bool, len(cycle))
	for _, e := range cycle {
		set[e.from.id] = true
	}
	for _, r := range reportedCycles {
		if len(r) >= len(set) {
			continue
		}
		sub := true
		for id := range r {
			if !set[id] {
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

func rememberCycle(cycle []*edge) {
	if len(reportedCycles) >= maxCycleMemory {
		return
	}
	set := make(map[uint64]bool, len(cycle))
	for _, e := range cycle {
		set[e.from.id] = true
	}
	reportedCycles = append(reportedCycles, set)
}

func intersect(a, b []uint64) []uint64 {
	var out []uint64
	for _, x := range a {
		for _, y := range b {
			if x == y {
				out = append(out, x)
				break
			}
		}
	}
	return out
}

// inversionReport describes a lock-order cycle; cycle[i].to == cycle[i+1].from.
func inversionReport(cycle []*edge) *report.Report {
	r := &report.Report{Kind: report.KindLockOrder, Time: rt.WallTime(rt.Nanotime())}
	names := map[uint64]string{}
	count := map[string]int{}
	for _, e := range cycle {
		if _, ok := names[e.from.id]; !ok {
			names[e.from.id] = e.from.name
			count[e.from.name]++
		}
	}
	for id, n := range names {
		if count[n] > 1 {
			names[id] = fmt.Sprintf("%s (#%d)", n, id)
		}
	}
	var order, keys []string
	for _, e := range cycle {
		from, to := names[e.from.id], names[e.to.id]
		order = append(order, from)
		r.Locks = append(r.Locks, report.LockRef{ID: e.from.id, Name: from, Type: e.from.typ, Class: e.from.class})
		r.Edges = append(r.Edges, report.Edge{
			From: from, To: to, Goroutine: e.g,
			FromStack: stacks.StackFrames(e.fromStk), ToStack: stacks.StackFrames(e.toStk), FromSiteOnly: e.fromSite,
		})
		keys = append(keys, fmt.Sprintf("%s>%s", stacks.KeySite(e.fromStk, e.fromPC, 0), stacks.KeySite(e.toStk, 0, 0)))
	}
	order = append(order, names[cycle[0].from.id])
	last := cycle[len(cycle)-1]
	r.Summary = fmt.Sprintf("potential deadlock: lock-order inversion %s (goroutine %d took %s then %s; it was taken the other way before)",
		strings.Join(order, " -> "), last.g, names[last.from.id], names[last.to.id])
	r.Key = string(report.KindLockOrder) + "|" + strings.Join(SortedCopy(keys), "|")
	return r
}

func SortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

// CheckRecursiveRead notes an RLock of c by a goroutine that read-holds it.
// Whether it is a hazard depends on who releases the first hold: if this
// goroutine does (after the second RLock), a writer queued in between would
// have deadlocked it; if another goroutine does (a read transaction handed
// over), nothing was wrong. So it is pending on the first hold, and reported
// when this goroutine releases that hold itself.
func CheckRecursiveRead(c *record.LockCore, g *record.Gstate, id int64, fp unsafe.Pointer) {
	if prev := g.FindHeld(c, report.Read); prev != nil && !prev.IsUncertain() {
		if prev.Pend == nil || prev.Pend.Rr == nil {
			recursiveRead(c, g, id, fp, prev)
		}
	}
}

//go:noinline
func recursiveRead(c *record.LockCore, g *record.Gstate, id int64, fp unsafe.Pointer, prev *record.HeldEntry) {
	pc1, pc2 := rt.CallerPCs(fp)
	meta := c.MetaFor(g, record.RwMutexType, pc1, pc2)
	if prev.GetMeta() == nil {
		rt.StPtr(&prev.Meta, unsafe.Pointer(meta))
	}
	if prev.Pend == nil {
		prev.Pend = new(record.Pending)
	}
	prev.Pend.Rr = &record.PendingRR{Goid: id, Stack: stacks.CaptureStack(fp), Pc1: pc1, Pc2: pc2}
}

// recursiveReadReport is made when a goroutine releases a read hold under
// which it read-locked the same lock again.
func recursiveReadReport(prev *record.HeldEntry, rr *record.PendingRR) *report.Report {
	meta := prev.GetMeta()
	name := meta.Name()
	return &report.Report{
		Kind: report.KindRecursiveRead, Time: rt.WallTime(rt.Nanotime()),
		Summary: fmt.Sprintf("potential deadlock: goroutine %d read-locked %s again while it read-held it; a writer queued in between would have deadlocked it",
			rr.Goid, name),
		Locks: []report.LockRef{meta.Ref()},
		Goroutines: []report.GoroutineRef{
			{ID: rr.Goid, Role: "read-locked again", Lock: name, Stack: stacks.StackFrames(rr.Stack)},
			{ID: rr.Goid, Role: "first read-locked", Lock: name, Stack: stacks.StackFrames(prev.StackOrSite()), SiteOnly: prev.SiteOnly()},
		},
		Key: string(report.KindRecursiveRead) + "|" + stacks.KeySite(prev.StackOrSite(), 0, 0) + "|" + stacks.KeySite(rr.Stack, rr.Pc1, rr.Pc2),
	}
}

// WriteOutermost notes a write acquisition with no other lock held.
func WriteOutermost(c *record.LockCore) {
	if st := atomic.LoadInt32(&c.State); st&record.StateReadSeen != 0 && st&record.StateWriteUnguarded == 0 {
		record.AtomicOr32(&c.State, record.StateWriteUnguarded)
		if m := c.GetMeta(); m != nil {
			m.Wunguarded.Store(true)
			recheckSuspended(m.Id)
		}
	}
}

// GuardKnownChain gives a nested write the write guard's first sight when
// its chain was known before the lock's first read (checkOrder skipped it).
func GuardKnownChain(c *record.LockCore, g *record.Gstate) {
	m := c.GetMeta()
	if m == nil || m.Wseen.Load() || atomic.LoadInt32(&c.State)&record.StateReadSeen == 0 {
		return
	}
	var held []uint64
	for i := int32(0); i < g.N; i++ {
		if h := g.Entry(i); h.Live() && !h.Is(c) {
			held = append(held, h.LockID)
		}
	}
	guardWrite(c, m, held)
}

// guardWrite intersects the write guard with the locks held (ids) at a
// nested write acquisition.
func guardWrite(c *record.LockCore, m *record.LockMeta, held []uint64) {
	if atomic.LoadInt32(&c.State)&record.StateReadSeen == 0 {
		return
	}
	m.Rmu.Lock()
	changed := true
	if !m.Wseen.Load() {
		m.Wseen.Store(true)
		m.WriteGuard = append([]uint64(nil), held...)
	} else {
		n := len(m.WriteGuard)
		m.WriteGuard = intersect(m.WriteGuard, held)
		changed = len(m.WriteGuard) != n
	}
	m.Rmu.Unlock()
	if changed {
		recheckSuspended(m.Id)
	}
}
