// Program copylock copies a locked mutex: go vet's copylocks check must
// flag it.
package main

import (
	"fmt"
	"sync"
)

type guarded struct {
	mu sync.Mutex
	n  int
}

func show(g guarded) { fmt.Println(g.n) } // passes a lock by value

func main() {
	var g guarded
	show(g)
}
