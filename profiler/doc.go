// Package profiler turns what package debugmutex recorded into pprof
// profiles that `go tool pprof` (and Parca, Pyroscope, ...) open: over HTTP,
// like net/http/pprof, and to files.
//
// Five profiles are made, each named by a constant of this package:
//
//	contention            where goroutines waited for locks, by the waiter's stack
//	                      (contentions/count, delay/nanoseconds: the conventions
//	                      of Go's mutex and block profiles, so -contentions,
//	                      -mean_delay and -sample_index work as usual)
//	contention-by-holder  the same waits charged to the acquire stack of the
//	                      goroutine that held the lock ("who made me wait")
//	hold                  acquisitions and hold time by acquire stack
//	                      (acquisitions/count, hold/nanoseconds)
//	trylock               failed TryLock/TryRLock calls by call site
//	                      (failures/count)
//	held                  locks held right now by acquire stack, with their age
//	                      (locks/count, age/nanoseconds), one sample per hold
//
// Every sample carries the string labels "lock" (the name given with
// debugmutex.SetName, else the lock's first acquire site), "mode" ("read" or
// "write") and "type" ("Mutex", "RWMutex", "Once" or "OnceFunc"), so that, for example,
// `go tool pprof -tagfocus=lock=cache.mu` keeps one lock. Samples of the held
// profile also carry the holder's goroutine id as the numeric label
// "goroutine" and "exact" ("true", or "false" when the acquisition was not
// timed and the age is a lower bound).
//
// The first four profiles are cumulative since the program started; a delta
// over an interval is asked for with ?seconds=N over HTTP or with
// CollectDelta. The held profile is a snapshot and has no delta.
//
// Package debugmutex keeps the aggregated statistics (bounded tables; see
// debugmutex.Records and debugmutex.DroppedCounts); this package only reads
// them, so it adds nothing to the cost of locking. Building a profile costs
// in proportion to the number of distinct stacks recorded (see the
// benchmarks), and happens only when a profile is asked for.
//
// Profiles carry a Mapping for the executable (from /proc/self/maps where
// there is one, else os.Executable) with HasFunctions set, and one Location
// per program counter with a Line for each inlined call, so pprof needs
// neither the binary nor any symbolization to show them.
package profiler
