package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// contended is one lock's contention in one test binary.
type contended struct {
	binary, lock string
	count        int64
	delay        time.Duration
	file         string
}

// printContended prints the n most contended locks in the contention
// profiles written to dir since start, one line each, for the end of
// lockscope test.
func printContended(w io.Writer, wd, dir string, start time.Time, n int) {
	files, _ := filepath.Glob(filepath.Join(dir, "*-contention.pb.gz"))
	var all []contended
	read := 0
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.ModTime().Before(start) {
			continue // an earlier run's
		}
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(w, "lockscope: %v\n", err)
			continue
		}
		p, err := profile.ParseData(data)
		if err != nil {
			fmt.Fprintf(w, "lockscope: %s: %v\n", f, err)
			continue
		}
		read++
		all = append(all, contendedLocks(p, strings.TrimSuffix(filepath.Base(f), "-contention.pb.gz"), f)...)
	}
	if read == 0 {
		fmt.Fprintf(w, "lockscope: no test binary wrote lock profiles to %s\n", relTo(wd, dir))
		return
	}
	slices.SortFunc(all, func(a, b contended) int {
		return cmp.Or(cmp.Compare(b.delay, a.delay), cmp.Compare(b.count, a.count), cmp.Compare(a.lock, b.lock))
	})
	fmt.Fprintf(w, "lockscope: %s wrote lock profiles to %s", plural(read, "test binary"), relTo(wd, dir))
	if len(all) == 0 {
		fmt.Fprintln(w, "; no lock was contended")
		return
	}
	fmt.Fprintln(w, "; the most contended locks:")
	for _, c := range all[:min(n, len(all))] {
		fmt.Fprintf(w, "\t%10v waited in %s of %s (%s)\n", c.delay.Round(time.Microsecond), plural(int(c.count), "contention"), c.lock, c.binary)
	}
	fmt.Fprintf(w, "\tgo tool pprof -top %s\n", relTo(wd, all[0].file))
}

// contendedLocks adds up a contention profile's samples by lock.
func contendedLocks(p *profile.Profile, binary, file string) []contended {
	ci, di := -1, -1
	for i, st := range p.SampleType {
		switch st.Type {
		case "contentions":
			ci = i
		case "delay":
			di = i
		}
	}
	if ci < 0 || di < 0 {
		return nil
	}
	by := map[string]*contended{}
	var out []contended
	for _, s := range p.Sample {
		lock := "?"
		if l := s.Label["lock"]; len(l) > 0 {
			lock = l[0]
		}
		c := by[lock]
		if c == nil {
			c = &contended{binary: binary, lock: lock, file: file}
			by[lock] = c
		}
		c.count += s.Value[ci]
		c.delay += time.Duration(s.Value[di])
	}
	for _, c := range by {
		if c.count > 0 {
			out = append(out, *c)
		}
	}
	return out
}
