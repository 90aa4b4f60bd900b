package report

import "time"

// Overview is what the profiler's index page shows and what
// /debug/locks/?format=json serves (lockscope top reads it): the reports,
// the locks held and awaited now, and the per-lock statistics.
type Overview struct {
	Time    time.Time  `json:"time"`
	Reports []Report   `json:"reports"`
	Held    []Holding  `json:"held"`
	Waiting []Waiting  `json:"waiting"`
	Locks   []LockStat `json:"locks"`
}

// ShortDuration rounds d for display as lockscope's page, graph and
// lockscope top show durations: to the millisecond from a second, to the
// microsecond from a millisecond, exact below.
func ShortDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(time.Microsecond).String()
	}
	return d.String()
}
