// Program counter uses Mutex, RWMutex, WaitGroup (Add/Done/Wait/Go), Once,
// OnceFunc, OnceValue, OnceValues and Locker from package sync.
package main

import (
	"fmt"
	"sync"
)

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) inc() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
}

func main() {
	var c counter
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				c.inc()
			}
		}()
	}
	wg.Go(func() { c.inc() })
	wg.Wait()

	var rw sync.RWMutex
	var l sync.Locker = rw.RLocker()
	l.Lock()
	ok := rw.TryRLock()
	rw.RUnlock()
	l.Unlock()

	var once sync.Once
	inits := 0
	for i := 0; i < 3; i++ {
		once.Do(func() { inits++ })
	}
	f := sync.OnceFunc(func() { inits++ })
	f()
	f()
	v := sync.OnceValue(func() int { return 42 })
	a, b := sync.OnceValues(func() (int, error) { return 7, nil })()
	fmt.Println(c.n, ok, inits, v(), a, b)
}
