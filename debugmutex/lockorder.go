package debugmutex

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The lock-order graph.
//
// Acquiring B while holding A records the edge A->B, between lock instances
// (two instances of one struct type locked in a consistent order, such as by
// account id, are correct and stay quiet). A new edge that closes a cycle is
// a potential deadlock, reported the first time it is seen, even though no
// goroutine blocked.
//
// Fast path: like Linux's lockdep, each goroutine keeps a hash of its chain
// of held locks. A chain whose hash is in chainSet has had all its edges
// recorded already: one lock-free lookup, no graph work. Only a new chain
// takes graphMu and walks the graph.
//
// Quiet cases: an acquisition by TryLock cannot block, so it gets no edge
// into it. Each edge keeps its gate set: the locks that were held before its
// "from" lock every time the edge was seen. A cycle whose edges all share a
// gate cannot deadlock (the gate serialises them) and is not reported.
//
// Memory: nodes are lock instances, created when a lock first takes part in
// an edge, removed (with their edges) by a cleanup when the lock is garbage;
// a lock at a recycled address has a new id, so it never inherits edges. At
// most maxEdges edges are kept; beyond that new edges are counted, not
// recorded. chainSet is a fixed 64K-entry table, cleared when full.

const (
	chainBits = 16
	chainSize = 1 << chainBits
	maxEdges  = 1 << 18
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
	// Neighbourhood full: start the cache afresh. It is only a cache; the
	// graph keeps every edge.
	for i := range chainSet {
		atomic.StoreUint64(&chainSet[i], 0)
	}
}

type node struct {
	id   uint64
	name string
	typ  string
	out  map[uint64]*edge
	in   map[uint64]*edge
}

type edge struct {
	from, to *node
	gates    []uint64 // ids of locks held before from every time this edge was seen
	g        int64    // goroutine that first took it
	fromStk  uint32   // where from was acquired
	fromPC   uintptr
	toStk    uint32 // where to was acquired while from was held
	modeTo   Mode
}

var (
	graphMu      sync.Mutex
	graph        = map[uint64]*node{}
	graphPeak    int // the most nodes graph has held since it was last rebuilt
	edgeCount    int
	edgesDropped atomic.Int64
)

func graphNode(m *lockMeta) *node {
	n := graph[m.id]
	if n == nil {
		n = &node{id: m.id, name: m.Name(), typ: m.typ, out: map[uint64]*edge{}, in: map[uint64]*edge{}}
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
	for to, e := range n.out {
		delete(e.to.in, id)
		_ = to
		edgeCount--
	}
	for from, e := range n.in {
		delete(e.from.out, id)
		_ = from
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

// lockOrderSlow records the edges from every lock g holds to c, reports any
// cycle they close, and remembers the chain.
func lockOrderSlow(g *gstate, id int64, c *lockCore, meta *lockMeta, mode Mode, fp unsafe.Pointer, chain uint64) {
	toStk := captureStack(fp)
	var reports []*Report

	graphMu.Lock()
	to := graphNode(meta)
	var before []uint64 // ids of held locks taken before the current one
	for i := int32(0); i < g.n; i++ {
		h := g.entry(i)
		if !h.live() {
			continue
		}
		hc := h.lock()
		hm := hc.getMeta()
		if hm == nil || hc == c {
			continue
		}
		from := graphNode(hm)
		e := from.out[to.id]
		if e == nil {
			if edgeCount >= maxEdges {
				edgesDropped.Add(1)
				before = append(before, hm.id)
				continue
			}
			fromStk := h.stackOrSite()
			e = &edge{from: from, to: to, gates: append([]uint64(nil), before...), g: id,
				fromStk: fromStk, fromPC: sitePC(h.pc1, h.pc2), toStk: toStk, modeTo: mode}
			from.out[to.id] = e
			to.in[from.id] = e
			edgeCount++
			if path := findPath(to, from); path != nil {
				if !gated(path, e) {
					reports = append(reports, inversionReport(append(path, e)))
				}
			}
		} else {
			e.gates = intersect(e.gates, before)
		}
		before = append(before, hm.id)
	}
	graphMu.Unlock()

	chainAdd(chain)
	for _, r := range reports {
		emit(r, true)
	}
}

// findPath returns the edges of a path from a to b, or nil. graphMu held.
func findPath(a, b *node) []*edge {
	seen := map[uint64]bool{a.id: true}
	var path []*edge
	var dfs func(n *node) bool
	dfs = func(n *node) bool {
		if n == b {
			return true
		}
		for _, e := range n.out {
			if seen[e.to.id] {
				continue
			}
			seen[e.to.id] = true
			path = append(path, e)
			if dfs(e.to) {
				return true
			}
			path = path[:len(path)-1]
		}
		return false
	}
	if dfs(a) {
		return path
	}
	return nil
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
	var order, keys []string
	for _, e := range cycle {
		order = append(order, e.from.name)
		r.Locks = append(r.Locks, LockRef{ID: e.from.id, Name: e.from.name, Type: e.from.typ})
		r.Edges = append(r.Edges, Edge{
			From: e.from.name, To: e.to.name, Goroutine: e.g,
			FromStack: stackFrames(e.fromStk), ToStack: stackFrames(e.toStk),
		})
		keys = append(keys, fmt.Sprintf("%s>%s", siteOf(e.fromPC, 0).Site(), firstSite(e.toStk)))
	}
	order = append(order, cycle[0].from.name)
	last := cycle[len(cycle)-1]
	r.Summary = fmt.Sprintf("potential deadlock: lock-order inversion %s (goroutine %d took %s then %s; it was taken the other way before)",
		strings.Join(order, " -> "), last.g, last.from.name, last.to.name)
	r.Key = string(KindLockOrder) + "|" + strings.Join(sortedCopy(keys), "|")
	return r
}

func firstSite(stk uint32) string {
	if fs := stackFrames(stk); len(fs) > 0 {
		return fs[0].Site()
	}
	return "?"
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}
