package profiler

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/lockscope/lockscope/report"
)

// benchStacks returns n distinct realistic stacks: real return PCs of this
// binary, 10 to 30 frames deep, sharing their outer frames as real stacks do.
func benchStacks(n int) [][]uintptr {
	var base [64]uintptr
	nb := runtime.Callers(1, base[:])
	// A pool of real PCs to vary the inner frames with.
	pool := base[:nb]
	for _, f := range []func() []uintptr{inlinedOuter, callersHere} {
		pool = append(pool, f()...)
	}
	out := make([][]uintptr, n)
	for i := range out {
		depth := 10 + i%21
		stk := make([]uintptr, 0, depth)
		for d := 0; d < depth; d++ {
			stk = append(stk, pool[(i/(d+1)+d)%len(pool)])
		}
		out[i] = stk
	}
	return out
}

func benchRecords(n int) []report.Record {
	stacks := benchStacks(n)
	kinds := []report.StatKind{report.StatWait, report.StatWaitByHolder, report.StatHold, report.StatTryFail}
	var recs []report.Record
	for _, k := range kinds {
		for i, stk := range stacks {
			recs = append(recs, report.Record{
				Kind: k, Lock: fmt.Sprintf("lock%d", i%50), LockType: "Mutex",
				Stack: stk, Count: int64(i + 1), Nanos: int64(i+1) * 1000,
			})
		}
	}
	return recs
}

// BenchmarkBuild measures building (and encoding, as served) each profile
// from N records per kind, or N holds for held: the whole cost of a request,
// paid by the requester, never by a lock.
func BenchmarkBuild(b *testing.B) {
	maps := readMappings()
	for _, n := range []int{100, 1000, 10000} {
		recs := benchRecords(n)
		for _, sp := range specs {
			b.Run(fmt.Sprintf("%s/N=%d", sp.name, n), func(b *testing.B) {
				var st report.State
				if sp.snapshot {
					st.Time = time.Now()
					for i, stk := range benchStacks(n) {
						st.Held = append(st.Held, report.Holding{
							Lock:      report.LockInfo{Name: fmt.Sprintf("lock%d", i%50), Type: "Mutex"},
							Goroutine: int64(i), For: time.Duration(i), Stack: stk,
						})
					}
				}
				var buf bytes.Buffer
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					if sp.snapshot {
						buildHeld(st, maps).Write(&buf)
					} else {
						buildRecords(sp, recs, maps, time.Now(), 0, report.Dropped{}).Write(&buf)
					}
				}
				b.ReportMetric(float64(buf.Len()), "bytes/profile")
			})
		}
	}
}

// BenchmarkCollect measures Collect on this process's real statistics,
// including reading them from debugmutex and /proc/self/maps.
func BenchmarkCollect(b *testing.B) {
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Collect(name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
