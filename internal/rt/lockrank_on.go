//go:build lockscope_lockrank

package rt

import (
	"fmt"
	"sync"
)

// LockrankOn: the lockscope_lockrank build tag is set: every acquisition of
// a ranked mutex is checked against the ranks the goroutine holds.
const LockrankOn = true

var (
	rankMu   sync.Mutex
	rankHeld = map[int64][]int{}
)

func rankAcquire(r int) {
	id := CurGoid()
	rankMu.Lock()
	held := rankHeld[id]
	if n := len(held); n > 0 && held[n-1] >= r {
		rankMu.Unlock()
		panic(fmt.Sprintf("lockscope: lock rank violation: %s (rank %d) taken while holding %s (rank %d)",
			rankNames[r], r, rankNames[held[n-1]], held[n-1]))
	}
	rankHeld[id] = append(held, r)
	rankMu.Unlock()
}

func rankRelease(r int) {
	id := CurGoid()
	rankMu.Lock()
	held := rankHeld[id]
	for i := len(held) - 1; i >= 0; i-- {
		if held[i] == r {
			held = append(held[:i], held[i+1:]...)
			break
		}
	}
	if len(held) == 0 {
		delete(rankHeld, id)
	} else {
		rankHeld[id] = held
	}
	rankMu.Unlock()
}
