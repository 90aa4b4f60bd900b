package debugmutex

// pending is what waits for a hold's release by its owner. Owner only.
type pending struct {
	edges     []pendingEdge
	rr        *pendingRR
	lastChain uint64 // the newest chain recorded pending here
}

type pendingEdge struct {
	to     *lockMeta
	toMode Mode
	toStk  uint32
	gates  []uint64 // ids of locks held before the from lock
	held   []uint64 // ids of the other locks held with it
	g      int64
	chain  uint64
}

type pendingRR struct {
	goid     int64
	stack    uint32
	pc1, pc2 uintptr
}

func (p *pending) has(to uint64, mode Mode) bool {
	for i := range p.edges {
		if p.edges[i].to.id == to && p.edges[i].toMode == mode {
			return true
		}
	}
	return false
}
