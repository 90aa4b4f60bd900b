// Program cache embeds sync.RWMutex in a struct and uses the promoted
// methods, as much Go code does.
package main

import (
	"fmt"
	"sync"
)

type cache struct {
	sync.RWMutex
	m map[string]int
}

func (c *cache) get(k string) (int, bool) {
	c.RLock()
	defer c.RUnlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *cache) put(k string, v int) {
	c.Lock()
	c.m[k] = v
	c.Unlock()
}

func main() {
	c := &cache{m: map[string]int{}}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.put(fmt.Sprint(i), i)
			c.get("0")
		}()
	}
	wg.Wait()
	if c.TryLock() {
		c.Unlock()
	}
	v, _ := c.get("7")
	fmt.Println(len(c.m), v)
}
