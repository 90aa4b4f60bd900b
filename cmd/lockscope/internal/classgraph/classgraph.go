// Package classgraph merges the lock-class graphs that processes wrote to
// their report files (report.ClassEdge lines) and finds the lock-order
// inversions no single process saw whole: an order taken in one test
// binary (or one replica of a service) and its inverse in another.
//
// The rules are the engine's class-graph rules (internal/lockorder): only
// cycles of two or more classes; none whose edges all share a gate class;
// none through an edge into a read acquisition; none seen whole by one
// process (that process checked it itself); no longer copy of a cycle
// already reported.
package classgraph

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lockscope/lockscope/report"
)

// merged is one class edge of the union, with every process that saw it.
type merged struct {
	report.ClassEdge
	programs []string
	gates    []string
}

// Cycles returns a lock-order report for each cycle of the merged graph of
// edges that no one process saw whole, and the distinct module versions the
// edges came from (more than one: the graphs may not describe one program).
func Cycles(edges []report.ClassEdge) (reports []report.Report, versions []string) {
	byPair := map[[2]string]*merged{}
	out := map[string][]*merged{}
	var order [][2]string
	for _, e := range edges {
		if e.From == e.To {
			continue
		}
		if e.Version != "" && !slices.Contains(versions, e.Version) {
			versions = append(versions, e.Version)
		}
		k := [2]string{e.From, e.To}
		m := byPair[k]
		if m == nil {
			m = &merged{ClassEdge: e, gates: slices.Clone(e.Gates)}
			byPair[k] = m
			out[e.From] = append(out[e.From], m)
			order = append(order, k)
		} else {
			m.gates = intersect(m.gates, e.Gates)
			if e.ToMode == report.Read {
				m.ToMode = report.Read
			}
		}
		if !slices.Contains(m.programs, e.Program) {
			m.programs = append(m.programs, e.Program)
		}
	}
	sort.Strings(versions)
	var reported [][]string
	for _, k := range order {
		ed := byPair[k]
		path := shortestPath(out, ed.To, ed.From)
		if path == nil {
			continue
		}
		cycle := append(path, ed)
		if !reportable(cycle) || longerCopy(cycle, reported) {
			continue
		}
		set := classesOf(cycle)
		reported = append(reported, set)
		reports = append(reports, cycleReport(cycle))
	}
	return reports, versions
}

func reportable(cycle []*merged) bool {
	common := cycle[0].gates
	for _, e := range cycle {
		if e.ToMode == report.Read {
			return false
		}
		common = intersect(common, e.gates)
	}
	if len(common) > 0 {
		return false
	}
	// One owner: only cycles of fields of one struct type (see
	// internal/lockorder: classes of several types pair objects they cannot
	// tell apart), or of package variables, each of which is one lock in
	// every process: their cycle across processes is an instance cycle.
	owner := report.ClassOwner(cycle[0].From)
	for _, e := range cycle {
		if t := report.ClassOwner(e.From); owner == "" && !report.IsPackageVarClass(e.From) || t != owner {
			return false
		}
	}
	// Seen whole by one process: it checked the cycle itself.
	for _, p := range cycle[0].programs {
		whole := true
		for _, e := range cycle[1:] {
			if !slices.Contains(e.programs, p) {
				whole = false
				break
			}
		}
		if whole {
			return false
		}
	}
	return true
}

func shortestPath(out map[string][]*merged, from, to string) []*merged {
	via := map[string]*merged{from: nil}
	queue := []string{from}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n == to {
			var path []*merged
			for x := to; x != from; x = via[x].From {
				path = append(path, via[x])
			}
			slices.Reverse(path)
			return path
		}
		for _, e := range out[n] {
			if _, seen := via[e.To]; !seen {
				via[e.To] = e
				queue = append(queue, e.To)
			}
		}
	}
	return nil
}

func classesOf(cycle []*merged) []string {
	var set []string
	for _, e := range cycle {
		set = append(set, e.From)
	}
	sort.Strings(set)
	return set
}

func longerCopy(cycle []*merged, reported [][]string) bool {
	set := classesOf(cycle)
	for _, r := range reported {
		sub := len(r) <= len(set)
		for _, c := range r {
			if !slices.Contains(set, c) {
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

func cycleReport(cycle []*merged) report.Report {
	r := report.Report{Kind: report.KindLockOrder, Time: time.Now(), Count: 1}
	var names, keys, sides []string
	for _, e := range cycle {
		names = append(names, e.From)
		r.Edges = append(r.Edges, report.Edge{
			From: fmt.Sprintf("%s (class %s)", e.FromLock, e.From), To: fmt.Sprintf("%s (class %s)", e.ToLock, e.To),
			Goroutine: e.Goroutine, FromStack: e.FromStack, ToStack: e.ToStack, FromSiteOnly: e.FromSiteOnly,
		})
		sides = append(sides, fmt.Sprintf("%s -> %s in %s", e.From, e.To, strings.Join(e.programs, ", ")))
		keys = append(keys, e.From+">"+e.To)
	}
	names = append(names, cycle[0].From)
	r.Summary = fmt.Sprintf("potential deadlock: lock-order inversion between lock classes %s, the orders seen by different processes (%s)",
		strings.Join(names, " -> "), strings.Join(sides, "; "))
	r.Key = string(report.KindLockOrder) + "|classes|" + strings.Join(classesOf(cycle), "|") + "|" + strings.Join(keys, "|")
	return r
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
