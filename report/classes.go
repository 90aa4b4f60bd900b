package report

import "strings"

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

// The grammar of a class name, as lockscope makes them from declarations:
//
//	example.com/bank.mu                 a package variable
//	example.com/bank.Bank.accounts      a field of struct type Bank
//	example.com/bank.Bank.shards[].mu   a field of an element
//	example.com/bank.TestX.mu@12        a local of function TestX, declared on line 12
//
// A class given by SetClass is any string.

// ClassPackage returns the package path of class ("example.com/bank"), or
// class itself when it has none.
func ClassPackage(class string) string {
	i := strings.LastIndexByte(class, '/') + 1
	if j := strings.IndexByte(class[i:], '.'); j >= 0 {
		return class[:i+j]
	}
	return class
}

// IsLocalClass reports whether class is a function's local lock: its locks
// are made by calls of the function and belong to no object that two
// lock orders could share.
func IsLocalClass(class string) bool { return strings.Contains(class, "@") }

// IsPackageVarClass reports whether class is a package variable's
// ("example.com/bank.mu"): one lock in every process.
func IsPackageVarClass(class string) bool {
	path := ClassPackage(class)
	if path == class || IsLocalClass(class) {
		return false
	}
	rest := class[len(path)+1:]
	return rest != "" && !strings.ContainsAny(rest, ".[")
}

// ClassOwner returns the struct type a field class belongs to
// ("example.com/bank.Bank" of "example.com/bank.Bank.ledger"), "" for a
// package variable's, a local's, or a class without a package path.
func ClassOwner(class string) string {
	path := ClassPackage(class)
	if path == class || IsLocalClass(class) {
		return ""
	}
	rest := class[len(path)+1:]
	if i := strings.IndexByte(rest, '.'); i > 0 {
		return class[:len(path)+1+i]
	}
	return ""
}
