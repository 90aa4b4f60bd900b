// Program copyonce copies a Once: go vet's copylocks check must flag it.
package main

import (
	"fmt"
	"sync"
)

type config struct {
	once sync.Once
	name string
}

func show(c config) { fmt.Println(c.name) } // passes a Once by value

func main() {
	var c config
	c.once.Do(func() { c.name = "x" })
	show(c)
}
