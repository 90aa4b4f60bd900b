// Command bank is the tutorial's bank balance: four income sources pay into
// one balance every week for 52 weeks, each from its own goroutine.
//
// With -racy the deposits take no lock. The program usually still prints
// the right total, which is what makes the bug hard to see; the race
// detector finds it:
//
//	go run -race ./examples/bank -racy
//
// prints "WARNING: DATA RACE" (and exits 66, the race detector's status).
// lockscope does not look for data races; that is -race's job.
//
// Without -racy the balance is guarded by a mutex, the race detector is
// silent, and so is lockscope; what lockscope shows is how long the lock
// was held, and how long the deposits waited for it:
//
//	go run ./examples/bank
//
// Each deposit writes a ledger line while holding the lock (a short sleep
// stands in for that I/O), so the holds add up to tens of milliseconds.
// It exits 0.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	sync "github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// Income is a source of money, paid weekly.
type Income struct {
	Source string
	Amount int
}

var incomes = []Income{
	{Source: "main job", Amount: 500},
	{Source: "gifts", Amount: 10},
	{Source: "part-time job", Amount: 50},
	{Source: "investments", Amount: 100},
}

const weeks = 52

var (
	balanceMu sync.Mutex
	balance   int
)

// deposit adds amount to the balance under balanceMu and writes the ledger.
func deposit(amount int) {
	balanceMu.Lock()
	defer balanceMu.Unlock()
	balance += amount
	writeLedger()
}

// depositRacy is deposit without the lock: a data race.
func depositRacy(amount int) {
	balance += amount
	writeLedger()
}

// writeLedger stands in for appending a line to the ledger.
func writeLedger() { time.Sleep(100 * time.Microsecond) }

func main() {
	racy := flag.Bool("racy", false, "deposit without taking the lock (a data race: run with -race)")
	flag.Parse()

	// Time every hold rather than a sample, so the numbers below are exact.
	sync.Configure(sync.SamplingPeriod(1))
	sync.SetName(&balanceMu, "balanceMu")

	want := 0
	for _, in := range incomes {
		want += weeks * in.Amount
	}
	fmt.Printf("initial balance: $%d.00\n", balance)

	var wg sync.WaitGroup
	for _, in := range incomes {
		wg.Go(func() {
			for range weeks {
				if *racy {
					depositRacy(in.Amount)
				} else {
					deposit(in.Amount)
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("final balance: $%d.00 (want $%d.00)\n", balance, want)

	if !*racy {
		fmt.Println("\nbalanceMu holds, by where it was acquired:")
		type row struct {
			where string
			count int64
			held  time.Duration
		}
		var rows []row
		for _, r := range inspect.Records() {
			if r.Lock != "balanceMu" || r.Kind != report.StatHold {
				continue
			}
			rows = append(rows, row{where: site(r.Stack), count: r.Count, held: time.Duration(r.Nanos)})
		}
		slices.SortFunc(rows, func(a, b row) int { return int(b.held - a.held) })
		for _, r := range rows {
			fmt.Printf("  %-32s %4d holds, %v in total, %v on average\n", r.where, r.count,
				r.held.Round(time.Millisecond), (r.held / time.Duration(max(r.count, 1))).Round(time.Microsecond))
		}
		for _, s := range inspect.LockStats() {
			if s.Lock == "balanceMu" {
				fmt.Printf("balanceMu: %d acquisitions, held %v, %d contentions, waited %v\n", s.Acquisitions,
					s.HoldTime.Round(time.Millisecond), s.Contentions, s.WaitTime.Round(time.Millisecond))
			}
		}
	}
	fmt.Printf("reports: %d\n", len(inspect.Reports()))
	if balance != want && !*racy {
		os.Exit(1)
	}
}

// site names the innermost frame of stack outside lockscope.
func site(stack []uintptr) string {
	frames := inspect.Symbolize(stack)
	if len(frames) == 0 {
		return "(unknown)"
	}
	return fmt.Sprintf("%s (%s:%d)", frames[0].Function, filepath.Base(frames[0].File), frames[0].Line)
}
