package profiler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// Overview is what the index page shows and what /debug/locks/?format=json
// serves: report.Overview.
type Overview = report.Overview

// Current returns the Overview as of now.
func Current() Overview {
	st := inspect.Snapshot()
	ov := Overview{Time: st.Time, Reports: inspect.Reports(), Held: st.Held, Waiting: st.Waiting,
		Locks: withHoldsInProgress(withWaitsInProgress(inspect.LockStats(), st.Waiting), st.Held)}
	// Empty lists, not nulls, for the JSON's readers.
	if ov.Reports == nil {
		ov.Reports = []report.Report{}
	}
	if ov.Held == nil {
		ov.Held = []report.Holding{}
	}
	if ov.Waiting == nil {
		ov.Waiting = []report.Waiting{}
	}
	if ov.Locks == nil {
		ov.Locks = []report.LockStat{}
	}
	return ov
}

// withWaitsInProgress adds the waits in progress to the per-lock totals
// (the statistics count a wait when it ends), and sorts them again.
func withWaitsInProgress(locks []report.LockStat, waiting []report.Waiting) []report.LockStat {
	return withInProgress(locks, waiting, func(w report.Waiting, l *report.LockStat) report.LockInfo {
		if l != nil {
			l.Contentions++
			l.WaitTime += w.For
		}
		return w.Lock
	})
}

// withHoldsInProgress adds the holds in progress to the per-lock totals
// (the statistics count a hold when it ends: a lock held for an hour, and
// never released, would show no acquisition), and sorts them again.
func withHoldsInProgress(locks []report.LockStat, held []report.Holding) []report.LockStat {
	return withInProgress(locks, held, func(h report.Holding, l *report.LockStat) report.LockInfo {
		if l != nil {
			l.Acquisitions++
			l.HoldTime += h.For
		}
		return h.Lock
	})
}

// withInProgress adds each of items to its lock's row of locks (a new row
// for a lock without one): add(item, nil) names the item's lock, and
// add(item, row) counts it in.
func withInProgress[T any](locks []report.LockStat, items []T, add func(T, *report.LockStat) report.LockInfo) []report.LockStat {
	if len(items) == 0 {
		return locks
	}
	at := map[string]int{}
	for i, l := range locks {
		at[l.Lock] = i
	}
	for _, it := range items {
		lock := add(it, nil)
		i, ok := at[lock.Name]
		if !ok {
			i = len(locks)
			at[lock.Name] = i
			locks = append(locks, report.LockStat{Lock: lock.Name, Type: lock.Type})
		}
		add(it, &locks[i])
	}
	inspect.SortLockStats(locks)
	return locks
}

// A pageReport is a report as the page shows it: with, for each of its
// goroutines whose wait or hold is still going on, how long as of now.
type pageReport struct {
	report.Report
	Now []time.Duration // by goroutine; 0: over, or not a wait or hold
}

// slack is how far apart the start of a wait in a report and in the
// snapshot may be and still be the same wait (both are computed from
// clock readings).
const slack = 5 * time.Millisecond

// pageReports pairs each report's waiting and holding goroutines with the
// snapshot's waits and holds: the same goroutine, the same lock, begun at
// the same time.
func pageReports(rs []report.Report, ov Overview) []pageReport {
	sameLock := func(reported, name string) bool {
		return reported == name || strings.HasPrefix(reported, name+" (#")
	}
	out := make([]pageReport, len(rs))
	for i, r := range rs {
		out[i] = pageReport{Report: r, Now: make([]time.Duration, len(r.Goroutines))}
		for j, g := range r.Goroutines {
			began := r.Time.Add(-g.For)
			switch {
			case strings.HasPrefix(g.Role, "waits"):
				for _, w := range ov.Waiting {
					if w.Goroutine == g.ID && sameLock(g.Lock, w.Lock.Name) && (g.For == 0 || absDur(w.Since.Sub(began)) < slack) {
						out[i].Now[j] = w.For
					}
				}
			case g.Role == "acquired" || g.Role == "holds" || strings.HasPrefix(g.Role, "runs the function of"): // a Once's holder
				for _, h := range ov.Held {
					if h.Goroutine == g.ID && sameLock(g.Lock, h.Lock.Name) {
						out[i].Now[j] = h.For
					}
				}
			}
		}
	}
	return out
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func encode(w io.Writer, p *profile.Profile, debug int) error {
	if debug == 1 {
		return writeText(w, p)
	}
	return p.Write(w)
}

// indexRows bounds each table of the HTML page (the JSON has everything).
const indexRows = 200

// maxRefresh bounds ?refresh=N (seconds).
const maxRefresh = 3600

func serveIndex(w http.ResponseWriter, r *http.Request) {
	q, err := queryParams(r, "format", "lock", "refresh")
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	refresh := 0
	if v, ok := q["refresh"]; ok {
		refresh, err = strconv.Atoi(v)
		if err != nil || refresh < 0 || refresh > maxRefresh {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("invalid value %q for parameter \"refresh\": want seconds from 0 (off) to %d", v, maxRefresh))
			return
		}
	}
	ov := Current()
	var buf bytes.Buffer
	switch q["format"] {
	case "json":
		if _, ok := q["lock"]; ok {
			httpError(w, http.StatusBadRequest, "parameter \"lock\" is for the HTML page; the JSON has every lock")
			return
		}
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ov); err != nil {
			httpError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
	case "", "html":
		var err error
		if name, ok := q["lock"]; ok {
			err = lockTmpl.Execute(&buf, newLockData(ov, name, refresh))
		} else {
			err = indexTmpl.Execute(&buf, newIndexData(r, ov, refresh))
		}
		if err != nil {
			httpError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	default:
		httpError(w, http.StatusBadRequest, "invalid value "+strconv.Quote(q["format"])+" for parameter \"format\": want html or json")
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
}

func newIndexData(r *http.Request, ov Overview, refresh int) indexData {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	data := indexData{
		Overview:   ov,
		Enabled:    inspect.Enabled(),
		Base:       scheme + "://" + r.Host + r.URL.Path,
		Dropped:    droppedComments(inspect.DroppedCounts()),
		Limit:      indexRows,
		Refresh:    refresh,
		Graph:      newWaitGraph(report.State{Time: ov.Time, Held: ov.Held, Waiting: ov.Waiting}),
		WaitingNow: map[string]int{},
	}
	for _, sp := range specs {
		data.Profiles = append(data.Profiles, indexProfile{Name: sp.name, Doc: sp.doc, Snapshot: sp.snapshot})
	}
	for _, w := range ov.Waiting {
		data.WaitingNow[w.Lock.Name]++
	}
	// Reports: the worst first (deadlocks, then the rest), newest first.
	rs := append([]report.Report(nil), ov.Reports...)
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if ra, rb := kindRank(a.Kind), kindRank(b.Kind); ra != rb {
			return ra < rb
		}
		return a.Time.After(b.Time)
	})
	data.Reports, data.MoreReports = limit(rs)
	data.PageReports = pageReports(data.Reports, ov)
	data.Held, data.MoreHeld = limit(ov.Held)
	data.Waiting, data.MoreWaiting = limit(ov.Waiting)
	data.Locks, data.MoreLocks = limit(ov.Locks)
	return data
}

// kindRank orders reports on the page: what stops a program first.
func kindRank(k report.Kind) int {
	switch k {
	case report.KindDeadlock:
		return 0
	case report.KindLockOrder:
		return 1
	case report.KindLeakedLock:
		return 2
	case report.KindLongWait, report.KindLongHold:
		return 3
	}
	return 4
}

func limit[T any](s []T) ([]T, int) {
	if len(s) > indexRows {
		return s[:indexRows], len(s) - indexRows
	}
	return s, 0
}

type indexProfile struct {
	Name, Doc string
	Snapshot  bool
}

type indexData struct {
	Overview
	Enabled                                       bool
	Base                                          string
	Profiles                                      []indexProfile
	Dropped                                       []string
	Limit                                         int
	MoreReports, MoreHeld, MoreWaiting, MoreLocks int
	Refresh                                       int
	Graph                                         *waitGraph
	WaitingNow                                    map[string]int
	PageReports                                   []pageReport // Reports, as shown
}

// lockData is the page of one lock (?lock=NAME): every lock of that name.
type lockData struct {
	Name    string
	Time    time.Time
	Refresh int
	Stat    *report.LockStat
	Held    []report.Holding
	Waiting []report.Waiting
	Sites   []siteRow
	Reports []pageReport
}

// siteRow is one stack's share of a lock's statistics.
type siteRow struct {
	Kind   string
	Mode   report.Mode
	Count  int64
	Time   time.Duration
	Frames []report.Frame
}

// maxSites bounds the lock page's top sites, per kind.
const maxSites = 10

func newLockData(ov Overview, name string, refresh int) lockData {
	d := lockData{Name: name, Time: ov.Time, Refresh: refresh}
	for i := range ov.Locks {
		if ov.Locks[i].Lock == name {
			d.Stat = &ov.Locks[i]
		}
	}
	for _, h := range ov.Held {
		if h.Lock.Name == name {
			d.Held = append(d.Held, h)
		}
	}
	for _, w := range ov.Waiting {
		if w.Lock.Name == name {
			d.Waiting = append(d.Waiting, w)
		}
	}
	for _, r := range ov.Reports {
		for _, l := range r.Locks {
			if l.Name == name {
				d.Reports = append(d.Reports, pageReports([]report.Report{r}, ov)...)
				break
			}
		}
	}
	byKind := map[report.StatKind][]siteRow{}
	for _, rec := range inspect.Records() {
		if rec.Lock != name {
			continue
		}
		byKind[rec.Kind] = append(byKind[rec.Kind], siteRow{
			Kind: rec.Kind.String(), Mode: rec.Mode, Count: rec.Count, Time: time.Duration(rec.Nanos), Frames: userFrames(rec.Stack),
		})
	}
	for _, k := range []report.StatKind{report.StatWait, report.StatWaitByHolder, report.StatHold, report.StatTryFail} {
		rows := byKind[k]
		sort.Slice(rows, func(i, j int) bool {
			if rows[i].Time != rows[j].Time {
				return rows[i].Time > rows[j].Time
			}
			return rows[i].Count > rows[j].Count
		})
		d.Sites = append(d.Sites, rows[:min(len(rows), maxSites)]...)
	}
	return d
}

// userFrames symbolises pcs without the frames inside debugmutex and the
// runtime's goexit.
func userFrames(pcs []uintptr) []report.Frame {
	fs := inspect.Symbolize(pcs)
	for len(fs) > 0 && strings.HasPrefix(fs[0].Function, "github.com/lockscope/lockscope/debugmutex.") {
		fs = fs[1:]
	}
	for len(fs) > 0 && (fs[len(fs)-1].Function == "runtime.goexit" || fs[len(fs)-1].Function == "runtime.main") {
		fs = fs[:len(fs)-1]
	}
	return fs
}

var pageFuncs = template.FuncMap{
	"dur":        ShortDuration,
	"frames":     userFrames,
	"waitingnow": func(m map[string]int, name string) int { return m[name] },
}

// pageHead is the pages' shared head and style.
const pageHead = `{{define "head"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{{if .Refresh}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}
<title>{{block "title" .}}lockscope: locks{{end}}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { text-align: left; padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
code, .site, pre { font-family: monospace; }
pre { margin: 0.3em 0 0.3em 1em; font-size: 90%; }
.warn { color: #a00; }
.report { border: 2px solid #c00; border-radius: 4px; padding: 0.5em 1em; margin-bottom: 1em; background: #fff5f5; }
.report h3 { margin: 0.2em 0; color: #a00; }
.report .g { margin: 0.4em 0; }
nav a { margin-right: 1em; }
details summary { cursor: pointer; }
</style>
</head>
<body>
{{end}}
{{define "refresh"}}<nav>As of {{.Time.Format "2006-01-02 15:04:05.000 MST"}}.
<a href="" id="refresh">Refresh</a>
{{if .Refresh}}Refreshing every {{.Refresh}}s: <a href="?{{block "lockq" .}}{{end}}">stop</a>{{else}}Auto-refresh: <a href="?{{template "lockq" .}}refresh=2">every 2s</a> <a href="?{{template "lockq" .}}refresh=10">every 10s</a>{{end}}</nav>
{{end}}
{{define "stack"}}<pre>{{range .}}{{.Function}}
	{{.File}}:{{.Line}}
{{end}}</pre>{{end}}
{{define "reports"}}{{range $r := .}}<div class="report" data-kind="{{.Kind}}">
<h3>{{.Kind}}{{if gt .Count 1}} (seen {{.Count}} times){{end}}</h3>
<p>{{.Summary}}</p>
<p>First seen {{.Time.Format "15:04:05.000"}}. Locks: {{range $i, $l := .Locks}}{{if $i}}, {{end}}<a href="?lock={{$l.Name}}">{{$l.Name}}</a>{{end}}</p>
{{range $i, $g := .Goroutines}}<div class="g"><strong>goroutine {{.ID}}</strong> {{.Role}} {{.Lock}}{{with index $r.Now $i}} <span class="now">for {{dur .}} as of now, still going</span>{{else}}{{if $g.For}} for {{dur $g.For}}{{end}}{{end}}{{if .Exited}} (exited){{end}}
{{template "stack" .Stack}}{{if .Current}}<details><summary>where it is now</summary>{{template "stack" .Current}}</details>{{end}}</div>
{{end}}{{range .Edges}}<div class="g">lock order {{.From}} &rarr; {{.To}} (goroutine {{.Goroutine}}): {{.To}} taken at{{template "stack" .ToStack}}</div>
{{end}}</div>
{{end}}{{end}}`

var indexTmpl = template.Must(template.Must(template.New("index").Funcs(pageFuncs).Parse(pageHead)).Parse(`{{template "head" .}}
<h1>lockscope</h1>
{{template "refresh" .}}
{{if not .Enabled}}<p><strong class="warn">Recording is off (LOCKSCOPE=off or the nolockscope build tag): everything below is empty.</strong></p>{{end}}
<p><a href="?format=json">JSON</a></p>
{{range .Dropped}}<p class="warn">{{.}}</p>{{end}}

<h2 id="reports">Reports ({{len .Overview.Reports}}{{if .MoreReports}}, first {{.Limit}} shown{{end}})</h2>
{{if .Reports}}{{template "reports" .PageReports}}{{else}}<p>No problem reported: no deadlock, lock-order inversion, leaked lock or long wait so far.</p>{{end}}

{{if .Graph}}<h2 id="graph">Wait-for graph{{if .Graph.Cycle}} <span class="warn">(a cycle: deadlock)</span>{{end}}</h2>
<p>A goroutine points to the lock it waits for; a lock points to the goroutines holding it.{{if .Graph.Omitted}} {{.Graph.Omitted}} goroutines or locks left out.{{end}}</p>
{{.Graph.SVG}}
{{end}}

<h2 id="waiting">Waiting now ({{len .Overview.Waiting}}{{if .MoreWaiting}}, first {{.Limit}} shown{{end}})</h2>
{{if .Waiting}}<table>
<tr><th>Lock</th><th>Type</th><th>Mode</th><th>Goroutine</th><th>Waiting for</th><th>Holder</th><th>Waiting at</th></tr>
{{range .Waiting}}<tr><td><a href="?lock={{.Lock.Name}}">{{.Lock.Name}}</a></td><td>{{.Lock.Type}}</td><td>{{.Mode}}</td><td class="n">{{.Goroutine}}</td><td class="n">{{dur .For}}</td><td class="n">{{if .Holder}}{{.Holder}}{{else}}&ndash;{{end}}</td><td class="site"><details><summary>{{.Site.Site}}</summary>{{template "stack" frames .Stack}}</details></td></tr>
{{end}}</table>{{else}}<p>No goroutine is waiting for a lock.</p>{{end}}

<h2 id="held">Held now ({{len .Overview.Held}}{{if .MoreHeld}}, first {{.Limit}} shown{{end}})</h2>
{{if .Held}}<table>
<tr><th>Lock</th><th>Type</th><th>Mode</th><th>Goroutine</th><th>Held for</th><th>Acquired at</th></tr>
{{range .Held}}<tr><td><a href="?lock={{.Lock.Name}}">{{.Lock.Name}}</a></td><td>{{.Lock.Type}}</td><td>{{.Mode}}</td><td class="n">{{.Goroutine}}</td><td class="n">{{if not .Exact}}&ge; {{end}}{{dur .For}}</td><td class="site"><details><summary>{{.Site.Site}}</summary>{{template "stack" frames .Stack}}</details></td></tr>
{{end}}</table>{{else}}<p>No lock is held.</p>{{end}}

<h2 id="locks">Worst locks ({{len .Overview.Locks}}{{if .MoreLocks}}, first {{.Limit}} shown{{end}})</h2>
{{if .Locks}}<table>
<tr><th>Lock</th><th>Type</th><th>Contentions</th><th>Wait time</th><th>Waiting now</th><th>Acquisitions</th><th>Hold time</th><th>TryLock failures</th></tr>
{{range .Locks}}<tr><td><a href="?lock={{.Lock}}">{{.Lock}}</a></td><td>{{.Type}}</td><td class="n">{{.Contentions}}</td><td class="n">{{dur .WaitTime}}</td><td class="n">{{waitingnow $.WaitingNow .Lock}}</td><td class="n">{{.Acquisitions}}</td><td class="n">{{dur .HoldTime}}</td><td class="n">{{.TryLockFailures}}</td></tr>
{{end}}</table>{{else}}<p>Nothing recorded yet.</p>{{end}}
<p>Contentions and wait times include the waits in progress, acquisitions and hold times the holds in progress. Acquisitions and hold times of short holds are sampled estimates; waits and TryLock failures are exact.</p>

<h2 id="profiles">Profiles</h2>
<table>
<tr><th>Profile</th><th>What</th><th>Text</th><th>go tool pprof</th></tr>
{{range .Profiles}}<tr><td><a href="{{.Name}}">{{.Name}}</a></td><td>{{.Doc}}</td><td><a href="{{.Name}}?debug=1">text</a></td><td><code>go tool pprof {{$.Base}}{{.Name}}{{if not .Snapshot}}?seconds=30{{end}}</code></td></tr>
{{end}}</table>
</body>
</html>
`))

var lockTmpl = template.Must(template.Must(template.New("lock").Funcs(pageFuncs).Parse(pageHead)).Parse(`{{define "title"}}lockscope: {{.Name}}{{end}}{{define "lockq"}}lock={{.Name}}&amp;{{end}}{{template "head" .}}
<h1>Lock {{.Name}}</h1>
<p><a href="?">&larr; all locks</a></p>
{{template "refresh" .}}
{{if .Reports}}<h2>Reports</h2>{{template "reports" .Reports}}{{end}}
{{with .Stat}}<table id="totals">
<tr><th>Type</th><th>Contentions</th><th>Wait time</th><th>Acquisitions</th><th>Hold time</th><th>TryLock failures</th></tr>
<tr><td>{{.Type}}</td><td class="n">{{.Contentions}}</td><td class="n">{{dur .WaitTime}}</td><td class="n">{{.Acquisitions}}</td><td class="n">{{dur .HoldTime}}</td><td class="n">{{.TryLockFailures}}</td></tr>
</table>{{else}}<p>Nothing recorded for a lock named {{.Name}}.</p>{{end}}

<h2 id="holders">Holders ({{len .Held}})</h2>
{{range .Held}}<div><strong>goroutine {{.Goroutine}}</strong> holds it ({{.Mode}}) for {{if not .Exact}}&ge; {{end}}{{dur .For}}, acquired at{{template "stack" frames .Stack}}</div>
{{else}}<p>Not held now.</p>{{end}}

<h2 id="waiters">Waiters ({{len .Waiting}})</h2>
{{range .Waiting}}<div><strong>goroutine {{.Goroutine}}</strong> waits ({{.Mode}}) for {{dur .For}}{{if .Holder}}, held by goroutine {{.Holder}}{{end}}, at{{template "stack" frames .Stack}}</div>
{{else}}<p>No goroutine waits for it now.</p>{{end}}

<h2 id="sites">Top sites</h2>
{{if .Sites}}<table>
<tr><th>What</th><th>Mode</th><th>Count</th><th>Time</th><th>Where</th></tr>
{{range .Sites}}<tr><td>{{.Kind}}</td><td>{{.Mode}}</td><td class="n">{{.Count}}</td><td class="n">{{dur .Time}}</td><td class="site">{{with .Frames}}<details><summary>{{(index . 0).Site}}</summary>{{template "stack" .}}</details>{{end}}</td></tr>
{{end}}</table>{{else}}<p>No statistics yet.</p>{{end}}
</body>
</html>
`))
