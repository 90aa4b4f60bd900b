package debugmutex_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/lockscope/lockscope/debugmutex"
)

// Correct programs must stay quiet. Each test runs a correct pattern and
// asserts that no report was made (including by the watchdog).

func TestSilentConsistentOrderManyGoroutines(t *testing.T) {
	w := watchReports(t)
	var a, b, c debugmutex.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				a.Lock()
				b.Lock()
				c.Lock()
				c.Unlock()
				b.Unlock()
				a.Unlock()
			}
		}()
	}
	wg.Wait()
	w.assertSilent(t)
}

type account struct {
	id      int
	mu      debugmutex.Mutex
	balance int
}

// transfer locks the two accounts in id order: correct.
func transfer(from, to *account, amount int) {
	first, second := from, to
	if to.id < from.id {
		first, second = to, from
	}
	first.mu.Lock()
	defer first.mu.Unlock()
	second.mu.Lock()
	defer second.mu.Unlock()
	from.balance -= amount
	to.balance += amount
}

func TestSilentBankTransferInIDOrder(t *testing.T) {
	w := watchReports(t)
	accts := make([]*account, 4)
	for i := range accts {
		accts[i] = &account{id: i, balance: 100}
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				from, to := accts[(g+i)%4], accts[(g+2*i+1)%4]
				if from != to {
					transfer(from, to, 1)
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, a := range accts {
		total += a.balance
	}
	if total != 400 {
		t.Fatalf("money created or lost: %d", total)
	}
	w.assertSilent(t)
}

func TestSilentLockHandedToAnotherGoroutine(t *testing.T) {
	w := watchReports(t)
	var mu debugmutex.Mutex
	for i := 0; i < 100; i++ {
		mu.Lock()
		done := make(chan struct{})
		go func() { mu.Unlock(); close(done) }()
		<-done
	}
	var rw debugmutex.RWMutex
	rw.RLock()
	done := make(chan struct{})
	go func() { rw.RUnlock(); close(done) }()
	<-done
	rw.Lock() // the read hold was released by the other goroutine
	rw.Unlock()
	w.assertSilent(t)
	for _, h := range debugmutex.Snapshot().Held {
		if h.Goroutine == goid() {
			t.Errorf("handed-off lock still recorded as held by us: %+v", h)
		}
	}
}

func TestSilentMutexAsBaton(t *testing.T) {
	w := watchReports(t)
	// The contract: a goroutine waiting for a lock it holds is reported only
	// after the recursive grace, and never once the lock has been unlocked
	// by a goroutine other than its locker (a baton). So the first handoff
	// comes within the grace, later ones take several graces.
	const grace = 200 * time.Millisecond
	debugmutex.Configure(debugmutex.RecursiveGrace(grace))
	defer debugmutex.Configure(debugmutex.RecursiveGrace(50 * time.Millisecond))
	var baton debugmutex.Mutex
	pass := make(chan time.Duration)
	done := make(chan struct{})
	go func() {
		for d := range pass {
			time.Sleep(d) // workload: the other goroutine works, then releases
			baton.Unlock()
		}
		close(done)
	}()
	for _, d := range []time.Duration{grace / 10, 2 * grace, 3 * grace} {
		baton.Lock()
		pass <- d
		baton.Lock() // waits for our own lock; the other goroutine unlocks it
		baton.Unlock()
	}
	close(pass)
	<-done
	w.assertSilent(t)
}

func TestSilentReverseOrderOnlyThroughTryLockWithBackoff(t *testing.T) {
	w := watchReports(t)
	var a, b debugmutex.Mutex
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 500; i++ {
			a.Lock()
			b.Lock()
			b.Unlock()
			a.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 500; i++ {
			b.Lock()
			if a.TryLock() { // reverse order, but cannot block
				a.Unlock()
			}
			b.Unlock()
			runtime.Gosched()
		}
	}()
	wg.Wait()
	w.assertSilent(t)
}

func TestSilentManyConcurrentReaders(t *testing.T) {
	w := watchReports(t)
	var rw debugmutex.RWMutex
	var wg sync.WaitGroup
	inside := make(chan struct{})
	release := make(chan struct{})
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rw.RLock()
			inside <- struct{}{}
			<-release
			rw.RUnlock()
		}()
	}
	for g := 0; g < 32; g++ {
		<-inside // all 32 hold the read lock at once
	}
	close(release)
	wg.Wait()
	w.assertSilent(t)
}

func TestSilentHandOverHandNonLIFO(t *testing.T) {
	w := watchReports(t)
	nodes := make([]debugmutex.Mutex, 8)
	for round := 0; round < 50; round++ {
		nodes[0].Lock()
		for i := 1; i < len(nodes); i++ {
			nodes[i].Lock()
			nodes[i-1].Unlock() // release the previous one first: not LIFO
		}
		nodes[len(nodes)-1].Unlock()
	}
	w.assertSilent(t)
	for _, h := range debugmutex.Snapshot().Held {
		if h.Goroutine == goid() {
			t.Errorf("still recorded as held: %+v", h)
		}
	}
}

func TestSilentLongishHoldsWithWaiters(t *testing.T) {
	w := watchReports(t)
	var mu debugmutex.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2; i++ {
				mu.Lock()
				time.Sleep(50 * time.Millisecond) // workload: 50 ms holds
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	w.assertSilent(t)
}

func TestSilentCondProducerConsumer(t *testing.T) {
	w := watchReports(t)
	var mu debugmutex.Mutex
	cond := debugmutex.NewCond(&mu)
	var queue []int
	const n = 1000
	done := make(chan int)
	go func() {
		sum := 0
		for i := 0; i < n; i++ {
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
	for i := 0; i < n; i++ {
		mu.Lock()
		queue = append(queue, 1)
		mu.Unlock()
		cond.Signal()
	}
	if sum := <-done; sum != n {
		t.Fatalf("consumed %d", sum)
	}
	w.assertSilent(t)
}

func TestSilent64GoroutinesHammeringOneLock(t *testing.T) {
	w := watchReports(t)
	var mu debugmutex.Mutex
	count := 0
	var wg sync.WaitGroup
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				mu.Lock()
				count++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if count != 64*500 {
		t.Fatalf("count %d", count)
	}
	w.assertSilent(t)
}

func TestSilentInversionOnlyUnderCommonGate(t *testing.T) {
	w := watchReports(t)
	var gate, a, b debugmutex.Mutex
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 100; i++ {
			gate.Lock()
			a.Lock()
			b.Lock()
			b.Unlock()
			a.Unlock()
			gate.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 100; i++ {
			gate.Lock()
			b.Lock()
			a.Lock()
			a.Unlock()
			b.Unlock()
			gate.Unlock()
		}
	}()
	wg.Wait()
	w.assertSilent(t)
}

func TestSilentRecycledAddressesDoNotInheritEdges(t *testing.T) {
	w := watchReports(t)
	// Many generations of lock pairs, each used in one order and dropped;
	// then new pairs (likely at recycled addresses) used in the other order.
	for gen := 0; gen < 50; gen++ {
		a, b := new(debugmutex.Mutex), new(debugmutex.Mutex)
		a.Lock()
		b.Lock()
		b.Unlock()
		a.Unlock()
	}
	runtime.GC()
	for gen := 0; gen < 50; gen++ {
		a, b := new(debugmutex.Mutex), new(debugmutex.Mutex)
		b.Lock()
		a.Lock()
		a.Unlock()
		b.Unlock()
	}
	w.assertSilent(t)
}

func TestSilentDeferredUnlockDuringRecoveredPanic(t *testing.T) {
	w := watchReports(t)
	var a, b debugmutex.Mutex
	for i := 0; i < 20; i++ {
		func() {
			defer func() { _ = recover() }()
			a.Lock()
			defer a.Unlock()
			b.Lock()
			defer b.Unlock()
			panic("boom")
		}()
	}
	if !a.TryLock() || !b.TryLock() {
		t.Fatal("locks not released by deferred unlocks")
	}
	a.Unlock()
	b.Unlock()
	w.assertSilent(t)
}
