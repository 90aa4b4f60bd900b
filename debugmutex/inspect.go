package debugmutex

// DroppedCounts reports what lockscope's bounded tables had to drop.
func DroppedCounts() Dropped {
	stacksFullMu.Lock()
	st := stacksFull
	stacksFullMu.Unlock()
	d := Dropped{
		StatRows: statsDropped.Load(), Stacks: st,
		TryLockSites: tryOverflow.Load(), Edges: edgesDropped.Load(), Reports: reportsDropped(),
		TryStreaks: tryStreaksFull.Load(),
	}
	gtableMu.Lock()
	forEachG(func(_ int64, g *gstate) { d.Nesting += g.untracked.Load() })
	gtableMu.Unlock()
	return d
}
