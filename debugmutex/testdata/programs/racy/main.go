// Program racy protects a counter with a mutex in one goroutine only: a
// real data race that the race detector must still report.
package main

import (
	"fmt"
	"sync"
)

func main() {
	var mu sync.Mutex
	n := 0
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		mu.Lock()
		n++
		mu.Unlock()
	}()
	go func() {
		defer wg.Done()
		n++ // no lock: racy
	}()
	wg.Wait()
	fmt.Println(n)
}
