package rt

// The direct-mapped caches below (internCache, internalPCs, pcClassTab,
// siteNames) are 4-way: an entry may sit in any of the 4 slots from its
// hash's, so that two hot keys on one slot do not evict each other on
// every use (with one way, two sites of a program that shared a slot made
// every new lock at one of them symbolize and parse source again).
const CacheWays = 4

// CacheWay returns the way a new entry goes to: free (the last empty one
// seen, -1 if none), else one at random.
func CacheWay(free int) uint64 {
	if free >= 0 {
		return uint64(free)
	}
	return uint64(Cheaprand() % CacheWays)
}
