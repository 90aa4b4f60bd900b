//go:build lockscope_lockrank

package debugmutex

import (
	"strings"
	"testing"

	"github.com/lockscope/lockscope/internal/rt"
)

// Under the lockscope_lockrank tag, taking lockscope's locks out of their
// written order panics (so the whole test suite, run with the tag, checks
// the order on every path it exercises).
func TestLockRankViolationPanics(t *testing.T) {
	var graph rt.RankedMutex[rt.RGraph]
	var wait rt.RankedRWMutex[rt.RWait]
	defer func() {
		r, _ := recover().(string)
		if !strings.Contains(r, "lock rank violation: waitMu") {
			t.Fatalf("recovered %q, want a rank violation", r)
		}
	}()
	graph.Lock()
	defer graph.Unlock()
	wait.RLock() // waitMu ranks below graphMu: a violation
	t.Fatal("no panic")
}

func TestLockRankInOrderIsAllowed(t *testing.T) {
	var wait rt.RankedRWMutex[rt.RWait]
	var graph rt.RankedMutex[rt.RGraph]
	wait.Lock()
	graph.Lock()
	graph.Unlock()
	wait.Unlock()
}
