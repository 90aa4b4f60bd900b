package debugmutex

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
	atomic.StoreUint64(&chainSet[(i+uint64(cheaprand()%8))&(chainSize-1)], h)
}

type node struct {
	id   uint64
	name string
	typ  string
	ord  int // position in a topological order of the acyclic edges
	meta weak.Pointer[lockMeta]
	out  map[uint64]*edge
	in   map[uint64]*edge
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
	modeTo    Mode
	fromWrite bool
	// back: the edge closes a cycle (reported, or gated). It is kept, so it
	// is recorded once, but it is not part of the acyclic graph the
	// searches walk: a later cycle through it would be a longer copy.
	back bool
}

var (
	nextOrd      int // guarded by graphMu
	graphMu      rankedMutex[rGraph]
	graph        = map[uint64]*node{}
	graphPeak    int // the most nodes graph has held since it was last rebuilt
	edgeCount    int
	edgesDropped atomic.Int64
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
		edgesDropped.Add(1)
		return
	}
	var reads []uint64
	for _, e := range cycle {
		if e.modeTo == Read {
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
	graphMu.Lock()
	reports := resume(func(s *suspendedCycle) bool { return slices.Contains(s.reads, id) })
	graphMu.Unlock()
	for _, r := range reports {
		emitNoAction(r) // found on a lock's write path, which must not panic holding it
	}
}

// resumeThrough reports the suspended cycles through edge ed that a write
// now seen at one of its ends has made possible. graphMu held.
func resumeThrough(ed *edge) []*Report {
	return resume(func(s *suspendedCycle) bool { return slices.Contains(s.cycle, ed) })
}

// resume reports the suspended cycles that through says a change concerns
// and readImpossible no longer rules out, and forgets them. graphMu held.
func resume(through func(*suspendedCycle) bool) []*Report {
	if len(suspended) == 0 {
		return nil
	}
	var reports []*Report
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

func graphNode(m *lockMeta) *node {
	n := graph[m.id]
	if n == nil {
		nextOrd++
		n = &node{id: m.id, name: m.Name(), typ: m.typ, ord: nextOrd, meta: weak.Make(m), out: map[uint64]*edge{}, in: map[uint64]*edge{}}
		graph[m.id] = n
		graphPeak = max(graphPeak, len(graph))
		if !m.inGraph.Swap(true) {
			runtime.AddCleanup(m, removeNode, m.id)
		}
	}
	return n
}

// removeNode drops a dead lock's node and its edges.
func removeNode(id uint64) {
	graphMu.Lock()
	defer graphMu.Unlock()
	n := graph[id]
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
	delete(graph, id)
	// Go maps keep their buckets after deletes: once most nodes are gone,
	// copy the survivors into a fresh map so the memory goes back.
	if graphPeak > 1024 && len(graph) < graphPeak/4 {
		fresh := make(map[uint64]*node, len(graph))
		for k, v := range graph {
			fresh[k] = v
		}
		graph, graphPeak = fresh, len(fresh)
	}
}

// checkOrder records, pending on each lock g holds, the dependency on c
// that acquiring (or waiting for) c in mode now creates, unless this chain
// of held locks is known. fp is the lock method's frame.
func checkOrder(g *gstate, id int64, c *lockCore, typ string, mode Mode, fp unsafe.Pointer, chain uint64) {
	if chainKnown(chain) {
		return
	}
	top := g.top()
	if top == nil || (top.pend != nil && top.pend.lastChain == chain) {
		return
	}
	addPending(g, id, c, typ, mode, fp, chain)
}

//go:noinline
func addPending(g *gstate, id int64, c *lockCore, typ string, mode Mode, fp unsafe.Pointer, chain uint64) {
	pc1, pc2 := callerPCs(fp)
	to := c.metaFor(g, typ, pc1, pc2)
	toStk := captureStack(fp)
	var all []uint64 // every other lock held
	for i := int32(0); i < g.n; i++ {
		if h := g.entry(i); h.live() && !h.is(c) {
			all = append(all, h.lockID)
		}
	}
	if typ == rwMutexType && mode == Write {
		guardWrite(c, to, all)
	}
	var before []uint64
	var top *heldEntry
	for i := int32(0); i < g.n; i++ {
		h := g.entry(i)
		if !h.live() {
			continue
		}
		top = h
		if h.is(c) || h.isUncertain() {
			continue // a recursive lock: the wait-for graph's business; or a hold that may be another's
		}
		if entryMeta(g, h) == nil {
			continue
		}
		if h.pend == nil {
			h.pend = new(pending)
		}
		hid := h.lockID
		if !h.pend.has(to.id, mode) {
			if len(h.pend.edges) >= maxPendingEdges {
				edgesDropped.Add(1)
			} else {
				others := make([]uint64, 0, len(all))
				for _, x := range all {
					if x != hid {
						others = append(others, x)
					}
				}
				h.pend.edges = append(h.pend.edges, pendingEdge{
					to: to, toMode: mode, toStk: toStk, gates: append([]uint64(nil), before...), held: others, g: id, chain: chain,
				})
			}
		}
		before = append(before, hid)
	}
	if top != nil && top.pend != nil {
		top.pend.lastChain = chain
	}
}

// commitPending commits what was pending on the owner's hold e, which the
// owner is releasing, and delivers the reports that makes. It reports
// the one whose configured action is a panic, if any.
func commitPending(g *gstate, e *heldEntry) *Report {
	return emitAll(commitEntry(g, e))
}

// commitAllPending commits what is pending on every hold of g: g is proven
// to hold them for good. waitMu held, g blocked.
func commitAllPending(g *gstate) []*Report {
	var out []*Report
	for i := int32(0); i < g.n; i++ {
		if e := g.entry(i); e != nil && e.live() && e.pend != nil {
			out = append(out, commitEntry(g, e)...)
		}
	}
	return out
}

// commitEntry adds the dependencies pending on hold e to the graph and
// returns the reports they make.
func commitEntry(g *gstate, e *heldEntry) []*Report {
	p := e.pend
	e.pend = nil
	if p == nil || e.isUncertain() {
		return nil // an uncertain hold proves nothing
	}
	var reports []*Report
	if p.rr != nil {
		reports = append(reports, recursiveReadReport(e, p.rr))
	}
	if len(p.edges) == 0 {
		return reports
	}
	fm := e.getMeta()
	if fm == nil {
		return reports
	}
	fromStk, fromSite := e.stackOrSite(), e.siteOnly()
	fromPC := sitePC(e.pc1, e.pc2)
	fromWrite := e.mode() == Write

	graphMu.Lock()
	from, rs := graphNodeWith(fm)
	reports = append(reports, rs...)
	for i := range p.edges {
		pe := &p.edges[i]
		src := edgeSource{from: from, pe: *pe, fromStk: fromStk, fromSite: fromSite, fromPC: fromPC, fromWrite: fromWrite}
		if graph[pe.to.id] == nil && deferEdge(pe.to, &src) {
			continue // into a lock that holds nothing yet: no cycle can pass through it
		}
		to, rs := graphNodeWith(pe.to)
		reports = append(reports, rs...)
		reports = append(reports, addEdge(to, &src)...)
	}
	graphMu.Unlock()
	for i := range p.edges {
		chainAdd(p.edges[i].chain)
	}
	return reports
}

// edgeSource is what a lock-order edge is made of: the from node, the
// dependency that was pending on the from hold, and that hold's stack,
// site and mode.
type edgeSource struct {
	from      *node  // nil while deferred: fromID names it
	fromID    uint64 // the from node's id, while deferred
	pe        pendingEdge
	fromStk   uint32
	fromSite  bool
	fromPC    uintptr
	fromWrite bool
}

// addEdge adds (or merges) the edge src describes into node to, and returns
// the reports of the cycles it closes. graphMu held.
func addEdge(to *node, src *edgeSource) []*Report {
	var reports []*Report
	from, pe := src.from, &src.pe
	ed := from.out[to.id]
	if ed != nil {
		had := len(ed.gates) > 0
		ed.gates = intersect(ed.gates, pe.gates)
		ed.held = intersect(ed.held, pe.held)
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
		edgesDropped.Add(1)
		return nil
	}
	ed = &edge{from: from, to: to, gates: pe.gates, held: pe.held, g: pe.g,
		fromStk: src.fromStk, fromSite: src.fromSite, fromPC: src.fromPC, toStk: pe.toStk, modeTo: pe.toMode, fromWrite: src.fromWrite}
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
func cycleFound(path []*edge, ed *edge) *Report {
	cycle := append(path, ed)
	if gated(path, ed) || longerCopy(cycle) {
		return nil
	}
	if readImpossible(cycle) {
		suspend(cycle)
		return nil
	}
	r := inversionReport(cycle)
	rememberCycle(cycle)
	return r
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
func deferEdge(m *lockMeta, src *edgeSource) bool {
	list := deferredList(m, true)
	for i := range *list {
		d := &(*list)[i]
		if d.fromID != src.from.id {
			continue
		}
		d.pe.gates = intersect(d.pe.gates, src.pe.gates)
		d.pe.held = intersect(d.pe.held, src.pe.held)
		d.fromWrite = d.fromWrite || src.fromWrite
		return true
	}
	if len(*list) >= maxDeferredIn {
		return false
	}
	d := *src
	d.from, d.fromID = nil, src.from.id // by id: a dead lock's node is not kept
	d.pe.to = nil                       // m itself: no pointer to it from its own list
	*list = append(*list, d)
	return true
}

// deferredList returns the edges deferred on m (its deferredIn, which the
// record layer keeps opaque), making the list if asked to. graphMu held.
func deferredList(m *lockMeta, create bool) *[]edgeSource {
	if p, ok := m.deferredIn.(*[]edgeSource); ok {
		return p
	}
	if !create {
		return nil
	}
	p := new([]edgeSource)
	m.deferredIn = p
	return p
}

// graphNodeWith returns m's node, creating it, and then adding the edges
// deferred on m (whose from nodes still exist), with the reports they make.
// graphMu held.
func graphNodeWith(m *lockMeta) (*node, []*Report) {
	n := graphNode(m)
	list := deferredList(m, false)
	if list == nil || len(*list) == 0 {
		return n, nil
	}
	deferred := *list
	*list = nil
	var reports []*Report
	for i := range deferred {
		d := &deferred[i]
		if d.from = graph[d.fromID]; d.from == nil {
			continue // its from lock is gone: so is the dependency
		}
		d.pe.to = m
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
		if e.modeTo != Read {
			continue
		}
		if cycle[(i+1)%len(cycle)].fromWrite {
			continue // the cycle write-holds the lock read: no writer need queue
		}
		m := e.to.meta.Value()
		if m == nil || m.wunguarded.Load() {
			continue
		}
		m.rmu.Lock()
		seen, guard := m.wseen.Load(), m.writeGuard
		m.rmu.Unlock()
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
func inversionReport(cycle []*edge) *Report {
	r := &Report{Kind: KindLockOrder, Time: wallTime(nanotime())}
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
		r.Locks = append(r.Locks, LockRef{ID: e.from.id, Name: from, Type: e.from.typ})
		r.Edges = append(r.Edges, Edge{
			From: from, To: to, Goroutine: e.g,
			FromStack: stackFrames(e.fromStk), ToStack: stackFrames(e.toStk), FromSiteOnly: e.fromSite,
		})
		keys = append(keys, fmt.Sprintf("%s>%s", keySite(e.fromStk, e.fromPC, 0), keySite(e.toStk, 0, 0)))
	}
	order = append(order, names[cycle[0].from.id])
	last := cycle[len(cycle)-1]
	r.Summary = fmt.Sprintf("potential deadlock: lock-order inversion %s (goroutine %d took %s then %s; it was taken the other way before)",
		strings.Join(order, " -> "), last.g, names[last.from.id], names[last.to.id])
	r.Key = string(KindLockOrder) + "|" + strings.Join(sortedCopy(keys), "|")
	return r
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

// checkRecursiveRead notes an RLock of c by a goroutine that read-holds it.
// Whether it is a hazard depends on who releases the first hold: if this
// goroutine does (after the second RLock), a writer queued in between would
// have deadlocked it; if another goroutine does (a read transaction handed
// over), nothing was wrong. So it is pending on the first hold, and reported
// when this goroutine releases that hold itself.
func checkRecursiveRead(c *lockCore, g *gstate, id int64, fp unsafe.Pointer) {
	if prev := g.findHeld(c, Read); prev != nil && !prev.isUncertain() {
		if prev.pend == nil || prev.pend.rr == nil {
			recursiveRead(c, g, id, fp, prev)
		}
	}
}

//go:noinline
func recursiveRead(c *lockCore, g *gstate, id int64, fp unsafe.Pointer, prev *heldEntry) {
	pc1, pc2 := callerPCs(fp)
	meta := c.metaFor(g, rwMutexType, pc1, pc2)
	if prev.getMeta() == nil {
		stPtr(&prev.meta, unsafe.Pointer(meta))
	}
	if prev.pend == nil {
		prev.pend = new(pending)
	}
	prev.pend.rr = &pendingRR{goid: id, stack: captureStack(fp), pc1: pc1, pc2: pc2}
}

// recursiveReadReport is made when a goroutine releases a read hold under
// which it read-locked the same lock again.
func recursiveReadReport(prev *heldEntry, rr *pendingRR) *Report {
	meta := prev.getMeta()
	name := meta.Name()
	return &Report{
		Kind: KindRecursiveRead, Time: wallTime(nanotime()),
		Summary: fmt.Sprintf("potential deadlock: goroutine %d read-locked %s again while it read-held it; a writer queued in between would have deadlocked it",
			rr.goid, name),
		Locks: []LockRef{meta.ref()},
		Goroutines: []GoroutineRef{
			{ID: rr.goid, Role: "read-locked again", Lock: name, Stack: stackFrames(rr.stack)},
			{ID: rr.goid, Role: "first read-locked", Lock: name, Stack: stackFrames(prev.stackOrSite()), SiteOnly: prev.siteOnly()},
		},
		Key: string(KindRecursiveRead) + "|" + keySite(prev.stackOrSite(), 0, 0) + "|" + keySite(rr.stack, rr.pc1, rr.pc2),
	}
}

// writeOutermost notes a write acquisition with no other lock held.
func writeOutermost(c *lockCore) {
	if st := atomic.LoadInt32(&c.state); st&stateReadSeen != 0 && st&stateWriteUnguarded == 0 {
		atomicOr32(&c.state, stateWriteUnguarded)
		if m := c.getMeta(); m != nil {
			m.wunguarded.Store(true)
			recheckSuspended(m.id)
		}
	}
}

// guardKnownChain gives a nested write the write guard's first sight when
// its chain was known before the lock's first read (checkOrder skipped it).
func guardKnownChain(c *lockCore, g *gstate) {
	m := c.getMeta()
	if m == nil || m.wseen.Load() || atomic.LoadInt32(&c.state)&stateReadSeen == 0 {
		return
	}
	var held []uint64
	for i := int32(0); i < g.n; i++ {
		if h := g.entry(i); h.live() && !h.is(c) {
			held = append(held, h.lockID)
		}
	}
	guardWrite(c, m, held)
}

// guardWrite intersects the write guard with the locks held (ids) at a
// nested write acquisition.
func guardWrite(c *lockCore, m *lockMeta, held []uint64) {
	if atomic.LoadInt32(&c.state)&stateReadSeen == 0 {
		return
	}
	m.rmu.Lock()
	changed := true
	if !m.wseen.Load() {
		m.wseen.Store(true)
		m.writeGuard = append([]uint64(nil), held...)
	} else {
		n := len(m.writeGuard)
		m.writeGuard = intersect(m.writeGuard, held)
		changed = len(m.writeGuard) != n
	}
	m.rmu.Unlock()
	if changed {
		recheckSuspended(m.id)
	}
}
