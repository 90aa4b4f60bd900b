// Command message is the classic WaitGroup-and-Mutex tutorial: two
// goroutines set a shared message, each under a mutex passed to it by
// pointer, and main waits for both with a WaitGroup. It is correct (run it
// with -race too), so lockscope stays silent: no report on stderr, none in
// LOCKSCOPE_REPORT_FILE.
//
// Run it with:
//
//	go run ./examples/message
//
// It prints the final message (either one: the goroutines race to set it,
// harmlessly) and what lockscope saw. It exits 0.
package main

import (
	"fmt"

	sync "github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
)

var msg string

// updateMessage sets msg under m. The mutex is passed by pointer: a copy
// would be a different lock (go vet's copylocks check catches that).
func updateMessage(s string, m *sync.Mutex, wg *sync.WaitGroup) {
	defer wg.Done()
	m.Lock()
	msg = s
	m.Unlock()
}

func main() {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	sync.SetName(&mu, "msg.mu")
	msg = "Hello, world!"

	wg.Add(2)
	go updateMessage("Hello, universe!", &mu, &wg)
	go updateMessage("Hello, cosmos!", &mu, &wg)
	wg.Wait()

	mu.Lock()
	fmt.Println("message:", msg)
	mu.Unlock()

	for _, s := range inspect.LockStats() {
		if s.Lock == "msg.mu" {
			fmt.Printf("%s: %d acquisitions, %d contentions\n", s.Lock, s.Acquisitions, s.Contentions)
		}
	}
	fmt.Printf("reports: %d\n", len(inspect.Reports()))
}
