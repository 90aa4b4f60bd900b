package stacks

import (
	"sync/atomic"

	"github.com/lockscope/lockscope/internal/rt"
)

// Display names by acquire site. A lock without a SetName name is named
// after the site of its first slow path (naming.go: the struct field or
// package variable locked there, else the site itself), which costs a
// symbolization, a source lookup and a few allocations. Services make many
// locks at one site (one per request, per connection, per cache entry):
// the name is cached per site, so only the site's first lock pays, and
// the others are named without allocating.
//
// The cache is a fixed table of slots, each an atomic pointer to an
// immutable entry: lookups take no lock, and a new site overwrites the
// slot it hashes to (a miss costs the computation again, never a wrong
// name: the entry holds its site).

const (
	siteNameBits  = 12
	siteNameSlots = 1 << siteNameBits
)

type siteName struct {
	pc1, pc2 uintptr
	name     string
}

var siteNames [siteNameSlots]atomic.Pointer[siteName]

// NameOfSite returns the display name of a lock whose first slow path was
// at (pc1, pc2), as a pointer to an immutable string that the caller may
// keep.
func NameOfSite(pc1, pc2 uintptr) *string {
	h := uint64(pc1)*0x9E3779B97F4A7C15 ^ uint64(pc2)*0xC2B2AE3D27D4EB4F
	base := h >> (64 - siteNameBits)
	free := -1
	for k := range uint64(rt.CacheWays) {
		e := siteNames[(base+k)%siteNameSlots].Load()
		if e == nil {
			free = max(free, int(k))
			continue
		}
		if e.pc1 == pc1 && e.pc2 == pc2 {
			return &e.name
		}
	}
	f := SiteOf(pc1, pc2)
	s := LockLabel(f)
	if s == "" {
		s = f.Site()
	}
	e := &siteName{pc1: pc1, pc2: pc2, name: s}
	siteNames[(base+rt.CacheWay(free))%siteNameSlots].Store(e)
	return &e.name
}
