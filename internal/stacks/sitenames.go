package stacks

import (
	"strconv"
	"strings"
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
	call     Call
	name     string
	class    string // the lock class the site's lock call names (ClassOfSite), "" if none
}

var siteNames [siteNameSlots]atomic.Pointer[siteName]

// NameOfSite returns the display name of a lock whose first slow path was
// at (pc1, pc2), taken there by a call of the kind given, as a pointer to an
// immutable string that the caller may keep.
func NameOfSite(pc1, pc2 uintptr, call Call) *string { return &siteEntry(pc1, pc2, call).name }

// ClassOfSite returns the lock class of a lock whose first slow path was at
// (pc1, pc2), taken there by a call of the kind given, as a pointer to an immutable string the caller may keep: its
// declaration as the site's source names it (LockLabel),
// qualified by the package path of the site's function, so that two
// packages' Cache.mu differ ("example.com/cache.Cache.mu"; a package
// variable "example.com/cache.mu"). A lock whose declaration the site does
// not tell has no class: "". (A class by site would put two locks first
// locked at one site, such as the two arguments of a helper that locks them
// in id order, in classes that seem to invert.)
func ClassOfSite(pc1, pc2 uintptr, call Call) *string {
	if pc1 == 0 {
		return &noClass // a meta made by SetName or SetClass, before any acquisition: no site
	}
	return &siteEntry(pc1, pc2, call).class
}

// noClass is the class of a lock with none; shared, so that having none
// costs no allocation.
var noClass string

// siteEntry returns the cached naming of site (pc1, pc2), computing it on
// a miss. (A site's return addresses are those of one call instruction, so
// one kind of call: the kind is compared all the same.)
func siteEntry(pc1, pc2 uintptr, call Call) *siteName {
	h := uint64(pc1)*0x9E3779B97F4A7C15 ^ uint64(pc2)*0xC2B2AE3D27D4EB4F
	base := h >> (64 - siteNameBits)
	free := -1
	for k := range uint64(rt.CacheWays) {
		e := siteNames[(base+k)%siteNameSlots].Load()
		if e == nil {
			free = max(free, int(k))
			continue
		}
		if e.pc1 == pc1 && e.pc2 == pc2 && e.call == call {
			return e
		}
	}
	f := SiteOf(pc1, pc2)
	l := CallLabelOf(f, call)
	s, class := l.Name, ""
	if s == "" {
		s = f.Site()
	} else {
		class = qualify(f.Function, indexFree(s))
		if l.Local > 0 && !strings.Contains(s, "@") {
			// A local's class says its declaration's line, as a
			// redeclared one's name does: "example.com/x.TestX.mu@12".
			// The @ tells it from a field's (report.IsLocalClass).
			class += "@" + strconv.Itoa(l.Local)
		}
	}
	e := &siteName{pc1: pc1, pc2: pc2, call: call, name: s, class: class}
	siteNames[(base+rt.CacheWay(free))%siteNameSlots].Store(e)
	return e
}

// indexFree drops the index of every element in a label whose index is not
// a literal: the locks of DB.shards[i].mu and DB.shards[j].mu are of one
// class, DB.shards[].mu, whatever the variable's name; DB.shards[0].mu
// (an integer or string literal index) stays apart, a lock of its own.
func indexFree(label string) string {
	if !strings.Contains(label, "[") {
		return label
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(label, '[')
		if i < 0 {
			b.WriteString(label)
			return b.String()
		}
		j := strings.IndexByte(label[i:], ']')
		if j < 0 {
			b.WriteString(label)
			return b.String()
		}
		idx := label[i+1 : i+j]
		b.WriteString(label[:i+1])
		if isIntLiteral(idx) || strings.HasPrefix(idx, `"`) || strings.HasPrefix(idx, "`") {
			b.WriteString(idx)
		}
		b.WriteByte(']')
		label = label[i+j+1:]
	}
}

// isIntLiteral reports whether s is a Go integer literal (0, 12, 0x1f, 1_000).
func isIntLiteral(s string) bool {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == 'x' || c == 'X' || c == '_' || c == 'o' || c == 'O') {
			return false
		}
	}
	return true
}

// qualify prefixes label, a name LockLabel gave at a site in function fn,
// with the package path of fn: "Cache.mu" in example.com/cache.(*Cache).Get
// is "example.com/cache.Cache.mu", and a package variable's "cache.mu"
// there is "example.com/cache.mu".
func qualify(fn, label string) string {
	path := PackagePath(fn)
	if path == "" {
		return label
	}
	elem := path[strings.LastIndexByte(path, '/')+1:]
	if rest, ok := strings.CutPrefix(label, elem+"."); ok {
		return path + "." + rest
	}
	return path + "." + label
}

// PackagePath returns the package path of a function named as runtime.Frame
// names it ("example.com/a/b.(*T).M" is in "example.com/a/b"), "" if none.
func PackagePath(fn string) string {
	slash := strings.LastIndexByte(fn, '/')
	dot := strings.IndexByte(fn[slash+1:], '.')
	if dot < 0 {
		return ""
	}
	return fn[:slash+1+dot]
}
