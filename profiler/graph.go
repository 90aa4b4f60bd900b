package profiler

import (
	"fmt"
	"html/template"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lockscope/lockscope/report"
)

// The wait-for graph, drawn as SVG by the page itself (no graphviz):
// goroutines and locks are nodes; a goroutine waiting for a lock points to
// it, a lock points to the goroutines holding it. A cycle is a deadlock, and
// its edges are drawn red.

const (
	maxGraphLocks      = 30
	maxGraphGoroutines = 60
)

type graphNode struct {
	ID    string // "g12" or "l7"
	Label string
	Lock  bool
	Title string // tooltip
	X, Y  float64
	W, H  float64
	Hot   bool // on a cycle
}

type graphEdge struct {
	From, To string
	Label    string
	Hot      bool
	// Drawn coordinates, from border to border.
	X1, Y1, X2, Y2 float64
	LX, LY         float64 // label position
}

// waitGraph is the drawing of a snapshot's waits.
type waitGraph struct {
	Nodes         []*graphNode
	Edges         []*graphEdge
	Width, Height float64
	Cycle         bool
	Omitted       int // goroutines or locks left out by the bounds
}

// newWaitGraph builds the graph of st's waiters, the locks they wait for
// and those locks' holders, and lays it out on a circle, in the order of a
// walk along the edges so that chains and cycles read around it.
func newWaitGraph(st report.State) *waitGraph {
	if len(st.Waiting) == 0 {
		return nil
	}
	g := &waitGraph{}
	nodes := map[string]*graphNode{}
	out := map[string][]*graphEdge{}
	goroutine := func(id int64, title string) *graphNode {
		key := "g" + strconv.FormatInt(id, 10)
		if n := nodes[key]; n != nil {
			if !strings.Contains(n.Title, title) {
				n.Title += "; " + title
			}
			return n
		}
		n := &graphNode{ID: key, Label: "goroutine " + strconv.FormatInt(id, 10), Title: title}
		nodes[key] = n
		return n
	}
	locks, gs := 0, 0
	holders := map[uint64][]report.Holding{}
	for _, h := range st.Held {
		holders[h.Lock.ID] = append(holders[h.Lock.ID], h)
	}
	addEdge := func(from, to *graphNode, label string) {
		e := &graphEdge{From: from.ID, To: to.ID, Label: label}
		g.Edges = append(g.Edges, e)
		out[from.ID] = append(out[from.ID], e)
	}
	for _, w := range st.Waiting {
		lkey := "l" + strconv.FormatUint(w.Lock.ID, 10) + "/" + w.Lock.Name
		ln := nodes[lkey]
		if ln == nil {
			if locks == maxGraphLocks {
				g.Omitted++
				continue
			}
			locks++
			ln = &graphNode{ID: lkey, Label: w.Lock.Name, Lock: true, Title: w.Lock.Type + " " + w.Lock.Name}
			nodes[lkey] = ln
			for _, h := range holders[w.Lock.ID] {
				if gs == maxGraphGoroutines {
					g.Omitted++
					break
				}
				if nodes["g"+strconv.FormatInt(h.Goroutine, 10)] == nil {
					gs++
				}
				hn := goroutine(h.Goroutine, "holds "+h.Lock.Name+" at "+h.Site.Site())
				addEdge(ln, hn, "held "+h.Mode.String()+" "+ShortDuration(h.For))
			}
		}
		if nodes["g"+strconv.FormatInt(w.Goroutine, 10)] == nil {
			if gs == maxGraphGoroutines {
				g.Omitted++
				continue
			}
			gs++
		}
		wn := goroutine(w.Goroutine, "waits at "+w.Site.Site())
		addEdge(wn, ln, "waits "+ShortDuration(w.For))
	}

	// Edges on a cycle: u -> v where v reaches u.
	reaches := func(from, to string) bool {
		seen := map[string]bool{from: true}
		stack := []string{from}
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if n == to {
				return true
			}
			for _, e := range out[n] {
				if !seen[e.To] {
					seen[e.To] = true
					stack = append(stack, e.To)
				}
			}
		}
		return false
	}
	for _, e := range g.Edges {
		if reaches(e.To, e.From) {
			e.Hot = true
			nodes[e.From].Hot, nodes[e.To].Hot = true, true
			g.Cycle = true
		}
	}

	// Order: a walk along the edges, cycle nodes first, then the rest in a
	// stable order.
	keys := make([]string, 0, len(nodes))
	for k := range nodes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := nodes[keys[i]], nodes[keys[j]]
		if a.Hot != b.Hot {
			return a.Hot
		}
		return keys[i] < keys[j]
	})
	placed := map[string]bool{}
	var walk func(k string)
	walk = func(k string) {
		if placed[k] {
			return
		}
		placed[k] = true
		g.Nodes = append(g.Nodes, nodes[k])
		for _, e := range out[k] {
			walk(e.To)
		}
	}
	for _, k := range keys {
		walk(k)
	}
	g.layout()
	return g
}

func (g *waitGraph) layout() {
	const charW, nodeH, margin = 7.2, 26.0, 20.0
	maxW := 0.0
	for _, n := range g.Nodes {
		n.W, n.H = float64(len(n.Label))*charW+20, nodeH
		maxW = max(maxW, n.W)
	}
	k := len(g.Nodes)
	r := max(140, float64(k)*(nodeH+14)/(2*math.Pi), float64(k)*maxW/(2*math.Pi)*0.6)
	cx, cy := r+maxW/2+margin, r+nodeH+margin
	for i, n := range g.Nodes {
		a := -math.Pi/2 + 2*math.Pi*float64(i)/float64(k)
		n.X, n.Y = cx+r*math.Cos(a), cy+r*math.Sin(a)
	}
	g.Width, g.Height = 2*cx, 2*cy
	byID := map[string]*graphNode{}
	for _, n := range g.Nodes {
		byID[n.ID] = n
	}
	for _, e := range g.Edges {
		a, b := byID[e.From], byID[e.To]
		dx, dy := b.X-a.X, b.Y-a.Y
		ta, tb := clip(a, dx, dy), clip(b, -dx, -dy)
		e.X1, e.Y1 = a.X+dx*ta, a.Y+dy*ta
		e.X2, e.Y2 = b.X-dx*tb, b.Y-dy*tb
		// The label beside the middle of the edge, on its left as it runs.
		if l := math.Hypot(dx, dy); l > 0 {
			e.LX, e.LY = (e.X1+e.X2)/2+dy/l*10, (e.Y1+e.Y2)/2-dx/l*10+3
		}
	}
}

// clip is the fraction of (dx, dy) from n's centre to its border.
func clip(n *graphNode, dx, dy float64) float64 {
	t := math.Inf(1)
	if dx != 0 {
		t = min(t, n.W/2/math.Abs(dx))
	}
	if dy != 0 {
		t = min(t, n.H/2/math.Abs(dy))
	}
	if math.IsInf(t, 1) {
		return 0
	}
	return min(t, 0.45)
}

// SVG renders the graph.
func (g *waitGraph) SVG() template.HTML {
	if g == nil {
		return ""
	}
	var b strings.Builder
	esc := template.HTMLEscapeString
	fmt.Fprintf(&b, `<svg id="waitfor" xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="monospace" font-size="12">`,
		g.Width, g.Height, g.Width, g.Height)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker>` +
		`<marker id="arrowhot" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#c00"/></marker></defs>`)
	for _, e := range g.Edges {
		color, marker := "#555", "arrow"
		if e.Hot {
			color, marker = "#c00", "arrowhot"
		}
		fmt.Fprintf(&b, `<g class="edge%s" data-from="%s" data-to="%s"><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%s" marker-end="url(#%s)"/><text x="%.1f" y="%.1f" text-anchor="middle" fill="%s" font-size="10">%s</text></g>`,
			hotClass(e.Hot), esc(e.From), esc(e.To), e.X1, e.Y1, e.X2, e.Y2, color, map[bool]string{false: "1.2", true: "2"}[e.Hot], marker, e.LX, e.LY, color, esc(e.Label))
	}
	for _, n := range g.Nodes {
		fill, stroke, rx := "#eef3fb", "#4a6fa5", "13"
		if n.Lock {
			fill, stroke, rx = "#fff6e0", "#b8860b", "3"
		}
		if n.Hot {
			stroke = "#c00"
		}
		kind := "goroutine"
		if n.Lock {
			kind = "lock"
		}
		fmt.Fprintf(&b, `<g class="node %s%s" data-id="%s"><title>%s</title><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="%s" fill="%s" stroke="%s" stroke-width="1.5"/><text x="%.1f" y="%.1f" text-anchor="middle" dominant-baseline="central">%s</text></g>`,
			kind, hotClass(n.Hot), esc(n.ID), esc(n.Title), n.X-n.W/2, n.Y-n.H/2, n.W, n.H, rx, fill, stroke, n.X, n.Y, esc(n.Label))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func hotClass(hot bool) string {
	if hot {
		return " hot"
	}
	return ""
}

// ShortDuration rounds d for display: report.ShortDuration.
func ShortDuration(d time.Duration) string { return report.ShortDuration(d) }
