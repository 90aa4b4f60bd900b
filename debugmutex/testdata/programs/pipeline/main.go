// Program pipeline uses Cond, NewCond, Pool and Map from package sync.
package main

import (
	"bytes"
	"fmt"
	"sync"
)

func main() {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	var queue []int
	done := make(chan int)
	go func() {
		sum := 0
		for i := 0; i < 100; i++ {
			mu.Lock()
			for len(queue) == 0 {
				cond.Wait()
			}
			sum += queue[0]
			queue = queue[1:]
			mu.Unlock()
		}
		done <- sum
	}()
	for i := 1; i <= 100; i++ {
		mu.Lock()
		queue = append(queue, i)
		mu.Unlock()
		cond.Signal()
	}
	sum := <-done

	pool := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	buf := pool.Get().(*bytes.Buffer)
	buf.WriteString("pooled")
	s := buf.String()
	buf.Reset()
	pool.Put(buf)

	var m sync.Map
	m.Store("a", 1)
	m.LoadOrStore("b", 2)
	n := 0
	m.Range(func(k, v any) bool { n += v.(int); return true })
	m.CompareAndSwap("a", 1, 10)
	v, _ := m.Load("a")
	m.Delete("b")
	m.Clear()
	var c sync.Cond
	c.L = &mu
	fmt.Println(sum, s, n, v)
}
