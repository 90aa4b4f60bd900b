//go:build !nolockscope

package profiler

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

func TestWaitGraphDrawsTheCycleRed(t *testing.T) {
	a := report.LockInfo{ID: 1, Name: "graph.a", Type: "Mutex"}
	b := report.LockInfo{ID: 2, Name: "graph.b", Type: "Mutex"}
	st := report.State{
		Held: []report.Holding{
			{Lock: a, Goroutine: 10, For: time.Second},
			{Lock: b, Goroutine: 11, For: time.Second},
		},
		Waiting: []report.Waiting{
			{Lock: b, Goroutine: 10, For: time.Second, Holder: 11},
			{Lock: a, Goroutine: 11, For: time.Second, Holder: 10},
			{Lock: a, Goroutine: 12, For: time.Millisecond, Holder: 10}, // waits, not in the cycle
		},
	}
	g := newWaitGraph(st)
	if !g.Cycle || len(g.Nodes) != 5 || len(g.Edges) != 5 {
		t.Fatalf("cycle %v, %d nodes, %d edges: want a cycle, 5 nodes (3 goroutines, 2 locks), 5 edges", g.Cycle, len(g.Nodes), len(g.Edges))
	}
	for _, e := range g.Edges {
		if want := e.From != "g12"; e.Hot != want {
			t.Errorf("edge %s -> %s hot %v, want %v", e.From, e.To, e.Hot, want)
		}
		if e.X1 < 0 || e.Y1 < 0 || e.X2 > g.Width || e.Y2 > g.Height {
			t.Errorf("edge %s -> %s outside the drawing: (%v,%v)-(%v,%v) in %vx%v", e.From, e.To, e.X1, e.Y1, e.X2, e.Y2, g.Width, g.Height)
		}
	}
	for _, n := range g.Nodes {
		if n.X-n.W/2 < 0 || n.Y-n.H/2 < 0 || n.X+n.W/2 > g.Width || n.Y+n.H/2 > g.Height {
			t.Errorf("node %s outside the drawing", n.ID)
		}
	}
	svg := string(g.SVG())
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Errorf("SVG is not well-formed XML: %v\n%s", err, svg)
	}
	if n := strings.Count(svg, `class="edge hot"`); n != 4 {
		t.Errorf("%d red edges, want the cycle's 4", n)
	}
	for _, want := range []string{">goroutine 10<", ">goroutine 12<", ">graph.a<", ">graph.b<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if newWaitGraph(report.State{Held: st.Held}) != nil {
		t.Error("a graph with no waiter")
	}
}

func TestWaitGraphIsBounded(t *testing.T) {
	var st report.State
	for i := range 500 {
		l := report.LockInfo{ID: uint64(i + 1), Name: "bounded"}
		st.Held = append(st.Held, report.Holding{Lock: l, Goroutine: int64(10000 + i)})
		st.Waiting = append(st.Waiting, report.Waiting{Lock: l, Goroutine: int64(20000 + i)})
	}
	g := newWaitGraph(st)
	locks, gs := 0, 0
	for _, n := range g.Nodes {
		if n.Lock {
			locks++
		} else {
			gs++
		}
	}
	if locks > maxGraphLocks || gs > maxGraphGoroutines || g.Omitted == 0 {
		t.Errorf("%d locks, %d goroutines, %d omitted: want at most %d and %d, and some omitted", locks, gs, g.Omitted, maxGraphLocks, maxGraphGoroutines)
	}
}

// A lock-order inversion (a report), a lock held with a goroutine waiting
// for it (in progress: no wait has ended), over HTTP.
func TestIndexPageShowsReportsFirstGraphAndWaitsInProgress(t *testing.T) {
	debugmutex.Configure(debugmutex.Quiet(true)) // the report is expected
	t.Cleanup(func() { debugmutex.Configure(debugmutex.Quiet(false)) })
	var a, b debugmutex.Mutex
	debugmutex.SetName(&a, "page.order.a")
	debugmutex.SetName(&b, "page.order.b")
	a.Lock()
	b.Lock()
	b.Unlock()
	a.Unlock()
	b.Lock()
	a.Lock()
	a.Unlock()
	b.Unlock()

	var held debugmutex.Mutex
	debugmutex.SetName(&held, "page.stuck")
	waiterDone := make(chan struct{})
	t.Cleanup(func() { <-waiterDone })
	_, holder := parkHolding(t, &held, "page.stuck")
	go func() { held.Lock(); held.Unlock(); close(waiterDone) }()
	for !hasWaiter("page.stuck") {
		<-time.After(time.Millisecond) // polling for the waiter to block
	}

	srv := newServer(t)
	_, body := get(t, srv.URL+Prefix)
	page := string(body)
	iReports, iGraph, iWaiting, iLocks := strings.Index(page, `id="reports"`), strings.Index(page, `id="graph"`),
		strings.Index(page, `id="waiting"`), strings.Index(page, `id="locks"`)
	if iReports < 0 || iGraph < 0 || !(iReports < iGraph && iGraph < iWaiting && iWaiting < iLocks) {
		t.Errorf("sections at reports %d, graph %d, waiting %d, locks %d: want them in that order", iReports, iGraph, iWaiting, iLocks)
	}
	for _, want := range []string{
		`data-kind="lock-order"`, "lock-order inversion page.order.a -&gt; page.order.b",
		`<svg id="waitfor"`, ">page.stuck<", `href="?lock=page.stuck"`,
		`Auto-refresh: <a href="?refresh=2">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("index page lacks %q", want)
		}
	}
	// The wait in progress is counted among the worst locks.
	row := page[strings.Index(page[iLocks:], `<a href="?lock=page.stuck">`)+iLocks:]
	row = row[:strings.Index(row, "</tr>")]
	cells := strings.Split(row, `<td class="n">`)
	if len(cells) < 4 || !strings.HasPrefix(cells[1], "1<") || !strings.HasPrefix(cells[3], "1<") {
		t.Errorf("worst-locks row of page.stuck %q: want 1 contention (in progress) and 1 waiting now", row)
	}
	// So is the hold in progress, never released: one acquisition, held
	// for more than nothing.
	if len(cells) < 6 || !strings.HasPrefix(cells[4], "1<") || strings.HasPrefix(cells[5], "0s<") {
		t.Errorf("worst-locks row of page.stuck %q: want 1 acquisition and a hold time (in progress)", row)
	}

	var ov Overview
	_, body = get(t, srv.URL+Prefix+"?format=json")
	if err := json.Unmarshal(body, &ov); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range ov.Locks {
		if l.Lock == "page.stuck" {
			found = l.Contentions >= 1 && l.WaitTime > 0
		}
	}
	if !found {
		t.Errorf("JSON locks lack page.stuck's wait in progress: %+v", ov.Locks)
	}
	for _, w := range ov.Waiting {
		if w.Lock.Name == "page.stuck" && w.Holder != holder {
			t.Errorf("waiter's holder %d, want the holding goroutine %d", w.Holder, holder)
		}
	}
}

func TestLockPage(t *testing.T) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "page.one")
	contendNamed(&mu, "page.one")
	waiterDone := make(chan struct{})
	t.Cleanup(func() { <-waiterDone }) // after the holder lets go: cleanups run last first
	_, holder := parkHolding(t, &mu, "page.one")
	go func() { mu.Lock(); mu.Unlock(); close(waiterDone) }()
	for !hasWaiter("page.one") {
		<-time.After(time.Millisecond) // polling for the waiter to block
	}
	srv := newServer(t)
	resp, body := get(t, srv.URL+Prefix+"?lock="+url.QueryEscape("page.one")+"&refresh=5")
	page := string(body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %s", resp.Status, body)
	}
	for _, want := range []string{
		"<h1>Lock page.one</h1>", `<meta http-equiv="refresh" content="5">`,
		"<strong>goroutine " + itoa(holder) + "</strong> holds it", "profiler.lockInlined", // the holder's stack
		"waits (write) for", "held by goroutine " + itoa(holder),
		`id="sites"`, "<td>wait</td>", "profiler.contendNamed",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("lock page lacks %q", want)
		}
	}
	_, body = get(t, srv.URL+Prefix+"?lock=page.nosuchlock")
	if !strings.Contains(string(body), "Nothing recorded for a lock named page.nosuchlock") {
		t.Errorf("page of an unknown lock:\n%s", body)
	}
	for _, q := range []string{"?refresh=-1", "?refresh=x", "?format=json&lock=page.one", "?lock=a&lock=b"} {
		resp, body := get(t, srv.URL+Prefix+q)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %s, want 400: %s", q, resp.Status, body)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Snapshots taken while locks change hands are consistent in themselves.
func TestSnapshotIsConsistentUnderChurn(t *testing.T) {
	var mus [2]debugmutex.Mutex
	for i := range mus {
		debugmutex.SetName(&mus[i], "churn")
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				mu := &mus[(g+i)%len(mus)]
				mu.Lock()
				runtime.Gosched() // let the others queue behind it
				mu.Unlock()
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	waits, snaps := 0, 0
	for ; waits < 200 && snaps < 20000; snaps++ {
		st := inspect.Snapshot()
		writers := map[uint64]int64{}
		for _, h := range st.Held {
			if h.For < 0 {
				t.Fatalf("negative hold %v", h.For)
			}
			if h.Mode == report.Write {
				writers[h.Lock.ID] = h.Goroutine
			}
		}
		for _, w := range st.Waiting {
			waits++
			if w.For < 0 {
				t.Fatalf("negative wait %v", w.For)
			}
			if w.Holder != 0 && writers[w.Lock.ID] != w.Holder {
				t.Fatalf("waiter %d's holder %d is not the holder %d the snapshot shows", w.Goroutine, w.Holder, writers[w.Lock.ID])
			}
		}
	}
	if waits == 0 {
		t.Fatalf("no wait seen in %d snapshots: the test checked nothing", snaps)
	}
	t.Logf("%d waits seen in %d snapshots", waits, snaps)
}

func TestAReportedWaitStillGoingOnIsShownAsOfNow(t *testing.T) {
	since := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	lock := report.LockInfo{ID: 7, Name: "accounts.mu", Type: "Mutex"}
	r := report.Report{Kind: report.KindDeadlock, Time: since.Add(32 * time.Microsecond), Goroutines: []report.GoroutineRef{
		{ID: 21, Role: "waits for write lock", Lock: "accounts.mu", For: 32 * time.Microsecond},
		{ID: 22, Role: "holds", Lock: "accounts.mu"},
		{ID: 23, Role: "waits for write lock", Lock: "accounts.mu (#7)", For: time.Millisecond},
	}}
	ov := Overview{
		Waiting: []report.Waiting{
			{Lock: lock, Goroutine: 21, Since: since, For: 5*time.Minute + 50*time.Second}, // the same wait
			{Lock: lock, Goroutine: 23, Since: since.Add(time.Hour), For: time.Second},     // a later one
		},
		Held: []report.Holding{{Lock: lock, Goroutine: 22, For: 6 * time.Minute}},
	}
	pr := pageReports([]report.Report{r}, ov)[0]
	if want := []time.Duration{5*time.Minute + 50*time.Second, 6 * time.Minute, 0}; !slices.Equal(pr.Now, want) {
		t.Errorf("as of now: %v, want %v (goroutine 23's wait then is over: it waits again)", pr.Now, want)
	}
	var b strings.Builder
	data := indexData{Overview: Overview{Reports: []report.Report{r}}, PageReports: []pageReport{pr}, WaitingNow: map[string]int{}}
	if err := indexTmpl.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"for 5m50s as of now, still going", "for 6m0s as of now, still going", "for 1ms"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// A Once's holder is the goroutine running its function: its hold, still
// going on, is shown as of now too.
func TestAReportedOnceRunStillGoingOnIsShownAsOfNow(t *testing.T) {
	since := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	lock := report.LockInfo{ID: 9, Name: "Registry.initOnce", Type: "Once"}
	r := report.Report{Kind: report.KindDeadlock, Time: since.Add(time.Millisecond), Goroutines: []report.GoroutineRef{
		{ID: 31, Role: "waits for Once", Lock: "Registry.initOnce", For: time.Millisecond},
		{ID: 32, Role: "runs the function of Once", Lock: "Registry.initOnce"},
	}}
	ov := Overview{
		Waiting: []report.Waiting{{Lock: lock, Goroutine: 31, Since: since, For: time.Minute}},
		Held:    []report.Holding{{Lock: lock, Goroutine: 32, For: 2 * time.Minute}},
	}
	pr := pageReports([]report.Report{r}, ov)[0]
	if want := []time.Duration{time.Minute, 2 * time.Minute}; !slices.Equal(pr.Now, want) {
		t.Errorf("as of now: %v, want %v", pr.Now, want)
	}
}
