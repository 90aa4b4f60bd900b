package gotool

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// TempModfile writes tmp/go.mod, a copy of baseMod (whose content is main)
// that requires lockscope, and tmp/go.sum beside it. wd is the go command's
// working directory, modcache GOMODCACHE, dirFlag the -lockscope-dir flag
// and profiles whether the build imports the profiler. It returns the
// go.mod's name, the lockscope source it chose (zero if the module already
// requires lockscope and no checkout was named, or is lockscope) and, when
// the module's go line is older than lockscope's, what keeps it (see
// Lowered): its Overlay entries belong in the build's overlay.
func TempModfile(wd, tmp, modcache, baseMod string, main ModInfo, dirFlag string, profiles bool) (string, Source, *Lowered, error) {
	modfile := filepath.Join(tmp, "go.mod")
	if err := copyFile(baseMod, modfile); err != nil {
		return "", Source{}, nil, err
	}
	// go.sum goes with the module file it belongs to: x.mod -> x.sum.
	sum, err := os.ReadFile(strings.TrimSuffix(baseMod, ".mod") + ".sum")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", Source{}, nil, err
	}
	required := false
	for _, r := range main.Require {
		required = required || r.Path == Module
	}
	var src Source
	var low *Lowered
	if main.Module.Path != Module && (!required || dirFlag != "" || os.Getenv("LOCKSCOPE_MODULE_DIR") != "") {
		if src, err = findSource(dirFlag); err != nil {
			return "", Source{}, nil, err
		}
		dir := src.Dir
		if dir == "" {
			// A released lockscope: its go line is that of its go.mod in
			// the module cache.
			if dir, err = moduleDir(wd, Module, src.Version); err != nil {
				return "", Source{}, nil, err
			}
		}
		if low, err = lowerLockscope(wd, tmp, modcache, dir, main.Go, profiles); err != nil {
			return "", Source{}, nil, err
		}
		edit := []string{"mod", "edit"}
		if !required {
			edit = append(edit, "-require="+Module+"@"+src.Version)
		}
		if low != nil {
			for _, p := range slices.Sorted(maps.Keys(low.Replace)) {
				edit = append(edit, "-replace="+p+"="+low.Replace[p])
			}
		} else if src.Dir != "" {
			edit = append(edit, "-replace="+Module+"="+dir)
		}
		if src.Dir != "" || low != nil {
			// The checkout's go.sum vouches for lockscope's own
			// dependencies: with it, no download is needed for them.
			if extra, err := os.ReadFile(filepath.Join(dir, "go.sum")); err == nil {
				sum = append(append(sum, '\n'), extra...)
			}
		}
		if _, err := Output(wd, nil, append(edit, modfile)...); err != nil {
			return "", Source{}, nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "go.sum"), sum, 0o666); err != nil {
		return "", Source{}, nil, err
	}
	return modfile, src, low, nil
}
