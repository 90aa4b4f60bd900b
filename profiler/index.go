package profiler

import (
	"bytes"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/debugmutex"
)

// Overview is what the index page shows and what /debug/locks/?format=json
// serves (the input of `lockscope top`): every lock held and every goroutine
// waiting right now, and the per-lock totals, worst first.
type Overview struct {
	Time    time.Time             `json:"time"`
	Held    []debugmutex.Holding  `json:"held"`
	Waiting []debugmutex.Waiting  `json:"waiting"`
	Locks   []debugmutex.LockStat `json:"locks"`
}

// Current returns the Overview as of now.
func Current() Overview {
	st := debugmutex.Snapshot()
	ov := Overview{Time: st.Time, Held: st.Held, Waiting: st.Waiting, Locks: debugmutex.LockStats()}
	// Empty lists, not nulls, for the JSON's readers.
	if ov.Held == nil {
		ov.Held = []debugmutex.Holding{}
	}
	if ov.Waiting == nil {
		ov.Waiting = []debugmutex.Waiting{}
	}
	if ov.Locks == nil {
		ov.Locks = []debugmutex.LockStat{}
	}
	return ov
}

func encode(w io.Writer, p *profile.Profile, debug int) error {
	if debug == 1 {
		return writeText(w, p)
	}
	return p.Write(w)
}

// indexRows bounds each table of the HTML page (the JSON has everything).
const indexRows = 200

func serveIndex(w http.ResponseWriter, r *http.Request) {
	q, err := queryParams(r, "format")
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	ov := Current()
	var buf bytes.Buffer
	switch q["format"] {
	case "json":
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ov); err != nil {
			httpError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
	case "", "html":
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		data := indexData{
			Overview: ov,
			Enabled:  debugmutex.Enabled(),
			Base:     scheme + "://" + r.Host + r.URL.Path,
			Dropped:  droppedComments(debugmutex.DroppedCounts()),
			Limit:    indexRows,
		}
		for _, sp := range specs {
			data.Profiles = append(data.Profiles, indexProfile{Name: sp.name, Doc: sp.doc, Snapshot: sp.snapshot})
		}
		data.Held, data.MoreHeld = limit(ov.Held)
		data.Waiting, data.MoreWaiting = limit(ov.Waiting)
		data.Locks, data.MoreLocks = limit(ov.Locks)
		if err := indexTmpl.Execute(&buf, data); err != nil {
			httpError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	default:
		httpError(w, http.StatusBadRequest, "invalid value "+strconv.Quote(q["format"])+" for parameter \"format\": want html or json")
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
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
	Enabled                          bool
	Base                             string
	Profiles                         []indexProfile
	Dropped                          []string
	Limit                            int
	MoreHeld, MoreWaiting, MoreLocks int
}

var indexTmpl = template.Must(template.New("index").Funcs(template.FuncMap{
	"dur": func(d time.Duration) string {
		switch {
		case d >= time.Second:
			return d.Round(time.Millisecond).String()
		case d >= time.Millisecond:
			return d.Round(time.Microsecond).String()
		}
		return d.String()
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lockscope: locks</title>
<style>
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { text-align: left; padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
code, .site { font-family: monospace; }
.warn { color: #a00; }
</style>
</head>
<body>
<h1>lockscope</h1>
<p>As of {{.Time.Format "2006-01-02 15:04:05.000 MST"}}.
{{if not .Enabled}}<strong class="warn">Recording is off (LOCKSCOPE=off or the nolockscope build tag): everything below is empty.</strong>{{end}}
<a href="?format=json">JSON</a></p>
{{range .Dropped}}<p class="warn">{{.}}</p>{{end}}

<h2>Profiles</h2>
<table>
<tr><th>Profile</th><th>What</th><th>Text</th><th>go tool pprof</th></tr>
{{range .Profiles}}<tr><td><a href="{{.Name}}">{{.Name}}</a></td><td>{{.Doc}}</td><td><a href="{{.Name}}?debug=1">text</a></td><td><code>go tool pprof {{$.Base}}{{.Name}}{{if not .Snapshot}}?seconds=30{{end}}</code></td></tr>
{{end}}</table>

<h2>Held now ({{len .Overview.Held}}{{if .MoreHeld}}, first {{.Limit}} shown{{end}})</h2>
{{if .Held}}<table>
<tr><th>Lock</th><th>Type</th><th>Mode</th><th>Goroutine</th><th>Held for</th><th>Acquired at</th></tr>
{{range .Held}}<tr><td>{{.Lock.Name}}</td><td>{{.Lock.Type}}</td><td>{{.Mode}}</td><td class="n">{{.Goroutine}}</td><td class="n">{{if not .Exact}}&ge; {{end}}{{dur .For}}</td><td class="site">{{.Site.Site}}</td></tr>
{{end}}</table>{{else}}<p>No lock is held.</p>{{end}}

<h2>Waiting now ({{len .Overview.Waiting}}{{if .MoreWaiting}}, first {{.Limit}} shown{{end}})</h2>
{{if .Waiting}}<table>
<tr><th>Lock</th><th>Type</th><th>Mode</th><th>Goroutine</th><th>Waiting for</th><th>Holder</th><th>Waiting at</th></tr>
{{range .Waiting}}<tr><td>{{.Lock.Name}}</td><td>{{.Lock.Type}}</td><td>{{.Mode}}</td><td class="n">{{.Goroutine}}</td><td class="n">{{dur .For}}</td><td class="n">{{if .Holder}}{{.Holder}}{{else}}&ndash;{{end}}</td><td class="site">{{.Site.Site}}</td></tr>
{{end}}</table>{{else}}<p>No goroutine is waiting for a lock.</p>{{end}}

<h2>Worst locks ({{len .Overview.Locks}}{{if .MoreLocks}}, first {{.Limit}} shown{{end}})</h2>
{{if .Locks}}<table>
<tr><th>Lock</th><th>Type</th><th>Contentions</th><th>Wait time</th><th>Acquisitions</th><th>Hold time</th><th>TryLock failures</th></tr>
{{range .Locks}}<tr><td>{{.Lock}}</td><td>{{.Type}}</td><td class="n">{{.Contentions}}</td><td class="n">{{dur .WaitTime}}</td><td class="n">{{.Acquisitions}}</td><td class="n">{{dur .HoldTime}}</td><td class="n">{{.TryLockFailures}}</td></tr>
{{end}}</table>{{else}}<p>Nothing recorded yet.</p>{{end}}
<p>Acquisitions and hold times of short holds are sampled estimates; waits and TryLock failures are exact.</p>
</body>
</html>
`))
