package gotool

import (
	"maps"
	"slices"
	"strings"
)

// LeftAlone returns, sorted, the packages outside the main module (and
// outside lockscope) in mods (see BuildModules) that import sync, and so
// keep the real locks, except those of the modules swapped says.
func LeftAlone(mods []BuildModule, swapped func(module string) bool) []string {
	var left []string
	for _, m := range mods {
		if m.Path == Module || strings.HasPrefix(m.Path, Module+"/") || swapped(m.Path) {
			continue
		}
		left = append(left, slices.Collect(maps.Keys(m.Sync))...)
	}
	slices.Sort(left)
	return left
}
