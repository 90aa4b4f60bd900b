package record

import (
	"github.com/lockscope/lockscope/report"
)

// Pending is what waits for a hold's release by its owner. Owner only.
type Pending struct {
	Edges     []PendingEdge
	Rr        *PendingRR
	LastChain uint64 // the newest chain recorded pending here
}

type PendingEdge struct {
	To     *LockMeta
	ToMode report.Mode
	ToStk  uint32
	Gates  []uint64 // ids of locks held before the from lock
	// GateClasses are the classes of the gates that have one; HeldClasses
	// those of the other locks write-held with the from lock.
	GateClasses, HeldClasses []string
	Held                     []uint64 // ids of the other locks held with it
	G                        int64
	Chain                    uint64
}

type PendingRR struct {
	Goid     int64
	Stack    uint32
	Pc1, Pc2 uintptr
}

func (p *Pending) Has(to uint64, mode report.Mode) bool {
	for i := range p.Edges {
		if p.Edges[i].To.Id == to && p.Edges[i].ToMode == mode {
			return true
		}
	}
	return false
}
