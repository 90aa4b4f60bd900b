package main

import (
	"strings"
	"testing"
)

func TestDeclNames(t *testing.T) {
	src := `package store

import (
	sync "github.com/lockscope/lockscope/debugmutex"
)

var (
	mu, other sync.Mutex
	table     sync.RWMutex
	copied    = sync.Mutex{}
	_         sync.Mutex
)

var stats struct {
	sync.RWMutex
	hits int
	mu   sync.Mutex
}

type Cache struct{ mu sync.Mutex }

func f() { var local sync.Mutex; _ = &local }`
	got := string(declNames("store.go", []byte(src)))
	if !strings.HasPrefix(got, src+"\n") {
		t.Fatalf("the source before the added lines changed:\n%s", got)
	}
	want := `func init() { sync.SetName(&mu, "store.mu"); sync.SetName(&other, "store.other"); sync.SetName(&table, "store.table"); sync.SetName(&stats.RWMutex, "store.stats"); sync.SetName(&stats.mu, "store.stats.mu") }`
	if added := strings.TrimSpace(got[len(src):]); added != want {
		t.Errorf("added:\n%s\nwant:\n%s", added, want)
	}
	dot := "package p\n\nimport . \"github.com/lockscope/lockscope/debugmutex\"\n\nvar M Mutex\n"
	if got := string(declNames("p.go", []byte(dot))); !strings.HasSuffix(got, "func init() { SetName(&M, \"p.M\") }\n") {
		t.Errorf("dot import:\n%s", got)
	}
	none := "package p\n\nimport sync \"github.com/lockscope/lockscope/debugmutex\"\n\nfunc f() { var mu sync.Mutex; mu.Lock() }\n"
	if got := string(declNames("p.go", []byte(none))); got != none {
		t.Errorf("a file without package-level locks changed:\n%s", got)
	}
}

// TestLockLockedInAClosureIsNamedByItsVariable: the engine cannot name a
// lock first locked in a function literal from the site; its declaration
// names it.
func TestLockLockedInAClosureIsNamedByItsVariable(t *testing.T) {
	mod := t.TempDir()
	writeTree(t, mod, map[string]string{
		"go.mod": "module example.com/named\n\ngo 1.22\n",
		"named_test.go": `package named

import (
	"sync"
	"testing"
)

var ledgerMu sync.Mutex

var stats struct {
	sync.Mutex
	n int
}

func TestLeak(t *testing.T) {
	done := make(chan struct{})
	go func() { ledgerMu.Lock(); close(done) }()
	<-done
	done = make(chan struct{})
	go func() { stats.Lock(); close(done) }()
	<-done
}
`,
	})
	r := lockscope(t, mod, []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot}, "test", "-count=1", ".")
	for _, want := range []string{"LOCKSCOPE: Mutex named.ledgerMu has been", "LOCKSCOPE: Mutex named.stats has been"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("no report naming the lock by its declaration (%q):\n%s", want, r.stderr)
		}
	}
}

func TestHelpSwapSaysHowToRequireAnUnpublishedModule(t *testing.T) {
	r := lockscope(t, t.TempDir(), nil, "help", "swap")
	for _, want := range []string{"-replace=github.com/lockscope/lockscope=/path/to/lockscope", "go mod tidy"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("lockscope help swap: exit %d, lacks %q:\n%s", r.code, want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "go get") && !strings.Contains(r.stdout, "go get cannot fetch it") {
		t.Errorf("lockscope help swap still says go get:\n%s", r.stdout)
	}
}
