package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/profiler"
	"github.com/lockscope/lockscope/report"
)

// lockEndpoint serves the JSON the profiler package serves at
// /debug/locks/?format=json, built from the debugmutex types.
func lockEndpoint(t *testing.T) *httptest.Server {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	cache := report.LockInfo{ID: 1, Name: "main.(*Cache).Get at cache.go:42", Type: "RWMutex"}
	db := report.LockInfo{ID: 2, Name: "db", Type: "Mutex"}
	data := struct {
		Time    time.Time         `json:"time"`
		Held    []report.Holding  `json:"held"`
		Waiting []report.Waiting  `json:"waiting"`
		Locks   []report.LockStat `json:"locks"`
	}{
		Time: now,
		Held: []report.Holding{
			{Lock: cache, Mode: report.Read, Goroutine: 12, Site: report.Frame{Function: "main.(*Cache).Get", File: "/src/cache.go", Line: 42},
				Since: now.Add(-3 * time.Millisecond), For: 3 * time.Millisecond, Exact: true},
			{Lock: db, Mode: report.Write, Goroutine: 7, Site: report.Frame{Function: "main.save", File: "/src/db.go", Line: 9},
				Since: now.Add(-2 * time.Second), For: 2 * time.Second},
		},
		Waiting: []report.Waiting{
			{Lock: db, Mode: report.Write, Goroutine: 31, Site: report.Frame{Function: "main.load", File: "/src/db.go", Line: 30},
				Since: now.Add(-time.Second), For: 1500 * time.Millisecond, Holder: 7},
		},
		Locks: []report.LockStat{
			{Lock: "main.(*Cache).Get at cache.go:42", Type: "RWMutex", Acquisitions: 90000, HoldTime: 40 * time.Millisecond, Contentions: 3, WaitTime: time.Millisecond},
			{Lock: "db", Type: "Mutex", Acquisitions: 12, HoldTime: 5 * time.Second, Contentions: 8, WaitTime: 4 * time.Second, TryLockFailures: 2},
			{Lock: "quiet", Type: "Mutex", Acquisitions: 1},
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/locks/" || r.URL.Query().Get("format") != "json" {
			http.Error(w, "not here", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(data)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestTopOnce(t *testing.T) {
	srv := lockEndpoint(t)
	r := lockscope(t, t.TempDir(), nil, "top", "-once", srv.URL+"/debug/locks/")
	if r.code != 0 {
		t.Fatalf("top -once: exit %d\n%s", r.code, r.stderr)
	}
	out := r.stdout
	if strings.Contains(out, clearScreen) {
		t.Error("top -once cleared the screen")
	}
	for _, want := range []string{"3 locks, 2 held, 1 waiting", "WORST LOCKS (by wait)", "TRY-FAIL",
		"main.save at db.go:9", "main.load at db.go:30", ">2s", "3ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("top output lacks %q:\n%s", want, out)
		}
	}
	// Worst by wait first: db (4s), then the cache (1ms), then quiet.
	iDB, iCache, iQuiet := strings.Index(out, "db (Mutex)"), strings.Index(out, "cache.go:42 (RWMutex)"), strings.Index(out, "quiet (Mutex)")
	if !(iDB >= 0 && iDB < iCache && iCache < iQuiet) {
		t.Errorf("locks not ordered by wait time:\n%s", out)
	}
	// The longest holder comes first, and the waiter names its holder.
	held := out[strings.Index(out, "HELD NOW"):]
	if strings.Index(held, "main.save") > strings.Index(held, "main.(*Cache).Get at") {
		t.Errorf("held locks not ordered longest first:\n%s", held)
	}
	if !strings.Contains(out, "31         1.5s  write  db    7") {
		t.Errorf("waiting row wrong:\n%s", out)
	}

	r = lockscope(t, t.TempDir(), nil, "top", "-once", "-n", "1", "-sort", "acquisitions", strings.TrimPrefix(srv.URL, "http://"))
	if r.code != 0 || !strings.Contains(r.stdout, "by acquisitions") || !strings.Contains(r.stdout, "... and 2 more") || strings.Contains(r.stdout, "db (Mutex)") {
		t.Errorf("top -n 1 -sort acquisitions on a bare host:port: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestTopErrors(t *testing.T) {
	srv := lockEndpoint(t)
	r := lockscope(t, t.TempDir(), nil, "top", "-once", srv.URL+"/elsewhere")
	if r.code != 1 || !strings.Contains(r.stderr, "404 Not Found") {
		t.Errorf("top on a wrong path: exit %d\n%s", r.code, r.stderr)
	}
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>hi</html>")) }))
	defer html.Close()
	r = lockscope(t, t.TempDir(), nil, "top", "-once", html.URL)
	if r.code != 1 || !strings.Contains(r.stderr, "not lockscope JSON") {
		t.Errorf("top on a non-lockscope server: exit %d\n%s", r.code, r.stderr)
	}
	for _, args := range [][]string{{"top"}, {"top", "-once", "ftp://x"}, {"top", "-interval", "0s", "x:1"}, {"top", "-sort", "name", "x:1"}} {
		if r := lockscope(t, t.TempDir(), nil, args...); r.code != 2 {
			t.Errorf("lockscope %v: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
	}
}

// TestTopAgainstProfiler reads a real program's locks: this test's own,
// served by package profiler.
func TestTopAgainstProfiler(t *testing.T) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "top.test.hot")
	mu.Lock()
	waited := make(chan struct{})
	go func() {
		mu.Lock()
		mu.Unlock()
		close(waited)
	}()
	// Wait until the goroutine is known to be waiting.
	for deadline := time.Now().Add(10 * time.Second); ; runtime.Gosched() {
		if w := inspect.Snapshot().Waiting; slices.ContainsFunc(w, func(w report.Waiting) bool { return w.Lock.Name == "top.test.hot" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the waiter never showed up in inspect.Snapshot")
		}
	}
	srv := httptest.NewServer(profiler.Handler())
	defer srv.Close()
	r := lockscope(t, t.TempDir(), nil, "top", "-once", srv.URL+profiler.Prefix)
	mu.Unlock()
	<-waited
	if r.code != 0 {
		t.Fatalf("top -once: exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("lockscope top -once:\n%s", r.stdout)
	held := r.stdout[strings.Index(r.stdout, "HELD NOW"):strings.Index(r.stdout, "WAITING NOW")]
	waiting := r.stdout[strings.Index(r.stdout, "WAITING NOW"):]
	if !strings.Contains(held, "top.test.hot") || !strings.Contains(waiting, "top.test.hot") || !strings.Contains(waiting, "TestTopAgainstProfiler") {
		t.Errorf("top does not show the held and awaited lock:\n%s", r.stdout)
	}
}

// TestTopColumnsAlignForEveryUnit renders durations in ns, µs, ms and s in
// every duration column and checks that each column lines up on screen:
// "µ" is one column wide but two bytes, so a width counted in bytes would
// push the cells after a µs value one column out.
func TestTopColumnsAlignForEveryUnit(t *testing.T) {
	u, err := url.Parse("http://127.0.0.1:6060/debug/locks/")
	if err != nil {
		t.Fatal(err)
	}
	d := &topData{Time: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	durs := []time.Duration{
		500 * time.Nanosecond,
		32201 * time.Nanosecond,
		3*time.Millisecond + 400*time.Microsecond,
		2*time.Second + 5*time.Millisecond,
		5*time.Minute + 50*time.Second,
	}
	for i, v := range durs {
		l := report.LockInfo{ID: uint64(i + 1), Name: fmt.Sprintf("lock%d", i), Type: "Mutex"}
		// The wait column and the hold column get different units in a row,
		// so a misplaced cell cannot be hidden by its neighbour's.
		d.Locks = append(d.Locks, report.LockStat{Lock: l.Name, Type: "Mutex", WaitTime: v, HoldTime: durs[len(durs)-1-i],
			Acquisitions: int64(i + 1), Contentions: int64(i)})
		d.Held = append(d.Held, report.Holding{Lock: l, Goroutine: int64(10 + i), For: v, Exact: i%2 == 0, Mode: report.Write,
			Site: report.Frame{Function: "main.f", File: "/src/f.go", Line: i + 1}})
		d.Waiting = append(d.Waiting, report.Waiting{Lock: l, Goroutine: int64(20 + i), For: v, Mode: report.Read, Holder: int64(10 + i),
			Site: report.Frame{Function: "main.g", File: "/src/g.go", Line: i + 1}})
	}
	out := renderTop(u, d, 20, "wait")
	for _, unit := range []string{"ns", "µs", "ms", "s "} {
		if !strings.Contains(out, unit) {
			t.Fatalf("no value in %q on the screen:\n%s", unit, out)
		}
	}
	tables := map[string]bool{"WAIT": true, "GOROUTINE": false} // header's first word -> right-aligned
	sep := regexp.MustCompile(`\S+( \S+)*`)
	lines := strings.Split(out, "\n")
	checked := 0
	for i := 0; i < len(lines); i++ {
		fields := strings.Fields(lines[i])
		if len(fields) == 0 {
			continue
		}
		right, ok := tables[fields[0]]
		if !ok {
			continue
		}
		// The header and the rows below it, up to a blank line.
		var rows []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			rows = append(rows, lines[i])
		}
		if len(rows) != 1+len(durs) {
			t.Fatalf("table %s has %d lines, want %d:\n%s", fields[0], len(rows), 1+len(durs), out)
		}
		// Columns on screen: a cell's first (left-aligned) or last
		// (right-aligned) character, counted in runes. The last cell is
		// not padded and is left out.
		cols := func(row string) []int {
			var at []int
			locs := sep.FindAllStringIndex(row, -1)
			for _, l := range locs[:len(locs)-1] {
				if right {
					at = append(at, utf8.RuneCountInString(row[:l[1]]))
				} else {
					at = append(at, utf8.RuneCountInString(row[:l[0]]))
				}
			}
			return at
		}
		want := cols(rows[0])
		for _, r := range rows[1:] {
			if got := cols(r); !slices.Equal(got, want) {
				t.Errorf("table %s: row %q has its columns at %v, the header at %v:\n%s", fields[0], r, got, want, strings.Join(rows, "\n"))
			}
		}
		checked++
	}
	if checked != 3 {
		t.Fatalf("checked %d tables, want 3:\n%s", checked, out)
	}
}
