package inspect

import (
	"github.com/lockscope/lockscope/internal/delivery"
	"github.com/lockscope/lockscope/internal/lockorder"
	"github.com/lockscope/lockscope/internal/misuse"
	"github.com/lockscope/lockscope/internal/record"
	"github.com/lockscope/lockscope/internal/stacks"
	"github.com/lockscope/lockscope/report"
)

// DroppedCounts reports what lockscope's bounded tables had to drop.
func DroppedCounts() report.Dropped {
	stacks.StacksFullMu.Lock()
	st := stacks.StacksFull
	stacks.StacksFullMu.Unlock()
	d := report.Dropped{
		StatRows: record.StatsDropped.Load(), Stacks: st,
		TryLockSites: record.TryOverflow.Load(), Edges: lockorder.EdgesDropped.Load(), Reports: delivery.ReportsDropped(),
		TryStreaks: misuse.TryStreaksFull.Load(),
	}
	record.GtableMu.Lock()
	record.ForEachG(func(_ int64, g *record.Gstate) { d.Nesting += g.Untracked.Load() })
	record.GtableMu.Unlock()
	return d
}
