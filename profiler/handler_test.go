package profiler

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestHandlerServesEveryProfileAsValidProtobuf(t *testing.T) {
	srv := newServer(t)
	for _, name := range Names() {
		resp, body := get(t, srv.URL+Prefix+name)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s: %s", name, resp.Status, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
		p, err := profile.ParseData(body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkValid(t, p)
		if got := p.SampleType[0].Type; got != lookupSpec(name).sampleTypes[0].Type {
			t.Errorf("%s: first sample type %q", name, got)
		}
	}
}

func TestHandlerRejectsBadRequestsWithAMessage(t *testing.T) {
	srv := newServer(t)
	for _, c := range []struct {
		path string
		code int
		msg  string
	}{
		{"contention?seconds=0", 400, `"seconds"`},
		{"contention?seconds=-5", 400, `"seconds"`},
		{"contention?seconds=abc", 400, `"seconds"`},
		{"contention?seconds=1.5", 400, `"seconds"`},
		{"contention?seconds=99999999999999", 400, `"seconds"`},
		{"contention?seconds=1&seconds=2", 400, "2 times"},
		{"hold?debug=2", 400, `"debug"`},
		{"hold?debug=x", 400, `"debug"`},
		{"hold?gc=1", 400, `unknown parameter "gc"`},
		{"held?seconds=5", 400, "snapshot"},
		{"trylock?a=1;b=2", 400, "bad query"},
		{"?format=xml", 400, `"format"`},
		{"?seconds=5", 400, `unknown parameter "seconds"`},
		{"mutex", 404, `unknown profile "mutex"`},
	} {
		resp, body := get(t, srv.URL+Prefix+c.path)
		if resp.StatusCode != c.code || !strings.Contains(string(body), c.msg) {
			t.Errorf("GET %s: %s %q, want %d and a message with %s", c.path, resp.Status, body, c.code, c.msg)
		}
	}
	resp, err := http.Post(srv.URL+Prefix+"hold", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s, want 405", resp.Status)
	}
}

func TestHandlerSecondsLongerThanWriteTimeoutIsRefused(t *testing.T) {
	mux := http.NewServeMux()
	Register(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.WriteTimeout = 2 * time.Second
	srv.Start()
	defer srv.Close()
	resp, body := get(t, srv.URL+Prefix+"contention?seconds=2")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "WriteTimeout") {
		t.Errorf("%s %q, want 400 about WriteTimeout", resp.Status, body)
	}
}

func TestHandlerSecondsServesOnlyWhatHappenedMeanwhile(t *testing.T) {
	var before, during debugmutex.Mutex
	debugmutex.SetName(&before, "handler.before")
	debugmutex.SetName(&during, "handler.delta")
	contendNamed(&before, "handler.before")

	began := make(chan struct{})
	hook := func() { close(began) }
	deltaBegan.Store(&hook)
	defer deltaBegan.Store(nil)

	srv := newServer(t)
	type result struct {
		resp *http.Response
		body []byte
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get(srv.URL + Prefix + "contention?seconds=1")
		if err != nil {
			res <- result{}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{resp, body}
	}()
	<-began
	contendNamed(&during, "handler.delta")
	r := <-res
	if r.resp == nil || r.resp.StatusCode != 200 {
		t.Fatalf("delta request failed: %+v", r)
	}
	p, err := profile.ParseData(r.body)
	if err != nil {
		t.Fatal(err)
	}
	checkValid(t, p)
	if p.DurationNanos != int64(time.Second) {
		t.Errorf("DurationNanos %d, want 1s", p.DurationNanos)
	}
	var sawDuring bool
	for _, s := range p.Sample {
		switch s.Label["lock"][0] {
		case "handler.before":
			t.Errorf("the delta has the contention from before it began: %v", s.Value)
		case "handler.delta":
			sawDuring = s.Value[0] == 1
		}
	}
	if !sawDuring {
		t.Errorf("the delta does not have exactly the one contention made during it:\n%s", p)
	}
}

func TestHandlerDebugTextShowsLabelsAndStacks(t *testing.T) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "handler.text")
	_, _ = parkHolding(t, &mu, "handler.text")
	srv := newServer(t)
	resp, body := get(t, srv.URL+Prefix+"held?debug=1")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("%s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	text := string(body)
	for _, want := range []string{"sample types: locks/count age/nanoseconds", "lock=handler.text", "mode=write", "goroutine=", "profiler.lockInlined", "accuracy_test.go:"} {
		if !strings.Contains(text, want) {
			t.Errorf("debug=1 text lacks %q:\n%s", want, text)
		}
	}
}

func TestIndexPageListsHeldLocksWaitersAndWorstLocks(t *testing.T) {
	var held, waited debugmutex.Mutex
	debugmutex.SetName(&held, "index.<held>")
	debugmutex.SetName(&waited, "index.waited")
	// A waiter, blocked on the parked lock until the test ends (cleanups
	// run last first: the holder lets go, then the waiter is waited for).
	waiterDone := make(chan struct{})
	t.Cleanup(func() { <-waiterDone })
	parkHolding(t, &held, "index.<held>")
	go func() { held.Lock(); held.Unlock(); close(waiterDone) }()
	for !hasWaiter("index.<held>") {
		<-time.After(time.Millisecond) // polling for the waiter to block
	}
	contendNamed(&waited, "index.waited")

	srv := newServer(t)
	resp, body := get(t, srv.URL+Prefix)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	page := string(body)
	for _, want := range []string{
		`<h2 id="held">Held now`, "index.&lt;held&gt;", // escaped
		`<h2 id="waiting">Waiting now`, `<h2 id="locks">Worst locks`, "index.waited",
		`href="contention?debug=1"`, "go tool pprof " + srv.URL + Prefix + "contention?seconds=30",
		"go tool pprof " + srv.URL + Prefix + "held</code>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("index page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "index.<held>") {
		t.Errorf("index page has a script or an unescaped name")
	}
}

func hasWaiter(name string) bool {
	for _, w := range inspect.Snapshot().Waiting {
		if w.Lock.Name == name {
			return true
		}
	}
	return false
}

// contendNamed makes one contended acquisition of mu, named name.
func contendNamed(mu *debugmutex.Mutex, name string) {
	mu.Lock()
	done := make(chan struct{})
	go func() { mu.Lock(); mu.Unlock(); close(done) }()
	for !hasWaiter(name) {
		<-time.After(time.Millisecond) // polling for the waiter to block
	}
	mu.Unlock()
	<-done
}

func TestIndexJSONHasExactlyTheShapeLockscopeTopReads(t *testing.T) {
	var held debugmutex.Mutex
	debugmutex.SetName(&held, "json.held")
	parkHolding(t, &held, "json.held")
	srv := newServer(t)
	resp, body := get(t, srv.URL+Prefix+"?format=json")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatal(err)
	}
	if len(top) != 5 || top["time"] == nil || top["reports"] == nil || top["held"] == nil || top["waiting"] == nil || top["locks"] == nil {
		t.Fatalf("keys %v, want exactly time, reports, held, waiting, locks", keys(top))
	}
	// What cmd/lockscope's top decodes, field by field.
	var v struct {
		Time    time.Time         `json:"time"`
		Reports []report.Report   `json:"reports"`
		Held    []report.Holding  `json:"held"`
		Waiting []report.Waiting  `json:"waiting"`
		Locks   []report.LockStat `json:"locks"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if v.Time.IsZero() || v.Waiting == nil || v.Locks == nil {
		t.Errorf("time unset or lists null: %s", body)
	}
	found := false
	for _, h := range v.Held {
		found = found || h.Lock.Name == "json.held" && h.Mode == report.Write && h.Goroutine > 0 && h.Site.Line > 0
	}
	if !found {
		t.Errorf("json.held not among the held locks: %s", body)
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPprofReadsTheHandlerOverHTTP(t *testing.T) {
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "http.pprof")
	contendNamed(&mu, "http.pprof")
	srv := newServer(t)
	// go tool pprof saves what it fetched under $PPROF_TMPDIR.
	tmp := t.TempDir()
	t.Setenv("PPROF_TMPDIR", tmp)
	out := pprof(t, "-top", "-sample_index=contentions", tagFocus("http.pprof"), srv.URL+Prefix+"contention")
	if !strings.Contains(out, "Type: contentions") || !strings.Contains(out, "profiler.contendNamed.func1") {
		t.Errorf("go tool pprof over HTTP:\n%s", out)
	}
	saved, _ := filepath.Glob(filepath.Join(tmp, "pprof.*"))
	if len(saved) == 0 {
		t.Errorf("go tool pprof saved nothing in PPROF_TMPDIR")
	}
}

func TestPprofRendersTheGraphView(t *testing.T) {
	if _, err := exec.LookPath("dot"); err != nil {
		// Only pprof's graph view needs graphviz (its flame graph does not).
		// CI installs it, so there its absence is a failure.
		if os.Getenv("CI") != "" {
			t.Fatalf("graphviz's dot is not installed, and CI must run this test (.ci/run installs graphviz): %v", err)
		}
		t.Skipf("skipped: pprof's graph view (-svg) needs graphviz's dot, which is not installed (%v); apt-get install graphviz to run it here, CI runs it", err)
	}
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "svg.mu")
	contendNamed(&mu, "svg.mu")
	for _, name := range []string{Contention, Hold} {
		path := writeTemp(t, name)
		svg := filepath.Join(t.TempDir(), name+".svg")
		pprof(t, "-svg", "-output="+svg, tagFocus("svg.mu"), path)
		data, err := os.ReadFile(svg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte("<svg")) || !bytes.Contains(data, []byte("contendNamed")) {
			t.Errorf("%s: the SVG has no graph of contendNamed (%d bytes)", name, len(data))
		}
	}
}

func TestLoopbackUnlessToldOtherwise(t *testing.T) {
	for in, want := range map[string]string{
		":6060":          "127.0.0.1:6060",
		":0":             "127.0.0.1:0",
		"localhost:6060": "localhost:6060",
		"0.0.0.0:6060":   "0.0.0.0:6060",
		"[::1]:6060":     "[::1]:6060",
	} {
		got, err := loopbackDefault(in)
		if err != nil || got != want {
			t.Errorf("loopbackDefault(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if err := ListenAndServe("6060"); err == nil || !strings.Contains(err.Error(), "6060") {
		t.Errorf("ListenAndServe(\"6060\") = %v, want an error about the address", err)
	}
}
