package report

// ClassEdge is one lock-class dependency a process saw: a lock of class To
// was acquired while one of class From was held (lock classes: the locks'
// declarations, "example.com/bank.Bank.accounts"). At its end, a process
// writes each class edge it committed once to LOCKSCOPE_REPORT_FILE, as a
// line {"class_edge": {...}}, so that `lockscope test ./...` (every test
// binary of the module) and `lockscope report FILE...` (many processes)
// can find the inversions that no process saw whole.
type ClassEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
	// ToMode is how To was first wanted with From held.
	ToMode Mode `json:"to_mode"`
	// Gates are the classes held before From every time the edge was seen.
	Gates []string `json:"gates,omitempty"`
	// Program is the process that saw it (a test binary's path, such as
	// example.com/store.test); Version the main module's version in it.
	Program string `json:"program"`
	Version string `json:"version,omitempty"`
	// How the edge was first taken: the instances' names, the goroutine,
	// where From was acquired and where To was then acquired.
	FromLock     string  `json:"from_lock,omitempty"`
	ToLock       string  `json:"to_lock,omitempty"`
	Goroutine    int64   `json:"goroutine,omitempty"`
	FromStack    []Frame `json:"from_stack,omitempty"`
	ToStack      []Frame `json:"to_stack,omitempty"`
	FromSiteOnly bool    `json:"from_site_only,omitempty"`
}

// classLine is the JSON line a ClassEdge is written as.
type classLine struct {
	ClassEdge *ClassEdge `json:"class_edge"`
}
