package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/lockscope/lockscope/cmd/lockscope/internal/gotool"
)

// depsResult is what -deps did.
type depsResult struct {
	swapped []gotool.SwappedModule
	mods    []gotool.BuildModule // every module of the build but the main one
}

// files is how many Go files the swapped modules' copies changed.
func (d depsResult) files() int {
	n := 0
	for _, s := range d.swapped {
		n += s.Files
	}
	return n
}

func (d depsResult) isSwapped(path string) bool {
	return slices.ContainsFunc(d.swapped, func(s gotool.SwappedModule) bool { return s.Path == path })
}

// swapDependencies gives the dependency modules of the build (mods) that
// pat matches
// debugmutex in place of sync: a copy of each (cached per module version),
// reached through a replace directive added to modfile. The standard
// library, lockscope and the modules it requires are never swapped. A
// module whose copy does not build (it hands a lock to code that wants a
// sync one, say) is named and kept on sync; so are the swapped modules
// that a package of another module failed to build against.
func swapDependencies(wd string, env []string, modfile, overlay, tmp string, main gotool.ModInfo, mods []gotool.BuildModule,
	pat gotool.DepsPattern, verbose bool, stderr io.Writer) (depsResult, error) {
	res := depsResult{mods: mods}
	keep := gotool.LockscopeImports(mods)
	if main.Module.Path == gotool.Module {
		// lockscope on itself: its packages are the main module's, and
		// what they import is what its go.mod requires.
		more, err := gotool.LockscopeModules(wd, env, modfile)
		if err != nil {
			return res, err
		}
		maps.Copy(keep, more)
	}
	cache, err := gotool.DepsCacheDir()
	if err != nil {
		return res, err
	}
	for _, m := range mods {
		if !pat.Match(m.Path) || len(m.Sync) == 0 {
			continue
		}
		if keep[m.Path] {
			if verbose && m.Path != gotool.Module {
				fmt.Fprintf(stderr, "lockscope: -deps: %s keeps sync (lockscope's packages in this build import it)\n", m.Path)
			}
			continue
		}
		s, err := gotool.SwapModule(m, cache, tmp, swapCopy)
		if err != nil {
			fmt.Fprintf(stderr, "lockscope: -deps: %s keeps sync: copying it: %v\n", m.Path, err)
			continue
		}
		if s.Files > 0 {
			res.swapped = append(res.swapped, s)
		}
	}
	if len(res.swapped) == 0 {
		return res, nil
	}
	if err := replaceModules(wd, modfile, main, res.swapped, nil); err != nil {
		return res, err
	}
	// Build every dependency package once now (the build cache keeps it
	// for the real build) and put back on sync what does not build.
	var pkgs []string
	owner := map[string]string{} // package -> its module
	for _, m := range mods {
		for _, p := range m.Packages {
			pkgs = append(pkgs, p)
			owner[p] = m.Path
		}
	}
	for len(res.swapped) > 0 {
		failed, err := gotool.BuildErrors(wd, env, modfile, overlay, pkgs)
		if err != nil {
			return res, err
		}
		bad := map[string]string{} // swapped module -> why
		for _, p := range slices.Sorted(maps.Keys(failed)) {
			if m := owner[p]; res.isSwapped(m) {
				if _, ok := bad[m]; !ok {
					bad[m] = failed[p]
				}
				continue
			}
			// A package of a module left on sync (or the standard
			// library's?) failed: against the swapped modules it imports.
			for _, m := range mods {
				if imports := m.Imports[p]; imports != nil {
					for _, imp := range imports {
						if om := owner[imp]; res.isSwapped(om) {
							if _, ok := bad[om]; !ok {
								bad[om] = fmt.Sprintf("%s (of %s, which keeps sync) does not build against it:\n%s", p, m.Path, failed[p])
							}
						}
					}
				}
			}
		}
		if len(bad) == 0 {
			break // failures of their own: the real build says them
		}
		var dropped []gotool.SwappedModule
		res.swapped = slices.DeleteFunc(res.swapped, func(s gotool.SwappedModule) bool {
			if why, ok := bad[s.Path]; ok {
				fmt.Fprintf(stderr, "lockscope: -deps: %s@%s does not build with debugmutex, so it keeps sync:\n\t%s\n",
					s.Path, s.Version, strings.ReplaceAll(why, "\n", "\n\t"))
				dropped = append(dropped, s)
				return true
			}
			return false
		})
		if err := replaceModules(wd, modfile, main, nil, dropped); err != nil {
			return res, err
		}
	}
	return res, nil
}

// replaceModules edits modfile: a replace directive to the copy of each of
// add, and for each of drop, back to what the user's go.mod (main) said of
// it, if anything.
func replaceModules(wd, modfile string, main gotool.ModInfo, add, drop []gotool.SwappedModule) error {
	edit := []string{"mod", "edit"}
	for _, s := range add {
		// A replace of the user's for this module (any version) gives
		// way to ours.
		for _, r := range main.Replace {
			if r.Old.Path == s.Path && r.Old.Version != "" {
				edit = append(edit, "-dropreplace="+r.Old.Path+"@"+r.Old.Version)
			}
		}
		edit = append(edit, "-replace="+s.Path+"="+s.Copy)
	}
	for _, s := range drop {
		edit = append(edit, "-dropreplace="+s.Path)
		for _, r := range main.Replace {
			if r.Old.Path == s.Path {
				edit = append(edit, "-replace="+atVersion(r.Old.Path, r.Old.Version)+"="+atVersion(r.New.Path, r.New.Version))
			}
		}
	}
	if len(edit) == 2 {
		return nil
	}
	_, err := gotool.Output(wd, nil, append(edit, modfile)...)
	return err
}

func atVersion(path, version string) string {
	if version == "" {
		return path
	}
	return path + "@" + version
}
