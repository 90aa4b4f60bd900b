package gotool

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Keeping the user's go line.
//
// The go line of the main module sets the language version of every file
// in it (loop variables before and after Go 1.22), the vet rules (printf's
// "non-constant format string" from Go 1.24), the GODEBUG defaults and the
// module graph's pruning. The go command keeps the main module's go line
// at least as high as that of every module in its graph: requiring
// lockscope as it is (go 1.26) would raise it. So when the user's go line
// is older than lockscope's, the temporary build sees lockscope through a
// directory replacement whose go.mod (an -overlay entry: the checkout is
// not touched) says the user's go line and requires only what the swapped
// packages import; and lockscope's own packages are compiled at lockscope's
// language version by a //go:build line in an overlaid copy of each of
// their files (see overlaySources).

// swapDeps are the modules other than the standard library that the
// packages a swapped build can import (debugmutex, debugmutex/locktest)
// need; profileDeps those that profiler/autoprofile adds, when lockscope
// test writes profiles. Kept in step by TestSwapDepsComplete.
var (
	swapDeps    = []string{"github.com/petermattis/goid"}
	profileDeps = []string{"github.com/google/pprof"}
)

// pprofModule is the module of the pprof encoding, which the profiler uses
// (its package profile alone, which imports only the standard library).
const pprofModule = "github.com/google/pprof"

// Lowered is what a build needs to keep the user's go line: module
// directories to reach through a replace directive, and overlay entries
// for their go.mod files and sources.
type Lowered struct {
	Replace map[string]string // module path -> directory
	Overlay map[string]string // file -> lowered copy
}

// lowerLockscope writes, under tmp, a go.mod for the lockscope module in dir
// that says go line userGo and requires only what the swapped packages
// (and, with profiles, the profiler) import, and copies of their sources
// that keep their own language version (see overlaySources). With profiles,
// the pprof module is lowered the same way if its go line is newer than
// userGo. It returns nil when userGo is not older than lockscope's go line.
func lowerLockscope(wd, tmp, modcache, dir, userGo string, profiles bool) (*Lowered, error) {
	gomod := filepath.Join(dir, "go.mod")
	own, err := ReadModInfo(wd, gomod)
	if err != nil {
		return nil, err
	}
	if userGo == "" {
		userGo = "1.16" // the go command's meaning of a go.mod without a go line
	}
	if !olderGo(userGo, own.Go) {
		return nil, nil
	}
	deps := swapDeps
	roots := []string{"debugmutex", "internal", "inspect", "report"}
	if profiles {
		deps = append(slices.Clone(deps), profileDeps...)
		roots = append(roots, "profiler")
	}
	low := &Lowered{Replace: map[string]string{}, Overlay: map[string]string{}}
	var b strings.Builder
	fmt.Fprintf(&b, "// lockscope's go.mod, lowered to the go line of the module it debug-builds.\n\nmodule %s\n\ngo %s\n", Module, userGo)
	for _, r := range own.Require {
		if !slices.Contains(deps, r.Path) {
			continue
		}
		fmt.Fprintf(&b, "\nrequire %s %s\n", r.Path, r.Version)
		if r.Path != pprofModule {
			continue
		}
		pdir, err := moduleDir(wd, r.Path, r.Version)
		if err != nil {
			return nil, err
		}
		pmod, err := ReadModInfo(wd, filepath.Join(pdir, "go.mod"))
		if err != nil {
			return nil, err
		}
		if !olderGo(userGo, pmod.Go) {
			continue
		}
		// pprof's package profile needs nothing but the standard library.
		rdir, err := low.add(pdir, filepath.Join(tmp, "pprof"), modcache, []string{"profile"}, "go"+langOf(pmod.Go),
			fmt.Sprintf("// lowered by lockscope\n\nmodule %s\n\ngo %s\n", pprofModule, userGo))
		if err != nil {
			return nil, err
		}
		low.Replace[pprofModule] = rdir
	}
	rdir, err := low.add(dir, filepath.Join(tmp, "lockscope"), modcache, roots, "go"+langOf(own.Go), b.String())
	if err != nil {
		return nil, err
	}
	low.Replace[Module] = rdir
	return low, nil
}

// add overlays the go.mod of the module in dir with gomod and the Go files
// below its roots with copies that keep language version lang, and
// returns the directory to reach the module through. The go command
// refuses overlays of files in the module cache: a module there is copied
// instead (see lowerCopy).
func (l *Lowered) add(dir, tmp, modcache string, roots []string, lang, gomod string) (string, error) {
	if modcache != "" && within(modcache, dir) {
		return lowerCopy(dir, roots, lang, gomod)
	}
	return dir, l.overlayModule(dir, tmp, roots, lang, gomod)
}

func (l *Lowered) overlayModule(dir, tmp string, roots []string, lang, gomod string) error {
	if err := os.MkdirAll(tmp, 0o777); err != nil {
		return err
	}
	backing := filepath.Join(tmp, "go.mod")
	if err := os.WriteFile(backing, []byte(gomod), 0o666); err != nil {
		return err
	}
	l.Overlay[filepath.Join(dir, "go.mod")] = backing
	for _, r := range roots {
		srcs, err := overlaySources(dir, r, tmp, lang)
		if err != nil {
			return err
		}
		maps.Copy(l.Overlay, srcs)
	}
	return nil
}

// langOf returns the language version of a go line: "1.26.0" -> "1.26".
func langOf(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) >= 2 {
		return parts[0] + "." + parts[1]
	}
	return v
}

// moduleDir returns the directory of module path@version in the module
// cache, downloading it if needed.
func moduleDir(wd, path, version string) (string, error) {
	out, err := Output(wd, nil, "mod", "download", "-json", path+"@"+version)
	if err != nil {
		return "", err
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		return "", err
	}
	if m.Error != "" {
		return "", fmt.Errorf("downloading %s@%s: %s", path, version, m.Error)
	}
	return m.Dir, nil
}

// overlaySources writes, under tmp, a copy of every non-test Go file of the
// packages below dir/sub that states the module's own language version,
// lang, in its build constraint, and returns their overlay entries. The go command gives every file of a module the module's go
// line, here the user's; a //go:build line naming a Go version overrides
// it for its file, for the compiler and for vet alike. The copies keep
// their positions: an existing //go:build line is extended in place, a new
// one is followed by a line directive naming the original file and line.
func overlaySources(dir, sub, tmp, lang string) (map[string]string, error) {
	out := map[string]string{}
	root := filepath.Join(dir, sub)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(tmp, "src", rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
			return err
		}
		if err := os.WriteFile(dst, withLang(path, src, lang), 0o666); err != nil {
			return err
		}
		out[path] = dst
		return nil
	})
	return out, err
}

// withLang returns src, the Go file path, with its build constraint
// requiring lang ("go1.26").
func withLang(path string, src []byte, lang string) []byte {
	off := 0
	for line := range strings.Lines(string(src)) {
		t := strings.TrimSpace(line)
		if expr, ok := strings.CutPrefix(t, "//go:build "); ok {
			repl := "//go:build (" + strings.TrimSpace(expr) + ") && " + lang
			if strings.HasSuffix(line, "\n") {
				repl += "\n"
			}
			return append(append(append([]byte{}, src[:off]...), repl...), src[off+len(line):]...)
		}
		if t != "" && !strings.HasPrefix(t, "//") {
			break // the header ends (package clause or a block comment)
		}
		off += len(line)
	}
	head := fmt.Sprintf("//go:build %s\n\n/*line %s:1:1*/", lang, path)
	return append([]byte(head), src...)
}

// lowerCopy copies the packages below roots of the module in dir (in the
// module cache, where the go command allows no overlay) with gomod as its
// go.mod and every Go file keeping language version lang, and returns the
// copy's directory. The copy is kept in the user's cache directory under a
// name that says what it holds, so that the next run finds it, and the go
// command's build cache its compiled packages.
func lowerCopy(dir string, roots []string, lang, gomod string) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s", dir, strings.Join(roots, ","), lang, gomod)
	dst := filepath.Join(base, "lockscope", "lowered", fmt.Sprintf("%s-%x", filepath.Base(dir), h.Sum64()))
	if _, err := os.Stat(filepath.Join(dst, "go.mod")); err == nil {
		return dst, nil // written whole by an earlier run
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	for _, r := range roots {
		err := filepath.WalkDir(filepath.Join(dir, r), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if d.IsDir() {
				if name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, ".") {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if strings.HasSuffix(name, ".go") {
				src = withLang(path, src, lang)
			}
			rel, _ := filepath.Rel(dir, path)
			out := filepath.Join(tmp, rel)
			if err := os.MkdirAll(filepath.Dir(out), 0o777); err != nil {
				return err
			}
			return os.WriteFile(out, src, 0o666)
		})
		if err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte(gomod), 0o666); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		if _, serr := os.Stat(filepath.Join(dst, "go.mod")); serr == nil {
			return dst, nil // another run made it first
		}
		return "", err
	}
	return dst, nil
}
