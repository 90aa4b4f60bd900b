// Command service is a small HTTP service with a hot lock: every request
// for /item/{key} goes through a cache whose single mutex is held while a
// missing item is fetched from the (slow) backend, so under load the
// requests queue on that lock. It mounts lockscope's profiler at
// /debug/locks/ (on 127.0.0.1 only) and, when the OpenTelemetry
// environment asks for it, exports lock waits and holds as spans through
// exporter/autoexport.
//
// Run it as a server:
//
//	go run ./examples/service
//
// It serves on 127.0.0.1:8080 (-addr). Put load on it from another
// terminal, with any HTTP load tool or with the example itself:
//
//	go run ./examples/service -load 3000 -target http://127.0.0.1:8080
//
// and look at its locks: http://127.0.0.1:8080/debug/locks/ in a browser
// (held locks, waiters, worst locks), or the profiles with pprof:
//
//	go tool pprof -top http://127.0.0.1:8080/debug/locks/contention
//	go tool pprof -http=127.0.0.1: http://127.0.0.1:8080/debug/locks/contention
//
// With -load N and no -target it serves on a free loopback port, sends
// itself N requests from -clients concurrent clients, prints the worst
// locks (from /debug/locks/?format=json) and the functions that waited
// longest (from /debug/locks/contention), and exits 0; -profile FILE also
// saves the contention profile for `go tool pprof`. The tests run it so.
//
// Its routes are traced with otelhttp: each request is a span, and a wait
// for cache.mu inside a request is a child span of it ("lockscope.wait
// cache.mu"), with no LockContext in the code. To see them in Jaeger, start
// one (.ci/jaeger.sh start, from the repository) and run with
//
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_SERVICE_NAME=service go run ./examples/service -load 3000
//
// then open a "GET /item/{key}" trace of the service in Jaeger's UI
// (http://127.0.0.1:16686).
//
// With -deadlock, two goroutines also deadlock on accounts.mu and ledger.mu
// at start (transfers in opposite directions), so that /debug/locks/ shows a
// deadlock report and its wait-for graph; the service goes on serving.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	sync "github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/exporter/autoexport"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/profiler"
)

// Cache keeps rendered items. It holds its lock while it fetches a missing
// item: simple, and the reason the lock is hot.
type Cache struct {
	mu    sync.Mutex
	items map[string][]byte
	order []string // insertion order, for eviction
	size  int
}

// Get returns the item for key, fetching it on a miss.
func (c *Cache) Get(key string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.items[key]; ok {
		return v
	}
	v := fetch(key) // slow, and every other request waits for it
	if len(c.order) >= c.size {
		delete(c.items, c.order[0])
		c.order = c.order[1:]
	}
	c.items[key] = v
	c.order = append(c.order, key)
	return v
}

// Keys returns the cached keys that start with prefix, sorted.
func (c *Cache) Keys(prefix string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []string
	for k := range c.items {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// fetch stands in for a call to the backend.
func fetch(key string) []byte {
	time.Sleep(200 * time.Microsecond)
	return []byte("item " + key + "\n")
}

// Stats counts requests. Its lock is held only for an increment.
type Stats struct {
	mu       sync.Mutex
	requests int
}

func (s *Stats) Inc() {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
}

func (s *Stats) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// server is the service's HTTP handlers.
type server struct {
	cache *Cache
	stats *Stats
}

// item serves GET /item/{key}.
func (s *server) item(w http.ResponseWriter, r *http.Request) {
	s.stats.Inc()
	w.Write(s.cache.Get(r.PathValue("key")))
}

// keys serves GET /keys?prefix=P.
func (s *server) keys(w http.ResponseWriter, r *http.Request) {
	s.stats.Inc()
	fmt.Fprintln(w, strings.Join(s.cache.Keys(r.FormValue("prefix")), "\n"))
}

// requests serves GET /stats.
func (s *server) requests(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "requests: %d\n", s.stats.Requests())
}

// newMux builds the service's routes, each traced by otelhttp (a span per
// request, named after the route), and the profiler's.
func newMux(s *server) *http.ServeMux {
	mux := http.NewServeMux()
	tp := otelhttp.WithTracerProvider(autoexport.TracerProvider())
	route := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, otelhttp.NewHandler(h, pattern, tp))
	}
	route("GET /item/{key}", s.item)
	route("GET /keys", s.keys)
	route("GET /stats", s.requests)
	profiler.Register(mux) // /debug/locks/
	return mux
}

// Account is a bank account for -deadlock.
type Account struct {
	mu      sync.Mutex
	balance int
}

// transfer moves n from one account to the other, locking the source first:
// two transfers in opposite directions can deadlock.
func transfer(from, to *Account, n int, both *sync.WaitGroup) {
	from.mu.Lock()
	defer from.mu.Unlock()
	both.Done()
	both.Wait() // each holds its source before taking the other: deadlock
	to.mu.Lock()
	defer to.mu.Unlock()
	from.balance -= n
	to.balance += n
}

// deadlock starts two transfers that deadlock, forever.
func deadlock() {
	accounts, ledger := &Account{balance: 100}, &Account{balance: 100}
	sync.SetName(&accounts.mu, "accounts.mu")
	sync.SetName(&ledger.mu, "ledger.mu")
	var both sync.WaitGroup
	both.Add(2)
	go transfer(accounts, ledger, 10, &both)
	go transfer(ledger, accounts, 20, &both)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (loopback unless a host is given)")
	load := flag.Int("load", 0, "send this many requests to the service itself, print the worst locks and exit")
	clients := flag.Int("clients", 8, "concurrent clients for -load")
	keys := flag.Int("keys", 200, "distinct keys for -load (the cache holds 64)")
	profOut := flag.String("profile", "", "with -load: also save the contention profile to this file")
	target := flag.String("target", "", "with -load: load the service at this URL instead of serving one")
	dead := flag.Bool("deadlock", false, "also deadlock two goroutines at start, to see it on /debug/locks/")
	flag.Parse()
	addrSet := false
	flag.Visit(func(f *flag.Flag) { addrSet = addrSet || f.Name == "addr" })
	defer autoexport.Stop(context.Background()) // flush spans, if exporting

	cache := &Cache{items: map[string][]byte{}, size: 64}
	stats := &Stats{}
	sync.SetName(&cache.mu, "cache.mu")
	sync.SetName(&stats.mu, "stats.mu")

	if *load > 0 && *target != "" {
		if err := runLoad(*target, *load, *clients, *keys); err != nil {
			log.Fatal(err)
		}
		if err := report(*target, *profOut); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *dead {
		deadlock()
	}
	if *load > 0 && !addrSet {
		*addr = "127.0.0.1:0" // a free port
	}
	ln, err := net.Listen("tcp", loopback(*addr))
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: newMux(&server{cache: cache, stats: stats})}
	go srv.Serve(ln)
	base := "http://" + ln.Addr().String()

	if *load == 0 {
		fmt.Printf("serving on %s\n", base)
		fmt.Printf("  items:    %s/item/42\n", base)
		fmt.Printf("  locks:    %s/debug/locks/\n", base)
		fmt.Printf("  profile:  go tool pprof -http=127.0.0.1: %s/debug/locks/contention\n", base)
		select {}
	}

	if err := runLoad(base, *load, *clients, *keys); err != nil {
		log.Fatal(err)
	}
	if err := report(base, *profOut); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	if e := autoexport.Exporter(); e != nil {
		e.Flush(ctx)
		s := e.Stats()
		// Spans counts lockscope's spans; the rest count the requests' spans
		// too, which share the exporter's pipeline.
		fmt.Printf("\nspans: %d of lock waits, holds and reports; of these and the requests' own, %d exported, %d failed, %d dropped\n",
			s.Spans, s.Exported, s.FailedSpans, s.DroppedSpans)
	}
	fmt.Printf("reports: %d\n", len(inspect.Reports()))
}

// loopback makes an address without a host listen on 127.0.0.1 only.
func loopback(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// runLoad sends n requests for random keys from c concurrent clients.
func runLoad(base string, n, c, keys int) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c}, Timeout: time.Minute}
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	start := time.Now()
	for i := range c {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for range n/c + btoi(i < n%c) {
				// Mostly items, some key listings, a few stats.
				var url string
				switch p := rng.IntN(100); {
				case p < 85:
					url = base + "/item/" + strconv.Itoa(rng.IntN(keys))
				case p < 95:
					url = base + "/keys?prefix=" + strconv.Itoa(rng.IntN(10))
				default:
					url = base + "/stats"
				}
				if err := get(client, url, io.Discard); err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("sent %d requests from %d clients in %v\n", n, c, time.Since(start).Round(time.Millisecond))
	return first
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func get(client *http.Client, url string, w io.Writer) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// report prints the worst locks and the functions that waited longest, as
// the profiler's HTTP endpoint serves them.
func report(base, profOut string) error {
	var buf bytes.Buffer
	if err := get(http.DefaultClient, base+"/debug/locks/?format=json", &buf); err != nil {
		return err
	}
	var ov profiler.Overview
	if err := json.Unmarshal(buf.Bytes(), &ov); err != nil {
		return err
	}
	fmt.Println("\nworst locks (/debug/locks/?format=json):")
	fmt.Printf("  %-10s %12s %12s %12s %12s\n", "lock", "acquired", "held", "contentions", "waited")
	for _, l := range ov.Locks[:min(len(ov.Locks), 5)] {
		fmt.Printf("  %-10s %12d %12v %12d %12v\n", l.Lock, l.Acquisitions,
			l.HoldTime.Round(time.Millisecond), l.Contentions, l.WaitTime.Round(time.Millisecond))
	}

	buf.Reset()
	if err := get(http.DefaultClient, base+profiler.Prefix+profiler.Contention, &buf); err != nil {
		return err
	}
	if profOut != "" {
		if err := os.WriteFile(profOut, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	p, err := profile.Parse(&buf)
	if err != nil {
		return err
	}
	delay := slices.IndexFunc(p.SampleType, func(st *profile.ValueType) bool { return st.Type == "delay" })
	if delay < 0 {
		return errors.New("contention profile has no delay sample type")
	}
	// Delay by the innermost function of each waiting stack.
	byFunc := map[string]int64{}
	for _, s := range p.Sample {
		if len(s.Location) == 0 || len(s.Location[0].Line) == 0 {
			continue
		}
		byFunc[s.Location[0].Line[0].Function.Name] += s.Value[delay]
	}
	type row struct {
		fn    string
		delay time.Duration
	}
	var rows []row
	for fn, d := range byFunc {
		rows = append(rows, row{fn, time.Duration(d)})
	}
	slices.SortFunc(rows, func(a, b row) int { return int(b.delay - a.delay) })
	fmt.Println("\nwhere requests waited (" + profiler.Prefix + profiler.Contention + "):")
	for _, r := range rows[:min(len(rows), 5)] {
		fmt.Printf("  %12v  %s\n", r.delay.Round(time.Millisecond), r.fn)
	}
	return nil
}
