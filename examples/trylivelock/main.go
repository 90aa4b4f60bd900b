// Command trylivelock moves money between two accounts with a "deadlock
// free" transfer: lock the source, then TryLock the destination, and spin
// until it succeeds. Two transfers in opposite directions each lock their
// source and spin on the other's: neither blocks, so there is no deadlock
// for a wait-for graph (or the runtime) to see, and neither ever gets
// through. A livelock, burning CPU.
//
// lockscope counts the failed TryLocks: when each goroutine has failed
// TryLock of a lock the other holds, at a high rate, for a second, neither
// letting go of its own, it reports the livelock, naming both goroutines,
// the lock each holds and the one each spins on. main waits for the
// report, prints it briefly and stops the transfers.
//
// Run it with:
//
//	go run ./examples/trylivelock
//
// With -fixed, a transfer that fails its TryLock releases its source and
// retries (back-off): both transfers complete, and lockscope stays silent.
package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"runtime"
	"time"

	sync "github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// Account is a balance under a mutex.
type Account struct {
	mu      sync.Mutex
	name    string
	balance int
}

// transfer moves amount from one account to the other. Without back-off it
// holds from.mu while it spins on to.mu; stop ends the spin.
func transfer(from, to *Account, amount int, backoff bool, ready *sync.WaitGroup, stop <-chan struct{}) bool {
	from.mu.Lock()
	if ready != nil {
		ready.Done()
		ready.Wait() // both transfers hold their source: the bad interleaving
	}
	for !to.mu.TryLock() {
		select {
		case <-stop:
			from.mu.Unlock()
			return false
		default:
		}
		if backoff {
			from.mu.Unlock()
			time.Sleep(time.Millisecond)
			from.mu.Lock()
			continue
		}
		runtime.Gosched() // BUG (without -fixed): spins holding from.mu
	}
	from.balance -= amount
	to.balance += amount
	to.mu.Unlock()
	from.mu.Unlock()
	return true
}

func main() {
	fixed := flag.Bool("fixed", false, "release the source account when the destination is busy")
	flag.Parse()

	reported := make(chan report.Report, 1)
	inspect.OnReport(func(rep report.Report) {
		if rep.Kind == report.KindLivelock {
			select {
			case reported <- rep:
			default:
			}
		}
	})

	alice := &Account{name: "alice", balance: 100}
	bob := &Account{name: "bob", balance: 100}
	sync.SetName(&alice.mu, "Account[alice].mu")
	sync.SetName(&bob.mu, "Account[bob].mu")

	stop := make(chan struct{})
	done := make(chan bool, 2)
	var ready sync.WaitGroup
	ready.Add(2)
	start := time.Now()
	go func() { done <- transfer(alice, bob, 30, *fixed, &ready, stop) }()
	go func() { done <- transfer(bob, alice, 20, *fixed, &ready, stop) }()
	for n := 0; n < 2; n++ {
		select {
		case ok := <-done:
			fmt.Printf("transfer done: %v\n", ok)
		case rep := <-reported:
			fmt.Printf("lockscope reported a %s %.1fs after the transfers began\n", rep.Kind, time.Since(start).Seconds())
			explain(rep)
			close(stop)
			<-done
			<-done
			fmt.Printf("reports: %d\n", len(inspect.Reports()))
			return
		}
	}
	alice.mu.Lock()
	bob.mu.Lock()
	fmt.Printf("alice %d, bob %d\n", alice.balance, bob.balance)
	bob.mu.Unlock()
	alice.mu.Unlock()
	fmt.Printf("reports: %d\n", len(inspect.Reports()))
}

// explain prints the report in a few lines.
func explain(rep report.Report) {
	fmt.Printf("\nlockscope found a %s: %s\n", rep.Kind, rep.Summary)
	for _, g := range rep.Goroutines {
		fmt.Printf("  goroutine %d %s %s", g.ID, g.Role, g.Lock)
		if len(g.Stack) > 0 {
			f := g.Stack[0]
			fmt.Printf(" at %s (%s:%d)", f.Function, filepath.Base(f.File), f.Line)
		}
		fmt.Println()
	}
}
