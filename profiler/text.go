package profiler

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// writeText writes p in the ?debug=1 text form: the samples, heaviest
// first, each with its values, labels and symbolized stack.
//
//	lockscope contention profile: Where goroutines waited ...
//	cumulative since the program started
//
//	12 contentions, 35.2ms delay  lock=cache.mu mode=write type=Mutex
//	    main.(*cache).get
//	        /src/app/cache.go:42
func writeText(w io.Writer, p *profile.Profile) error {
	bw := bufio.NewWriter(w)
	for _, c := range p.Comments {
		fmt.Fprintln(bw, c)
	}
	fmt.Fprintf(bw, "time: %s\n", time.Unix(0, p.TimeNanos).Format(time.RFC3339Nano))
	types := make([]string, len(p.SampleType))
	for i, st := range p.SampleType {
		types[i] = st.Type + "/" + st.Unit
	}
	fmt.Fprintf(bw, "sample types: %s\n", strings.Join(types, " "))
	fmt.Fprintf(bw, "samples: %d\n", len(p.Sample))

	samples := slices.Clone(p.Sample)
	last := len(p.SampleType) - 1
	slices.SortStableFunc(samples, func(a, b *profile.Sample) int {
		return cmp.Compare(b.Value[last], a.Value[last])
	})
	for _, s := range samples {
		fmt.Fprintln(bw)
		for i, v := range s.Value {
			if i > 0 {
				bw.WriteString(", ")
			}
			st := p.SampleType[i]
			if st.Unit == "nanoseconds" {
				fmt.Fprintf(bw, "%v %s", time.Duration(v), st.Type)
			} else {
				fmt.Fprintf(bw, "%d %s", v, st.Type)
			}
		}
		bw.WriteString(" ")
		for _, k := range slices.Sorted(maps.Keys(s.Label)) {
			fmt.Fprintf(bw, " %s=%s", k, strings.Join(s.Label[k], ","))
		}
		for _, k := range slices.Sorted(maps.Keys(s.NumLabel)) {
			for _, v := range s.NumLabel[k] {
				fmt.Fprintf(bw, " %s=%d", k, v)
			}
		}
		bw.WriteString("\n")
		for _, l := range s.Location {
			for _, ln := range l.Line {
				fmt.Fprintf(bw, "    %s\n", ln.Function.Name)
				if ln.Function.Filename != "" {
					fmt.Fprintf(bw, "        %s:%d\n", ln.Function.Filename, ln.Line)
				}
			}
		}
	}
	return bw.Flush()
}
