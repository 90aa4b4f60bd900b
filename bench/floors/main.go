// Command floors reads `go test -bench` output (the files run.sh writes)
// and prints the service-scale floors of issue 11 as PASS/FAIL lines, from
// the medians of each benchmark's runs. It exits with status 1 if a floor is
// missed or its benchmarks are missing from the input.
//
//	go run ./floors scale-on.txt scale-off.txt
//
// Benchmark names are taken as run.sh writes them: impl=sync and
// impl=lockscope from the run with recording on, impl=lockscope-off from the
// run with LOCKSCOPE=off.
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// samples[name][unit] are the values of every run of benchmark name.
var samples = map[string]map[string][]float64{}

var procSuffix = regexp.MustCompile(`-\d+$`)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: floors FILE...")
		os.Exit(2)
	}
	for _, f := range os.Args[1:] {
		if err := read(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	failed := 0
	check := func(ok bool, missing bool, format string, args ...any) {
		switch {
		case missing:
			failed++
			fmt.Printf("FAIL  (no data) "+format+"\n", args...)
		case ok:
			fmt.Printf("PASS  "+format+"\n", args...)
		default:
			failed++
			fmt.Printf("FAIL  "+format+"\n", args...)
		}
	}

	for _, g := range []string{"1000", "10000"} {
		on, ok1 := median("BenchmarkScaleManyWaiters/g="+g+"/impl=lockscope", "ops/s")
		off, ok2 := median("BenchmarkScaleManyWaiters/g="+g+"/impl=lockscope-off", "ops/s")
		r := on / off
		check(r >= 0.5, !ok1 || !ok2, "many waiters, %s goroutines on 10 locks: lockscope %.2fx the throughput of LOCKSCOPE=off (%s vs %s ops/s); floor >= 0.5x",
			g, r, si(on), si(off))
	}
	{
		ls, ok1 := median("BenchmarkScaleFirstUse/impl=lockscope", "ns/op")
		sy, ok2 := median("BenchmarkScaleFirstUse/impl=sync", "ns/op")
		check(ls/sy <= 5, !ok1 || !ok2, "first use of a lock: lockscope %.1fx sync (%.1f vs %.1f ns/op); floor <= 5x", ls/sy, ls, sy)
		a, ok3 := median("BenchmarkScaleFirstUse/impl=lockscope", "allocs/op")
		bytes, _ := median("BenchmarkScaleFirstUse/impl=lockscope", "B/op")
		check(a == 0, !ok3, "first use of a lock: lockscope %.0f allocs/op (%.0f B/op); floor 0", a, bytes)
	}
	{
		ls, ok1 := median("BenchmarkRLock/impl=lockscope", "ns/op")
		sy, ok2 := median("BenchmarkRLock/impl=sync", "ns/op")
		check(ls/sy <= 2.5, !ok1 || !ok2, "RLock+RUnlock: lockscope %.1fx sync (%.1f vs %.1f ns/op); floor <= 2.5x", ls/sy, ls, sy)
	}
	{
		ls, ok1 := median("BenchmarkScaleReadHeavy/impl=lockscope", "ops/s")
		sy, ok2 := median("BenchmarkScaleReadHeavy/impl=sync", "ops/s")
		check(ls/sy >= 0.8, !ok1 || !ok2, "read-heavy cache (80%% RLock, 4 goroutines): lockscope %.2fx sync's throughput (%s vs %s ops/s); floor >= 0.8x",
			ls/sy, si(ls), si(sy))
	}
	{
		yes, ok1 := median("BenchmarkScaleWatchdog/leaked=yes/impl=lockscope", "ns/op")
		no, ok2 := median("BenchmarkScaleWatchdog/leaked=no/impl=lockscope", "ns/op")
		check(yes/no <= 1.05, !ok1 || !ok2, "leaked lock, 10,000 parked goroutines: uncontended Lock+Unlock %.2fx the time without it (%.1f vs %.1f ns/op); floor <= 1.05x",
			yes/no, yes, no)
		stw, ok3 := median("BenchmarkScaleWatchdog/leaked=yes/impl=lockscope", "stw")
		rate, _ := median("BenchmarkScaleWatchdog/leaked=yes/impl=lockscope", "stw/s")
		stwNo, _ := median("BenchmarkScaleWatchdog/leaked=no/impl=lockscope", "stw")
		check(stw <= 1, !ok3, "leaked lock, 10,000 parked goroutines: %.0f stop-the-world pauses in a timed run (%.1f/s; %.0f without the leak); floor <= 1 (one dump per new problem)",
			stw, rate, stwNo)
	}

	// For reference, not floors: LOCKSCOPE=off against sync.
	fmt.Println()
	fmt.Println("# for reference: LOCKSCOPE=off / sync (time per op)")
	var names []string
	for n := range samples {
		if strings.HasSuffix(n, "/impl=lockscope-off") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		base := strings.TrimSuffix(n, "/impl=lockscope-off")
		off, _ := median(n, "ns/op")
		if sy, ok := median(base+"/impl=sync", "ns/op"); ok {
			fmt.Printf("      %s: %.2fx (%.1f vs %.1f ns/op)\n", base, off/sy, off, sy)
		}
	}
	fmt.Println()
	if failed > 0 {
		fmt.Printf("# %d floor(s) missed\n", failed)
		os.Exit(1)
	}
	fmt.Println("# all floors met")
}

// read adds the benchmark lines of file f to samples.
func read(f string) error {
	file, err := os.Open(f)
	if err != nil {
		return err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(fields[1]); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(fields[0], "")
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				break
			}
			if samples[name] == nil {
				samples[name] = map[string][]float64{}
			}
			samples[name][fields[i+1]] = append(samples[name][fields[i+1]], v)
		}
	}
	return sc.Err()
}

func median(name, unit string) (float64, bool) {
	vs := append([]float64(nil), samples[name][unit]...)
	if len(vs) == 0 {
		return 0, false
	}
	sort.Float64s(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2], true
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2, true
}

// si formats v with a k/M/G suffix.
func si(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
