package rewrite

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
	got := string(DeclNames("store.go", []byte(src)))
	if !strings.HasPrefix(got, src+"\n") {
		t.Fatalf("the source before the added lines changed:\n%s", got)
	}
	want := `func init() { sync.SetName(&mu, "store.mu"); sync.SetName(&other, "store.other"); sync.SetName(&table, "store.table"); sync.SetName(&stats.RWMutex, "store.stats"); sync.SetName(&stats.mu, "store.stats.mu") }`
	if added := strings.TrimSpace(got[len(src):]); added != want {
		t.Errorf("added:\n%s\nwant:\n%s", added, want)
	}
	dot := "package p\n\nimport . \"github.com/lockscope/lockscope/debugmutex\"\n\nvar M Mutex\n"
	if got := string(DeclNames("p.go", []byte(dot))); !strings.HasSuffix(got, "func init() { SetName(&M, \"p.M\") }\n") {
		t.Errorf("dot import:\n%s", got)
	}
	none := "package p\n\nimport sync \"github.com/lockscope/lockscope/debugmutex\"\n\nfunc f() { var mu sync.Mutex; mu.Lock() }\n"
	if got := string(DeclNames("p.go", []byte(none))); got != none {
		t.Errorf("a file without package-level locks changed:\n%s", got)
	}
}
