package main

import (
	"strings"
	"testing"
)

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
