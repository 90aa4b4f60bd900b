package record

import (
	"context"
	"runtime/pprof"
	"sort"
	"strings"

	"github.com/lockscope/lockscope/report"
)

// pprof labels. The labels of the context given to LockContext
// (pprof.WithLabels, pprof.Do) are kept with that wait's and that hold's
// statistics, so that the profiles carry them on their samples and
// `go tool pprof -tagfocus=endpoint=/checkout` selects them. They are read
// only on the slow paths (a contended wait, a timed release), and only when
// the lock was taken with a context.

const (
	maxLabels   = 8  // labels kept per context
	maxLabelLen = 64 // bytes kept of a label's key or value
)

// labelsOf returns ctx's pprof labels in canonical form ("k\x00v\x00...",
// sorted by key), or "" when it has none.
func labelsOf(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	var kv [][2]string
	pprof.ForLabels(ctx, func(k, v string) bool {
		kv = append(kv, [2]string{clipLabel(k), clipLabel(v)})
		return len(kv) < maxLabels
	})
	if len(kv) == 0 {
		return ""
	}
	sort.Slice(kv, func(i, j int) bool { return kv[i][0] < kv[j][0] })
	var b strings.Builder
	for i, p := range kv {
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(p[0])
		b.WriteByte(0)
		b.WriteString(p[1])
	}
	return b.String()
}

func clipLabel(s string) string {
	if len(s) > maxLabelLen {
		return s[:maxLabelLen]
	}
	return s
}

// labelMap decodes labelsOf's form.
func labelMap(s string) map[string]string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, "\x00")
	m := make(map[string]string, len(parts)/2)
	for i := 0; i+1 < len(parts); i += 2 {
		m[parts[i]] = parts[i+1]
	}
	return m
}

// addStatCtx is addStat with the pprof labels of ctx in the row's key.
func addStatCtx(ctx context.Context, kind report.StatKind, stack uint32, meta *LockMeta, mode report.Mode, count, nanos int64) {
	if ctx == nil {
		addStat(kind, stack, meta, mode, count, nanos)
		return
	}
	addStatLabels(kind, stack, meta, mode, count, nanos, labelsOf(ctx))
}
