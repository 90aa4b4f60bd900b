package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

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
