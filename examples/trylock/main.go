// Command trylock is a worker pool whose workers poll a job queue with
// TryLock instead of waiting for it: when the lock is taken they yield and
// try again. The program is correct and lockscope reports nothing, but the
// polling is wasteful, and lockscope's TryLock statistics show where: every
// failed TryLock is counted at its call site, and the workers' polling loop
// tops the list, far above the metrics reporter that also uses TryLock
// (once per tick, skipping a tick when the queue is busy).
//
// Run it with:
//
//	go run ./examples/trylock
//
// It prints the jobs done and the TryLock failures per call site, worst
// first. The fix it points to: let workers block (Lock, a sync.Cond, or a
// channel of jobs) instead of polling. It exits 0.
package main

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	sync "github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

const (
	workers  = 4
	batches  = 20
	perBatch = 50
)

// Queue is a job queue. The producer fills it in batches.
type Queue struct {
	mu   sync.Mutex
	jobs []int
	done bool // no more jobs will come
}

// produce adds the jobs batch by batch. Assembling a batch takes a while,
// and the producer holds the lock all that time.
func produce(q *Queue) {
	for b := range batches {
		q.mu.Lock()
		for i := range perBatch {
			q.jobs = append(q.jobs, b*perBatch+i)
		}
		time.Sleep(2 * time.Millisecond) // assembling the batch
		q.mu.Unlock()
	}
	q.mu.Lock()
	q.done = true
	q.mu.Unlock()
}

// worker polls the queue with TryLock until the producer is done and the
// queue is empty. It returns how many jobs it did.
func worker(q *Queue) (did int) {
	for {
		if !q.mu.TryLock() { // the hot site: fails whenever the producer holds the queue
			runtime.Gosched()
			continue
		}
		if len(q.jobs) == 0 {
			finished := q.done
			q.mu.Unlock()
			if finished {
				return did
			}
			runtime.Gosched()
			continue
		}
		job := q.jobs[0]
		q.jobs = q.jobs[1:]
		q.mu.Unlock()
		_ = job * job // the work
		did++
	}
}

// reportMetrics reads the queue length once per tick, skipping ticks when
// the queue is busy, until stop is closed.
func reportMetrics(q *Queue, stop <-chan struct{}) (samples, skipped int) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return samples, skipped
		case <-tick.C:
		}
		if q.mu.TryLock() { // the cold site
			_ = len(q.jobs)
			q.mu.Unlock()
			samples++
		} else {
			skipped++
		}
	}
}

func main() {
	q := &Queue{}
	sync.SetName(&q.mu, "Queue.mu")

	stop := make(chan struct{})
	var samples, skipped int
	metricsDone := make(chan struct{})
	go func() {
		samples, skipped = reportMetrics(q, stop)
		close(metricsDone)
	}()

	var wg sync.WaitGroup
	did := make([]int, workers)
	for w := range workers {
		wg.Go(func() { did[w] = worker(q) })
	}
	produce(q)
	wg.Wait()
	close(stop)
	<-metricsDone

	total := 0
	for _, n := range did {
		total += n
	}
	fmt.Printf("jobs done: %d of %d (per worker: %v)\n", total, batches*perBatch, did)
	fmt.Printf("metrics: %d samples, %d ticks skipped\n", samples, skipped)

	type site struct {
		where string
		fails int64
	}
	var sites []site
	for _, r := range inspect.Records() {
		if r.Kind != report.StatTryFail || r.Lock != "Queue.mu" {
			continue
		}
		where := "(unknown)"
		if f := inspect.Symbolize(r.Stack); len(f) > 0 {
			where = fmt.Sprintf("%s (%s:%d)", f[0].Function, filepath.Base(f[0].File), f[0].Line)
		}
		sites = append(sites, site{where, r.Count})
	}
	slices.SortFunc(sites, func(a, b site) int { return int(b.fails - a.fails) })
	fmt.Println("\nTryLock failures on Queue.mu by call site, worst first:")
	for _, s := range sites {
		fmt.Printf("  %8d  %s\n", s.fails, s.where)
	}
	for _, s := range inspect.LockStats() {
		if s.Lock == "Queue.mu" {
			fmt.Printf("\nQueue.mu: %d TryLock failures in all\n", s.TryLockFailures)
		}
	}
	fmt.Printf("reports: %d\n", len(inspect.Reports()))
}
