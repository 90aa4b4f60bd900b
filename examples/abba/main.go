// Command abba has two code paths that take the same two locks in opposite
// orders: PlaceOrder locks the orders and then the inventory, Restock locks
// the inventory and then the orders. Run concurrently at the wrong moment,
// each would hold one lock and wait forever for the other (the ABBA
// deadlock). In this run they never overlap (the orders are placed, then
// the shelves restocked) so nothing hangs, and tests that never hit the
// window pass. lockscope reports the potential deadlock anyway, the first
// time the second order is taken: a lock-order report naming both orders,
// each with the stacks where its two locks were taken.
//
// Run it with:
//
//	go run ./examples/abba
//
// With -fixed, Restock takes the locks in the documented order (orders,
// then inventory) and lockscope stays silent. Either way it exits 0.
package main

import (
	"flag"
	"fmt"
	"path/filepath"

	sync "github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// Orders holds the orders waiting for stock.
type Orders struct {
	mu      sync.Mutex
	pending map[string]int // item -> quantity waiting
}

// Inventory holds the stock.
type Inventory struct {
	mu    sync.Mutex
	stock map[string]int
}

// Shop's lock order: Orders.mu, then Inventory.mu.
type Shop struct {
	orders    Orders
	inventory Inventory
	fixed     bool
}

// PlaceOrder takes qty of item from stock, or queues the order.
func (s *Shop) PlaceOrder(item string, qty int) bool {
	s.orders.mu.Lock()
	defer s.orders.mu.Unlock()
	s.inventory.mu.Lock()
	defer s.inventory.mu.Unlock()
	if s.inventory.stock[item] >= qty {
		s.inventory.stock[item] -= qty
		return true
	}
	s.orders.pending[item] += qty
	return false
}

// Restock adds qty of item and fills the orders waiting for it. BUG: it
// takes the locks in the opposite order to PlaceOrder.
func (s *Shop) Restock(item string, qty int) (filled int) {
	if s.fixed {
		return s.restockFixed(item, qty)
	}
	s.inventory.mu.Lock()
	defer s.inventory.mu.Unlock()
	s.inventory.stock[item] += qty
	s.orders.mu.Lock()
	defer s.orders.mu.Unlock()
	return s.fill(item)
}

// restockFixed takes the locks in the shop's order.
func (s *Shop) restockFixed(item string, qty int) (filled int) {
	s.orders.mu.Lock()
	defer s.orders.mu.Unlock()
	s.inventory.mu.Lock()
	defer s.inventory.mu.Unlock()
	s.inventory.stock[item] += qty
	return s.fill(item)
}

// fill fills the pending orders for item from stock. Both locks held.
func (s *Shop) fill(item string) int {
	n := min(s.orders.pending[item], s.inventory.stock[item])
	s.orders.pending[item] -= n
	s.inventory.stock[item] -= n
	return n
}

func main() {
	fixed := flag.Bool("fixed", false, "take the locks in the same order on both paths")
	flag.Parse()

	s := &Shop{
		orders:    Orders{pending: map[string]int{}},
		inventory: Inventory{stock: map[string]int{"apples": 5}},
		fixed:     *fixed,
	}
	sync.SetName(&s.orders.mu, "Orders.mu")
	sync.SetName(&s.inventory.mu, "Inventory.mu")

	// A customer's goroutine, then the delivery's: never at the same time.
	var wg sync.WaitGroup
	wg.Go(func() {
		fmt.Println("order 3 apples:", ok(s.PlaceOrder("apples", 3)))
		fmt.Println("order 4 apples:", ok(s.PlaceOrder("apples", 4)))
	})
	wg.Wait()
	wg.Go(func() {
		fmt.Println("restock 10 apples: orders filled:", s.Restock("apples", 10))
	})
	wg.Wait()

	reps := inspect.Reports()
	fmt.Printf("\nreports: %d\n", len(reps))
	for _, r := range reps {
		fmt.Printf("%s: %s\n", r.Kind, r.Summary)
		for _, e := range r.Edges {
			fmt.Printf("  %s then %s: %s, then %s\n", e.From, e.To, site(e.FromStack), site(e.ToStack))
		}
	}
}

func ok(b bool) string {
	if b {
		return "done"
	}
	return "queued"
}

func site(stack []report.Frame) string {
	if len(stack) == 0 {
		return "(unknown)"
	}
	return fmt.Sprintf("%s (%s:%d)", stack[0].Function, filepath.Base(stack[0].File), stack[0].Line)
}
