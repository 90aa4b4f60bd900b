package gotool

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// A BuildModule is a module other than the main one that provides packages
// to a build.
type BuildModule struct {
	Path, Version string
	// Dir is where its source is: in the module cache, or the directory
	// a replace directive names.
	Dir string
	// Local is set when Dir comes from a replace directive naming a
	// directory: its content may change between runs, so its copy is
	// not cached.
	Local bool
	// Packages are the build's packages of the module; Sync says which
	// import sync.
	Packages []string
	Sync     map[string]bool
	// Imports are what each of Packages imports.
	Imports map[string][]string
}

// BuildModules lists the modules other than the main one whose packages
// the build of sub with the go command arguments rest (packages and
// flags) imports, in module path order. modfile and overlay are the
// build's; env its environment.
func BuildModules(wd string, env []string, modfile, overlay string, rest []string, sub string) ([]BuildModule, error) {
	args := append([]string{"list", "-e", "-deps", "-test", "-mod=mod", "-modfile=" + modfile, "-overlay=" + overlay,
		"-json=ImportPath,ForTest,Module,Imports,Standard"}, buildPatterns(rest, sub)...)
	out, err := Output(wd, env, args...)
	if err != nil {
		return nil, err
	}
	byPath := map[string]*BuildModule{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath, ForTest string
			Standard            bool
			Imports             []string
			Module              *struct {
				Path, Version, Dir string
				Main               bool
				Replace            *struct{ Path, Version, Dir string }
			}
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading go list's output: %v", err)
		}
		if p.Standard || p.Module == nil || p.Module.Main || p.ForTest != "" || p.Module.Dir == "" {
			continue
		}
		m := byPath[p.Module.Path]
		if m == nil {
			m = &BuildModule{Path: p.Module.Path, Version: p.Module.Version, Dir: p.Module.Dir, Sync: map[string]bool{}, Imports: map[string][]string{}}
			m.Local = p.Module.Replace != nil && p.Module.Replace.Version == ""
			byPath[m.Path] = m
		}
		if !slices.Contains(m.Packages, p.ImportPath) {
			m.Packages = append(m.Packages, p.ImportPath)
		}
		m.Imports[p.ImportPath] = p.Imports
		if slices.Contains(p.Imports, "sync") {
			m.Sync[p.ImportPath] = true
		}
	}
	var mods []BuildModule
	for _, m := range byPath {
		slices.Sort(m.Packages)
		mods = append(mods, *m)
	}
	slices.SortFunc(mods, func(a, b BuildModule) int { return strings.Compare(a.Path, b.Path) })
	return mods, nil
}

// buildPatterns picks the package patterns out of a go command line (all
// of the module for go run, whose arguments are the program's).
func buildPatterns(rest []string, sub string) []string {
	pkgs := []string{"./..."}
	if sub != "run" {
		var p []string
		for _, a := range rest {
			if a == "-args" || a == "--args" || a == "--" {
				break
			}
			if !strings.HasPrefix(a, "-") && (strings.HasPrefix(a, ".") || strings.Contains(a, "/")) {
				p = append(p, a)
			}
		}
		if len(p) > 0 {
			pkgs = p
		}
	}
	return pkgs
}

// LockscopeImports returns lockscope's module and the modules that
// lockscope's packages in the build (mods, see BuildModules) import,
// directly or not: never swapped, since a swapped goid would import
// debugmutex back, and a swapped gRPC under the exporter would have
// lockscope record its own exporting. A module lockscope does not import
// in this build (gRPC, in a service that only swaps its locks) is the
// program's, and can be swapped.
func LockscopeImports(mods []BuildModule) map[string]bool {
	owner := map[string]string{}
	imports := map[string][]string{}
	for _, m := range mods {
		for _, p := range m.Packages {
			owner[p] = m.Path
			imports[p] = m.Imports[p]
		}
	}
	keep := map[string]bool{Module: true}
	seen := map[string]bool{}
	var queue []string
	for p, m := range owner {
		if m == Module {
			queue = append(queue, p)
			seen[p] = true
		}
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, q := range imports[p] {
			if m, ok := owner[q]; ok && !seen[q] {
				seen[q] = true
				keep[m] = true
				queue = append(queue, q)
			}
		}
	}
	return keep
}

// LockscopeModules returns lockscope's module and the modules its go.mod
// requires, as the build (modfile) sees lockscope: for lockscope's own
// build, whose packages are the main module's.
func LockscopeModules(wd string, env []string, modfile string) (map[string]bool, error) {
	out, err := Output(wd, env, "list", "-m", "-mod=mod", "-modfile="+modfile, "-f", "{{.GoMod}}", Module)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{Module: true}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" {
		return keep, nil
	}
	info, err := ReadModInfo(wd, gomod)
	if err != nil {
		return nil, err
	}
	for _, r := range info.Require {
		keep[r.Path] = true
	}
	return keep, nil
}

// A DepsPattern says which dependency modules get debugmutex: "all", or a
// comma-separated list of module path patterns, in which "..." matches any
// string ("github.com/etcd-io/..." is every module under that path, and
// that path itself).
type DepsPattern struct {
	all  bool
	res  []*regexp.Regexp
	Text string
}

// ParseDepsPattern parses the value of -deps.
func ParseDepsPattern(s string) (DepsPattern, error) {
	d := DepsPattern{Text: s}
	if s == "all" {
		d.all = true
		return d, nil
	}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" || strings.ContainsAny(p, " \t\"'") {
			return DepsPattern{}, fmt.Errorf("-deps=%q: want all, or module path patterns separated by commas (golang.org/x/..., example.com/db)", s)
		}
		re := regexp.QuoteMeta(p)
		if strings.HasSuffix(re, `/\.\.\.`) {
			re = strings.TrimSuffix(re, `/\.\.\.`) + `(/\.\.\.)?`
		}
		re = strings.ReplaceAll(re, `\.\.\.`, `.*`)
		d.res = append(d.res, regexp.MustCompile(`^`+re+`$`))
	}
	return d, nil
}

// Match says whether module path gets debugmutex.
func (d DepsPattern) Match(path string) bool {
	if d.all {
		return true
	}
	for _, re := range d.res {
		if re.MatchString(path) {
			return true
		}
	}
	return false
}

// A SwappedModule is a dependency module whose copy has debugmutex in
// place of sync.
type SwappedModule struct {
	Path, Version string
	// Copy is the directory of the copy, reached through a replace
	// directive.
	Copy string
	// Files is how many Go files the copy changed.
	Files int
	// Cached is set when the copy was made by an earlier run.
	Cached bool
}

// EnvDepsCache names the directory that holds the copies of dependency
// modules, in place of <user cache dir>/lockscope/deps.
const EnvDepsCache = "LOCKSCOPE_DEPS_CACHE"

// DepsCacheDir is where copies of dependency modules are kept, per
// lockscope binary (a copy is what this binary's rewrite made of a
// module version): <user cache dir>/lockscope/deps/<binary hash>, or
// $LOCKSCOPE_DEPS_CACHE/<binary hash>.
func DepsCacheDir() (string, error) {
	dir := os.Getenv(EnvDepsCache)
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(cache, "lockscope", "deps")
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return filepath.Join(dir, hex.EncodeToString(h.Sum(nil))[:16]), nil
}

// SwapModule returns the copy of module m with every Go file passed
// through rewrite (see Overlayer.Rewrite). A module version's copy is made
// once in cache (atomically: built beside it, then renamed into place) and
// reused; a module replaced by a local directory is copied into tmp on
// every run.
func SwapModule(m BuildModule, cache, tmp string, rewrite func(path string, src []byte) ([]byte, bool)) (SwappedModule, error) {
	s := SwappedModule{Path: m.Path, Version: m.Version}
	if m.Local || m.Version == "" {
		s.Copy = filepath.Join(tmp, "deps", escapePath(m.Path))
		n, err := copyModule(m.Dir, s.Copy, m.Path, true, rewrite)
		s.Files = n
		return s, err
	}
	s.Copy = filepath.Join(cache, escapePath(m.Path)+"@"+escapePath(m.Version))
	if data, err := os.ReadFile(filepath.Join(s.Copy, ".lockscope-files")); err == nil {
		if _, err := fmt.Sscan(string(data), &s.Files); err == nil {
			s.Cached = true
			return s, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(s.Copy), 0o777); err != nil {
		return s, err
	}
	building, err := os.MkdirTemp(cache, ".building-")
	if err != nil {
		return s, err
	}
	defer os.RemoveAll(building)
	n, err := copyModule(m.Dir, building, m.Path, false, rewrite)
	if err != nil {
		return s, err
	}
	s.Files = n
	// The marker comes last: a copy without it is not whole.
	if err := os.WriteFile(filepath.Join(building, ".lockscope-files"), fmt.Appendf(nil, "%d\n", n), 0o666); err != nil {
		return s, err
	}
	if err := os.Rename(building, s.Copy); err != nil {
		// Another run made it meanwhile (rename onto a non-empty
		// directory fails): use theirs if it is whole.
		if _, serr := os.Stat(filepath.Join(s.Copy, ".lockscope-files")); serr == nil {
			return s, nil
		}
		os.RemoveAll(s.Copy) // a copy left half-made by an older lockscope
		if err := os.Rename(building, s.Copy); err != nil {
			return s, err
		}
	}
	return s, nil
}

// copyModule copies the module in dir (path modPath) to dst, Go files
// through rewrite, and returns how many Go files rewrite changed. Files in
// the module cache are read-only; the copies are not. local is set for a
// directory of the user's, whose nested modules, vendor and hidden
// directories the go command does not see as part of the module; a module
// cache directory holds exactly the module. A module without a go.mod
// gets one, as the go command makes for it.
func copyModule(dir, dst, modPath string, local bool, rewrite func(path string, src []byte) ([]byte, bool)) (int, error) {
	changed := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if local && path != dir {
				name := d.Name()
				if name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
					return filepath.SkipDir
				}
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return os.MkdirAll(target, 0o777)
		}
		if !d.Type().IsRegular() {
			return nil // the module cache holds none; a local module's symlinks are not the module's
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.HasSuffix(path, ".go") {
			if out, ok := rewrite(path, src); ok {
				src = out
				changed++
			}
			// Every Go file of the copy, changed or not, names the
			// module's own file in stacks and errors.
			src = originalPositions(path, src)
		}
		return os.WriteFile(target, src, 0o666)
	})
	if err != nil {
		return 0, err
	}
	if _, err := os.Stat(filepath.Join(dst, "go.mod")); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(filepath.Join(dst, "go.mod"), []byte("module "+modPath+"\n"), 0o666); err != nil {
			return 0, err
		}
	}
	return changed, nil
}

// originalPositions returns src, the copy of the Go file path, with a line
// directive that gives what follows its package clause the positions of
// path: stacks, reports and compiler errors then name the module's own
// file (in the module cache), which a user can open, not the copy. The
// copy changes only imports, so lines match. The directive goes after the
// package name, where no build constraint can be disturbed; a cgo file,
// whose preamble cgo rewrites with line directives of its own, is left
// as it is.
func originalPositions(path string, src []byte) []byte {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ImportsOnly)
	if err != nil {
		return src
	}
	for _, spec := range f.Imports {
		if spec.Path.Value == `"C"` {
			return src
		}
	}
	end := fset.Position(f.Name.End())
	dir := fmt.Sprintf("/*line %s:%d:%d*/", path, end.Line, end.Column)
	return slices.Concat(src[:end.Offset], []byte(dir), src[end.Offset:])
}

// escapePath escapes a module path or version as the module cache does:
// every upper-case letter becomes '!' and its lower-case form, so that
// paths differing only in case do not collide on case-insensitive file
// systems.
func escapePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return filepath.FromSlash(b.String())
}

// BuildErrors runs go build on pkgs with the build's modfile and overlay,
// and returns, for each package that failed, the first lines go said of
// it; an error only when go could not be run or failed without naming a
// package.
func BuildErrors(wd string, env []string, modfile, overlay string, pkgs []string) (map[string]string, error) {
	args := append([]string{"build", "-mod=mod", "-modfile=" + modfile, "-overlay=" + overlay}, pkgs...)
	out, err := combinedOutput(wd, env, args...)
	if err == nil {
		return nil, nil
	}
	failed := map[string]string{}
	cur := ""
	for line := range strings.Lines(string(out)) {
		line = strings.TrimRight(line, "\n")
		if p, ok := strings.CutPrefix(line, "# "); ok {
			cur = strings.Fields(p + " ")[0]
			continue
		}
		if p, ok := strings.CutPrefix(line, "package "); ok {
			if i := strings.Index(p, ":"); i > 0 {
				cur = p[:i]
			}
		}
		if cur != "" && len(strings.Split(failed[cur], "\n")) <= 3 {
			failed[cur] = strings.TrimPrefix(failed[cur]+"\n"+line, "\n")
		}
	}
	if len(failed) == 0 {
		return nil, fmt.Errorf("go build of the swapped dependencies failed: %v\n%s", err, out)
	}
	return failed, nil
}
