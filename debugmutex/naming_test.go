package debugmutex

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/report"
)

// writeSource writes src as dir/name and returns its path.
func writeSource(t *testing.T, dir, name, src string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// lineOf returns the number of the only line of path that ends in marker.
func lineOf(t *testing.T, path, marker string) int {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(string(src), "\n") {
		if strings.HasSuffix(l, marker) {
			if line != 0 {
				t.Fatalf("%s: marker %q on lines %d and %d", path, marker, line, i+1)
			}
			line = i + 1
		}
	}
	if line == 0 {
		t.Fatalf("%s: no marker %q", path, marker)
	}
	return line
}

const namingSrc = `package cache

import (
	"context"
	"sync"

	"github.com/lockscope/lockscope/debugmutex"
	lsync "github.com/lockscope/lockscope/debugmutex"
	"example.com/other"
	"gopkg.in/yaml.v3"
	"example.com/mod/v2"
)

var serviceMu sync.Mutex

var (
	cfg struct {
		mu sync.RWMutex
		n  int
	}
	locks [4]sync.Mutex
)

type DB struct {
	metalock sync.Mutex
	mmaplock sync.RWMutex
	inner    struct{ a struct{ b sync.Mutex } }
	shards   []struct{ mu sync.Mutex }
}

type HitCounter struct {
	sync.Mutex
	n int
}

type Cache[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

type Pair struct {
	hits HitCounter
}

type Tx struct {
	db    *DB
	other other.Thing
	Base
	node  *Node[string]
	cache Cache[string, int]
}

func (tx *Tx) close() {
	tx.db.metalock.Lock() // L-field-type
	tx.db.inner.a.b.Lock() // L-field-type-chain
	tx.other.mu.Lock() // L-field-qualified
	tx.Base.mu.Lock() // L-field-embedded
	tx.mu.Lock() // L-field-promoted
	tx.node.mu.Lock() // L-field-generic
	tx.cache.mu.Lock() // L-field-generic-value
	tx.b.db.statlock.Lock() // L-field-unknown
	tx.db.shards[1].mu.Lock() // L-field-index
}

func (b *batch) run() {
	b.db.mmaplock.Lock() // L-field-other-file
}

func (db *DB) beginTx() {
	db.metalock.Lock() // L-recv-field
	db.mmaplock.RLock() // L-recv-rlock
	defer db.mmaplock.RUnlock() // L-unlock
	if db.metalock.TryLock() { // L-trylock
	}
	if !db.mmaplock.TryRLock() { // L-tryrlock
	}
	db.inner.a.b.Lock() // L-recv-chain
	db.mmaplock.RLocker().Lock() // L-rlocker
	for i := range db.shards {
		db.shards[i].mu.Lock() // L-index
	}
	db.shards[0].mu.Lock() // L-index-lit
	(*db).metalock.Lock() // L-star
	db.metalock.Lock(); db.metalock.Unlock() // L-same-twice
	db.metalock.Lock(); db.mmaplock.Lock() // L-two-locks
	db.sync() // L-not-a-lock
	db.get().mu.Lock() // L-call-in-chain
	l := db.mmaplock.RLocker()
	l.Lock() // L-alias-rlocker
	p := &db.metalock
	p.Lock() // L-alias-addr
	go func() {
		db.metalock.Lock() // L-closure
	}()
}

func (db *DB) withLocal() {
	var mu sync.Mutex
	go func() {
		mu.Lock() // L-method-local
	}()
}

type logFile struct {
	lock sync.Mutex
}

type Registry struct {
	files  map[string]*logFile
	counts map[string]HitCounter
	byName map[string]*sync.Mutex
	tx     *Tx
}

func (r *Registry) get(id string, v any) {
	r.files[id].lock.Lock() // L-map-field-elem
	lf := r.files[id]
	lf.lock.Lock() // L-map-local
	if lf2, ok := r.files[id]; ok {
		lf2.lock.Lock() // L-map-local-ok
	}
	for _, f := range r.files {
		f.lock.Lock() // L-map-range
	}
	db := r.tx.db
	db.metalock.Lock() // L-local-copy-of-field
	r.counts[id].Lock() // L-map-embedded
	name := id
	r.byName[name].Lock() // L-map-of-mutexes
	d, _ := v.(*DB)
	d.metalock.Lock() // L-typeassert
}

func twice() {
	for range 2 {
		a := new(sync.Mutex)
		a.Lock() // L-redeclared-1
	}
	for range 2 {
		a := new(sync.Mutex)
		a.Lock() // L-redeclared-2
	}
}

func closeAll(files []*logFile) {
	files[0].lock.Lock() // L-slice-param
}

func (db DB) value() {
	db.metalock.Lock() // L-value-recv
}

func (c *Cache[K, V]) Get(k K) V {
	c.mu.RLock() // L-generic
	defer c.mu.RUnlock()
	return c.m[k]
}

func (c *HitCounter) Inc() {
	c.Lock() // L-embedded
	c.n++
	c.Unlock()
}

func (p *Pair) Inc() {
	p.hits.Lock() // L-embedded-field
}

func handle(ctx context.Context, db *DB, q *other.Thing, mu *sync.Mutex, unknown interface{ M() }) {
	serviceMu.Lock() // L-pkg-var
	cfg.mu.RLock() // L-pkg-var-field
	locks[2].Lock() // L-pkg-array
	otherMu.Lock() // L-pkg-var-other-file
	other.Mu.Lock() // L-import
	lsync.Registry.Lock() // L-import-named
	yaml.Mu.Lock() // L-import-gopkg
	mod.Mu.Lock() // L-import-major
	db.mmaplock.Lock() // L-param
	q.mu.Lock() // L-param-qualified
	mu.Lock() // L-param-mutex
	debugmutex.LockContext(ctx, &db.metalock) // L-lockcontext
	sync.LockContext(ctx, &serviceMu) // L-lockcontext-sync
	lsync.TryLockContext(ctx, db.mmaplock.RLocker()) // L-trylockcontext
	LockContext(ctx, &cfg.mu) // L-lockcontext-dot
	debugmutex.LockContext(ctx, // L-lockcontext-multiline
		&db.mmaplock)
	debugmutex.LockContext(ctx, mu) // L-lockcontext-plain
	db.
		metalock.Lock() // L-multiline-call
	_ = unknown
}

func locals(ctx context.Context, get func() *DB) {
	a := &DB{}
	a.metalock.Lock() // L-local-addr
	var b DB
	b.metalock.Lock() // L-local-var
	c := new(DB)
	c.metalock.Lock() // L-local-new
	d := DB{}
	d.metalock.Lock() // L-local-lit
	var e = &other.Thing{}
	e.mu.Lock() // L-local-qualified
	f := get()
	f.metalock.Lock() // L-local-unknown
	var mu sync.Mutex
	mu.Lock() // L-local-mutex
	var pm *sync.Mutex = &mu
	pm.Lock() // L-local-mutex-ptr
	nm := new(sync.Mutex)
	nm.Lock() // L-local-mutex-new
	hc := &HitCounter{}
	hc.Lock() // L-local-embedded
	{
		serviceMu := &sync.Mutex{}
		serviceMu.Lock() // L-shadowed
	}
	serviceMu.Lock() // L-unshadowed
	for _, x := range []*DB{a} {
		x.metalock.Lock() // L-range
	}
	if g := (&DB{}); g != nil {
		g.metalock.Lock() // L-if-init
	}
	var v any = a
	switch w := v.(type) {
	case *DB:
		w.metalock.Lock() // L-typeswitch
	case *HitCounter, *Pair:
		w.Lock() // L-typeswitch-multi
	}
	func(h *HitCounter) {
		h.Lock() // L-funclit-param
	}(hc)
	a = get()
	a.metalock.Lock() // L-reassigned
}

var initFn = func() {
	serviceMu.Lock() // L-init-closure
}
`

const namingOtherSrc = `package cache

import "sync"

var otherMu sync.Mutex

type batch struct {
	db *DB
}

type Base struct {
	mu sync.Mutex
}

type Node[K any] struct {
	mu sync.Mutex
	k  K
}
`

const namingExtSrc = `package cache_test

import "sync"

var extMu sync.Mutex
`

func TestLockLabel(t *testing.T) {
	dir := t.TempDir()
	path := writeSource(t, dir, "cache.go", namingSrc)
	writeSource(t, dir, "other.go", namingOtherSrc)
	writeSource(t, dir, "ext_test.go", namingExtSrc)
	writeSource(t, dir, "broken.go", "package cache\n\nfunc {")

	const pkg = "example.com/cache."
	for _, tc := range []struct {
		marker, function, want string
	}{
		{"L-recv-field", "(*DB).beginTx", "DB.metalock"},
		{"L-recv-rlock", "(*DB).beginTx", "DB.mmaplock"},
		{"L-unlock", "(*DB).beginTx", ""},
		{"L-trylock", "(*DB).beginTx", "DB.metalock"},
		{"L-tryrlock", "(*DB).beginTx", "DB.mmaplock"},
		{"L-recv-chain", "(*DB).beginTx", "DB.inner.a.b"},
		{"L-rlocker", "(*DB).beginTx", "DB.mmaplock"},
		{"L-index", "(*DB).beginTx", "DB.shards[i].mu"},
		{"L-index-lit", "(*DB).beginTx", "DB.shards[0].mu"},
		{"L-star", "(*DB).beginTx", "DB.metalock"},
		{"L-same-twice", "(*DB).beginTx", "DB.metalock"},
		{"L-two-locks", "(*DB).beginTx", ""},
		{"L-not-a-lock", "(*DB).beginTx", ""},
		{"L-call-in-chain", "(*DB).beginTx", ""},
		{"L-alias-rlocker", "(*DB).beginTx", "DB.mmaplock"},
		{"L-alias-addr", "(*DB).beginTx", "DB.metalock"},
		{"L-closure", "(*DB).beginTx.func1", "DB.metalock"},
		{"L-closure", "(*DB).beginTx.gowrap1", "DB.metalock"},
		// A closure of beginTx inlined into handle.
		{"L-closure", "handle.(*DB).beginTx.func2", "DB.metalock"},
		{"L-generic", "handle.(*Cache[...]).Get", ""},
		{"L-value-recv", "DB.value", "DB.metalock"},
		{"L-generic", "(*Cache[...]).Get", "Cache.mu"},
		{"L-generic", "(*Cache[go.shape.string,go.shape.int]).Get", "Cache.mu"},
		{"L-embedded", "(*HitCounter).Inc", "HitCounter"},
		{"L-embedded-field", "(*Pair).Inc", "Pair.hits"},
		{"L-field-type", "(*Tx).close", "DB.metalock"},
		{"L-field-type-chain", "(*Tx).close", "DB.inner.a.b"},
		{"L-field-qualified", "(*Tx).close", "Tx.other.mu"},
		{"L-field-embedded", "(*Tx).close", "Base.mu"},
		{"L-field-promoted", "(*Tx).close", "Tx.mu"},
		{"L-field-generic", "(*Tx).close", "Node.mu"},
		{"L-field-generic-value", "(*Tx).close", "Cache.mu"},
		{"L-field-unknown", "(*Tx).close", "Tx.b.db.statlock"},
		{"L-field-index", "(*Tx).close", "DB.shards[1].mu"},
		{"L-field-other-file", "(*batch).run", "DB.mmaplock"},
		{"L-pkg-var", "handle", "cache.serviceMu"},
		{"L-pkg-var-field", "handle", "cache.cfg.mu"},
		{"L-pkg-array", "handle", "cache.locks[2]"},
		{"L-pkg-var-other-file", "handle", "cache.otherMu"},
		{"L-import", "handle", "other.Mu"},
		{"L-import-named", "handle", "lsync.Registry"},
		{"L-import-gopkg", "handle", "yaml.Mu"},
		{"L-import-major", "handle", "mod.Mu"},
		{"L-param", "handle", "DB.mmaplock"},
		{"L-param-qualified", "handle", "Thing.mu"},
		{"L-param-mutex", "handle", ""},
		{"L-lockcontext", "handle", "DB.metalock"},
		{"L-lockcontext-sync", "handle", "cache.serviceMu"},
		{"L-trylockcontext", "handle", "DB.mmaplock"},
		{"L-lockcontext-dot", "handle", "cache.cfg.mu"},
		{"L-lockcontext-multiline", "handle", "DB.mmaplock"},
		{"L-lockcontext-plain", "handle", ""},
		{"L-multiline-call", "handle", "DB.metalock"},
		{"L-local-addr", "locals", "DB.metalock"},
		{"L-local-var", "locals", "DB.metalock"},
		{"L-local-new", "locals", "DB.metalock"},
		{"L-local-lit", "locals", "DB.metalock"},
		{"L-local-qualified", "locals", "Thing.mu"},
		{"L-local-unknown", "locals", ""},
		// A local mutex is its declaration: the class of every call's.
		{"L-local-mutex", "locals", "locals.mu"},
		{"L-local-mutex-ptr", "locals", ""},
		{"L-local-mutex-new", "locals", "locals.nm"},
		{"L-method-local", "(*DB).withLocal", "(*DB).withLocal.mu"},
		{"L-method-local", "(*DB).withLocal.func1", "(*DB).withLocal.mu"},
		// A field reached through a local, a map value or a slice element
		// is its field.
		{"L-map-field-elem", "(*Registry).get", "logFile.lock"},
		{"L-map-local", "(*Registry).get", "logFile.lock"},
		{"L-map-local-ok", "(*Registry).get", "logFile.lock"},
		{"L-map-range", "(*Registry).get", "logFile.lock"},
		{"L-slice-param", "closeAll", "logFile.lock"},
		{"L-local-copy-of-field", "(*Registry).get", "DB.metalock"},
		{"L-map-embedded", "(*Registry).get", "HitCounter"},
		{"L-map-of-mutexes", "(*Registry).get", "Registry.byName[name]"},
		{"L-typeassert", "(*Registry).get", "DB.metalock"},
		{"L-local-embedded", "locals", "HitCounter"},
		{"L-shadowed", "locals", "locals.serviceMu"},
		{"L-unshadowed", "locals", "cache.serviceMu"},
		{"L-range", "locals", "DB.metalock"},
		{"L-if-init", "locals", "DB.metalock"},
		{"L-typeswitch", "locals", "DB.metalock"},
		{"L-typeswitch-multi", "locals", ""},
		{"L-funclit-param", "locals.func1", "HitCounter"},
		// The declaration a := &DB{} types a, whatever is assigned later.
		{"L-reassigned", "locals", "DB.metalock"},
		{"L-init-closure", "init.func1", "cache.serviceMu"},
		{"L-init-closure", "glob..func1", "cache.serviceMu"},
		{"L-init-closure", "", "cache.serviceMu"},
		// The line is not in the function named: stale source, or another file.
		{"L-recv-field", "(*DB).commit", ""},
		{"L-recv-field", "beginTx", ""},
		{"L-recv-field", "(*Tx).beginTx", ""},
		{"L-value-recv", "(*DB).value", ""},
		{"L-pkg-var", "(*DB).handle", ""},
	} {
		f := report.Frame{File: path, Line: lineOf(t, path, "// "+tc.marker)}
		if tc.function != "" {
			f.Function = pkg + tc.function
		}
		if got := stacks.LockLabel(f); got != tc.want {
			t.Errorf("%s (%s, line %d): lockLabel = %q, want %q", tc.marker, tc.function, f.Line, got, tc.want)
		}
	}

	// The ext_test.go variable is another package's (cache_test).
	extDir := t.TempDir()
	p2 := writeSource(t, extDir, "a.go", "package cache\n\nfunc f() {\n\textMu.Lock()\n}\n")
	writeSource(t, extDir, "a_test.go", namingExtSrc)
	// Two declarations of one local name are two classes, told by line.
	for _, m := range []string{"L-redeclared-1", "L-redeclared-2"} {
		line := lineOf(t, path, "// "+m)
		want := fmt.Sprintf("twice.a@%d", line-1)
		if got := stacks.LockLabel(report.Frame{Function: pkg + "twice", File: path, Line: line}); got != want {
			t.Errorf("%s: lockLabel = %q, want %q", m, got, want)
		}
	}
	if got := stacks.LockLabel(report.Frame{Function: pkg + "f", File: p2, Line: 4}); got != "" {
		t.Errorf("variable of another package in the directory: %q, want \"\"", got)
	}
}

func TestLockLabelFallbacks(t *testing.T) {
	dir := t.TempDir()
	path := writeSource(t, dir, "cache.go", namingSrc)
	broken := writeSource(t, dir, "broken.go", "package cache\n\nfunc (db *DB) f() {\n\tdb.mu.Lock()\n")
	if err := os.Mkdir(filepath.Join(dir, "d.go"), 0o755); err != nil {
		t.Fatal(err)
	}
	notGo := writeSource(t, dir, "cache.txt", namingSrc)
	big := writeSource(t, dir, "big.go", "package cache\n\nfunc (db *DB) f() {\n\tdb.mu.Lock()\n}\n"+
		strings.Repeat("// padding\n", stacks.NamingMaxFileSize/10))
	line := lineOf(t, path, "// L-recv-field")
	for _, tc := range []struct {
		name string
		f    report.Frame
	}{
		{"missing file", report.Frame{Function: "example.com/cache.(*DB).beginTx", File: filepath.Join(dir, "missing.go"), Line: line}},
		{"directory", report.Frame{Function: "example.com/cache.(*DB).beginTx", File: filepath.Join(dir, "d.go"), Line: line}},
		{"no file", report.Frame{Function: "example.com/cache.(*DB).beginTx", Line: line}},
		{"autogenerated", report.Frame{Function: "example.com/cache.(*DB).Lock", File: "<autogenerated>", Line: 1}},
		{"line 0", report.Frame{Function: "example.com/cache.(*DB).beginTx", File: path, Line: 0}},
		{"negative line", report.Frame{Function: "example.com/cache.(*DB).beginTx", File: path, Line: -3}},
		{"line past the end", report.Frame{Function: "example.com/cache.(*DB).beginTx", File: path, Line: 100000}},
		{"unparsable file", report.Frame{Function: "example.com/cache.(*DB).f", File: broken, Line: 4}},
		{"not a Go file", report.Frame{Function: "example.com/cache.(*DB).beginTx", File: notGo, Line: line}},
		{"file too large", report.Frame{Function: "example.com/cache.(*DB).f", File: big, Line: 4}},
		{"blank line", report.Frame{Function: "example.com/cache.(*DB).beginTx", File: path, Line: 2}},
	} {
		if got := stacks.LockLabel(tc.f); got != "" {
			t.Errorf("%s: lockLabel(%+v) = %q, want \"\"", tc.name, tc.f, got)
		}
	}
}

// TestLockLabelConcurrent names from many goroutines at once (for -race),
// through more files than the cache keeps.
func TestLockLabelConcurrent(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i := range stacks.NamingMaxFiles + 44 {
		paths = append(paths, writeSource(t, dir, fmt.Sprintf("f%d.go", i), namingSrc))
	}
	line := lineOf(t, paths[0], "// L-recv-rlock")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range paths {
				p := paths[(i+g*37)%len(paths)]
				f := report.Frame{Function: "example.com/cache.(*DB).beginTx", File: p, Line: line}
				if got := stacks.LockLabel(f); got != "DB.mmaplock" {
					t.Errorf("%s: %q", p, got)
				}
			}
		})
	}
	wg.Wait()
	stacks.NamingMu.Lock()
	defer stacks.NamingMu.Unlock()
	if len(stacks.NamingFiles) > stacks.NamingMaxFiles || len(stacks.NamingOrder) != len(stacks.NamingFiles) || stacks.NamingBytes > stacks.NamingMaxBytes {
		t.Errorf("cache: %d files, %d in order, %d bytes", len(stacks.NamingFiles), len(stacks.NamingOrder), stacks.NamingBytes)
	}
}

// Locks of this file, named from their real frames.

type namingProbe struct {
	mu Mutex
}

var namingProbeMu Mutex

func (p *namingProbe) lock() report.Frame {
	p.mu.Lock()
	pc, file, line, _ := runtime.Caller(0)
	p.mu.Unlock()
	return report.Frame{Function: runtime.FuncForPC(pc).Name(), File: file, Line: line - 1}
}

type namingGenericProbe[T any] struct {
	mu RWMutex
	v  T
}

func (p *namingGenericProbe[T]) rlock() report.Frame {
	p.mu.RLock()
	pc, file, line, _ := runtime.Caller(0)
	p.mu.RUnlock()
	return report.Frame{Function: runtime.FuncForPC(pc).Name(), File: file, Line: line - 1}
}

func namingProbeClosure() report.Frame {
	var f report.Frame
	func() {
		namingProbeMu.Lock()
		pc, file, line, _ := runtime.Caller(0)
		namingProbeMu.Unlock()
		f = report.Frame{Function: runtime.FuncForPC(pc).Name(), File: file, Line: line - 1}
	}()
	return f
}

func TestLockLabelOwnSource(t *testing.T) {
	var p namingProbe
	var g namingGenericProbe[string]
	for _, tc := range []struct {
		f    report.Frame
		want string
	}{
		{p.lock(), "namingProbe.mu"},
		{g.rlock(), "namingGenericProbe.mu"},
		{namingProbeClosure(), "debugmutex.namingProbeMu"},
	} {
		if got := stacks.LockLabel(tc.f); got != tc.want {
			t.Errorf("lockLabel(%+v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

// TestLockLabelBbolt names bbolt's locks from its real source: a copy of
// go.etcd.io/bbolt@v1.5.0's db.go (MIT licence, testdata/naming).
func TestLockLabelBbolt(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "naming", "bbolt_db.go.txt"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "db.go") // lockLabel reads .go files only
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	if len(lines) < 801 || strings.TrimSpace(lines[800]) != "db.mmaplock.RLock()" {
		t.Fatalf("testdata db.go:801 is not db.mmaplock.RLock()")
	}
	for _, tc := range []struct {
		line int
		want string
	}{
		{801, "DB.mmaplock"},
		{796, "DB.metalock"},
		{805, ""}, // db.mmaplock.RUnlock()
	} {
		f := report.Frame{Function: "go.etcd.io/bbolt.(*DB).beginTx", File: path, Line: tc.line}
		if got := stacks.LockLabel(f); got != tc.want {
			t.Errorf("lockLabel(%+v) = %q, want %q", f, got, tc.want)
		}
	}
}

const namingOnceSrc = `package cfg

import (
	"sync"

	"github.com/lockscope/lockscope/debugmutex"
)

type Client struct {
	initOnce debugmutex.Once
	mu       sync.Mutex
	token    func() string
	sync.Once
}

var cfgOnce sync.Once

var loadConfig = debugmutex.OnceValue(func() int { return 1 })

func (c *Client) init() {
	c.initOnce.Do(c.load) // O-recv-field
	c.Do(c.load) // O-embedded
	c.mu.Lock(); c.initOnce.Do(c.load) // O-lock-and-do
	t := c.token() // F-field
}

func setup(c *Client) {
	cfgOnce.Do(func() {}) // O-pkg-var
	o := &c.initOnce
	o.Do(nil) // O-alias
	var local sync.Once
	local.Do(nil) // O-local
	n := loadConfig() // F-pkg-var
	m := loadConfig() + len(c.token()) // F-two
	get := debugmutex.OnceFunc(nil)
	get() // F-local
	getter()() // F-not-a-chain
	cfgOnce.Do(nil); loadConfig() // O-F-mixed
	c.initOnce.Do(nil, nil) // O-two-args
}
`

// A Once is named from its Do call, and the Once of a OnceFunc from the
// call of the function it returned; a Lock call on the same line is no
// part of either (and the other way round).
func TestCallLabelNamesOnces(t *testing.T) {
	path := writeSource(t, t.TempDir(), "cfg.go", namingOnceSrc)
	const pkg = "example.com/cfg."
	for _, tc := range []struct {
		marker, function string
		call             stacks.Call
		want             string
	}{
		{"O-recv-field", "(*Client).init", stacks.CallDo, "Client.initOnce"},
		{"O-recv-field", "(*Client).init", stacks.CallLock, ""},
		{"O-recv-field", "(*Client).init", stacks.CallFunc, ""}, // c.load is passed, not called
		{"O-embedded", "(*Client).init", stacks.CallDo, "Client"},
		{"O-lock-and-do", "(*Client).init", stacks.CallDo, "Client.initOnce"},
		{"O-lock-and-do", "(*Client).init", stacks.CallLock, "Client.mu"},
		{"F-field", "(*Client).init", stacks.CallFunc, "Client.token"},
		{"O-pkg-var", "setup", stacks.CallDo, "cfg.cfgOnce"},
		{"O-alias", "setup", stacks.CallDo, "Client.initOnce"},
		// A local Once is named by its declaration in the function.
		{"O-local", "setup", stacks.CallDo, "setup.local"},
		{"F-pkg-var", "setup", stacks.CallFunc, "cfg.loadConfig"},
		{"F-two", "setup", stacks.CallFunc, ""},
		{"F-local", "setup", stacks.CallFunc, ""},
		{"F-not-a-chain", "setup", stacks.CallFunc, ""},
		{"O-F-mixed", "setup", stacks.CallDo, "cfg.cfgOnce"},
		{"O-F-mixed", "setup", stacks.CallFunc, "cfg.loadConfig"},
		{"O-two-args", "setup", stacks.CallDo, ""},
		{"O-pkg-var", "(*Client).init", stacks.CallDo, ""}, // not the function named
	} {
		f := report.Frame{Function: pkg + tc.function, File: path, Line: lineOf(t, path, "// "+tc.marker)}
		if got := stacks.CallLabel(f, tc.call); got != tc.want {
			t.Errorf("%s (%s, call %d): label %q, want %q", tc.marker, tc.function, tc.call, got, tc.want)
		}
	}
}
