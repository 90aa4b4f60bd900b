package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lockscope/lockscope/cmd/lockscope/internal/gotool"
	"github.com/lockscope/lockscope/cmd/lockscope/internal/rewrite"
)

const goUsage = `usage: lockscope [-v] [-lockscope-dir dir] [-deps all|modules] %[1]s [go %[1]s flags] [packages] [arguments]

Runs "go %[1]s" on the current module with every import of "sync" in the
module's own packages replaced by github.com/lockscope/lockscope/debugmutex,
so every sync.Mutex and sync.RWMutex there is a debugmutex one. No file of
the module changes: rewritten copies go to a temporary directory and reach
the go command through -overlay, and a temporary copy of go.mod that
requires lockscope reaches it through -modfile (-mod=mod lets the go command
complete that copy; pass your own -mod to override). The module keeps its
go line, and with it its language version (loop variables), vet's rules and
its GODEBUG defaults: when it is older than lockscope's, lockscope's go.mod
and sources reach the build through the overlay too, lowered to the
module's go line, each of lockscope's files keeping its own language
version with a //go:build line. Packages of other
modules and of the standard library keep sync, as does an import marked
//lockscope:keep:

	import stdsync "sync" //lockscope:keep

With -deps=all, the dependency modules' packages get debugmutex too, and
with -deps=pattern,... those of the modules whose paths match ("..."
matches any string: golang.org/x/...). The module cache refuses
overlays, so each is a copy with its imports of sync swapped, reached
through a replace directive in the temporary go.mod; copies are kept per
module version and lockscope binary in the user cache directory
(LOCKSCOPE_DEPS_CACHE to put them elsewhere). The standard library,
lockscope and the modules its go.mod requires always keep sync. A swapped
module that does not build is named and kept on sync; the run goes on.

All arguments after %[1]s go to the go command unchanged, and its exit
status is lockscope's. For test, the lock problems the tests report are
printed again at the end, grouped: go test shows the output of a package
only when it fails. They are also in LOCKSCOPE_REPORT_FILE if you set it
(made absolute, as each test runs in its own directory); lockscope report
reads that file, and exits 1 if it holds any problem, for CI:

	LOCKSCOPE_REPORT_FILE=locks.jsonl lockscope test ./... && lockscope report locks.jsonl

Every test binary ends with inspect.Exiting, which reports what its end
makes certain: locks still held by goroutines that have exited, goroutines
stuck in a recursive Lock. lockscope adds a TestMain to a package that has
none, and in one that has, wraps each m.Run(); goleak.VerifyTestMain(m)
gets a wrapper of m whose Run does the same. A TestMain that leaves m.Run
to another function of its own is left alone, and a package whose tests
name the frames below TestMain (main.main: an Example that prints its
stack) gets none, since the added frame would change what they see; it
says so.

With LOCKSCOPE_PROFILE_DIR set, every test binary writes its lock profiles
there (through profiler/autoprofile) when it ends, named by package
(example.com_store.test-contention.pb.gz, replaced by the next run, as go
test -mutexprofile's are), and lockscope test ends with the most contended
locks of the run. The profiler's pprof module comes into the build then.

A package that does not build is said to have not built, not to be free of
lock problems. An interrupt or termination is passed on to the go command
and lockscope removes its temporary directory when it ends, as it does
when its output is closed early (lockscope vet . | head).

Your own -overlay is merged; your own -modfile (or GOFLAGS=-modfile=...)
is the base of the temporary one. Workspace mode (go.work) is refused. LOCKSCOPE_* environment variables reach
the program as usual: see the debugmutex documentation.

The lockscope module used is, in order: -lockscope-dir or
LOCKSCOPE_MODULE_DIR (a checkout, used through a replace directive); the
version this binary was installed at; for a development build, the checkout
it was built from.

Flags before %[1]s (-lockscope-dir and -deps may also follow it):
  -v                  list the files rewritten and the packages left alone
  -lockscope-dir dir  use the lockscope checkout in dir
  -deps all|modules   swap sync in dependency modules too (see above)
`

// cmdGo runs go test, build, run or vet with debugmutex swapped in.
func cmdGo(sub string, args []string, gl globals, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprintf(stderr, goUsage, sub)
		return 0
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "lockscope %s: "+format+"\n", append([]any{sub}, a...)...)
		return 1
	}
	ga, err := parseGoArgs(sub, args)
	if err != nil {
		fmt.Fprintf(stderr, "lockscope %s: %v\n", sub, err)
		return 2
	}
	if ga.lockscope != "" {
		gl.lockscopeDir = ga.lockscope
	}
	if ga.deps != "" {
		gl.deps = ga.deps
	}
	var depsPat gotool.DepsPattern
	if gl.deps != "" {
		if depsPat, err = gotool.ParseDepsPattern(gl.deps); err != nil {
			fmt.Fprintf(stderr, "lockscope %s: %v\n", sub, err)
			return 2
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return fail("%v", err)
	}
	if ga.chdir != "" {
		wd = gotool.AbsIn(wd, ga.chdir)
	}

	env, err := gotool.ReadEnv(wd)
	if err != nil {
		return fail("%v", err)
	}
	if env.GOMOD == "" || env.GOMOD == os.DevNull {
		return fail("%s is not in a Go module (no go.mod found); lockscope %s works on modules", wd, sub)
	}
	if env.GOWORK != "" && env.GOWORK != "off" {
		return fail("workspace mode (%s) is not supported: the go command refuses -modfile there.\n"+
			"\tRun with GOWORK=off, or require lockscope in the module and use: lockscope swap", env.GOWORK)
	}
	// GOFLAGS may carry -modfile, -overlay or -mod too: they count as the
	// user's, unless the command line has its own.
	var goflags []string
	for _, f := range strings.Fields(env.GOFLAGS) {
		name, value, _ := strings.Cut(strings.TrimLeft(f, "-"), "=")
		switch name {
		case "modfile":
			if ga.modfile == "" {
				ga.modfile = value
			}
			continue
		case "overlay":
			if ga.overlay == "" {
				ga.overlay = value
			}
			continue
		case "mod":
			if !ga.mod {
				ga.modValue = value
			}
			ga.mod = true
		}
		goflags = append(goflags, f)
	}
	if ga.modValue == "vendor" {
		return fail("-mod=vendor is not supported: the debug build requires lockscope (and, with -deps, copies of\n" +
			"\tthe swapped modules), which vendor/modules.txt does not list. Leave -mod out: lockscope then builds\n" +
			"\tfrom the module cache (-mod=mod), as it does by default when a vendor directory exists")
	}
	root := filepath.Dir(env.GOMOD)

	tmp, err := os.MkdirTemp("", "lockscope-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(tmp)
	sigs := catchSignals(tmp)
	defer sigs.stop()

	// The overlay: the user's, then ours on top.
	replace := map[string]string{}
	if ga.overlay != "" {
		if replace, err = gotool.ReadOverlay(gotool.AbsIn(wd, ga.overlay), wd); err != nil {
			return fail("reading -overlay: %v", err)
		}
	}
	ov := gotool.Overlayer{Root: root, Tmp: filepath.Join(tmp, "src"), User: replace, ModCache: env.GOMODCACHE, Rewrite: swapCopy}
	baseMod := env.GOMOD
	if ga.modfile != "" {
		baseMod = gotool.AbsIn(wd, ga.modfile)
	}
	mod, err := gotool.ReadModInfo(wd, baseMod)
	if err != nil {
		return fail("%v", err)
	}
	if mod.Module.Path == gotool.Module {
		// lockscope on itself: debugmutex and what it imports must keep sync.
		ov.Exclude = []string{filepath.Join(root, "debugmutex"), filepath.Join(root, "internal")}
	}
	swapped, err := ov.Run()
	if err != nil {
		return fail("%v", err)
	}
	// LOCKSCOPE_PROFILE_DIR: every test binary writes its profiles there
	// (through profiler/autoprofile, which lockscope adds to it).
	profileDir := ""
	if v := os.Getenv("LOCKSCOPE_PROFILE_DIR"); v != "" && sub == "test" && mod.Module.Path != gotool.Module {
		profileDir = gotool.AbsIn(wd, v)
	}
	var mains map[string]string
	if sub == "test" && mod.Module.Path != gotool.Module {
		// Every test binary ends with inspect.Exiting.
		read := func(path string) ([]byte, error) {
			if p, ok := swapped[path]; ok {
				return os.ReadFile(p)
			}
			if p, ok := replace[path]; ok {
				return os.ReadFile(p)
			}
			return os.ReadFile(path)
		}
		var unchecked []string
		if mains, unchecked, err = rewrite.ExitingMain(root, filepath.Join(tmp, "src"), ov.Tests, read, profileDir != ""); err != nil {
			return fail("%v", err)
		}
		for _, dir := range unchecked {
			fmt.Fprintf(stderr, "lockscope: %s: its tests name the frames below TestMain (main.main), so lockscope adds none: the end of its test binary is not checked\n", relTo(wd, dir))
		}
	}
	// The module file: a copy of the user's (or their -modfile) requiring
	// lockscope.
	modfile, src, low, err := gotool.TempModfile(wd, tmp, env.GOMODCACHE, baseMod, mod, gl.lockscopeDir, profileDir != "")
	if err != nil {
		return fail("%v", err)
	}
	merged := make(map[string]string, len(replace)+len(swapped))
	for k, v := range replace {
		merged[k] = v
	}
	for k, v := range swapped {
		merged[k] = v
	}
	maps.Copy(merged, mains) // on top of the swapped copies they are made from
	if low != nil {
		maps.Copy(merged, low.Overlay)
	}
	overlayFile := filepath.Join(tmp, "overlay.json")
	if err := gotool.WriteOverlay(overlayFile, merged); err != nil {
		return fail("%v", err)
	}

	childEnv := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOFLAGS=") })
	childEnv = append(childEnv, "GOFLAGS="+strings.Join(goflags, " "))

	// -deps: dependency modules get debugmutex too, through copies that
	// replace directives in the temporary go.mod point at.
	var deps depsResult
	if gl.deps != "" || gl.verbose {
		mods, err := gotool.BuildModules(wd, childEnv, modfile, overlayFile, ga.rest, sub)
		if err != nil {
			return fail("%v", err)
		}
		deps.mods = mods
	}
	if gl.deps != "" {
		if deps, err = swapDependencies(wd, childEnv, modfile, overlayFile, tmp, mod, deps.mods, depsPat, gl.verbose, stderr); err != nil {
			return fail("-deps: %v", err)
		}
	}

	if gl.verbose {
		for _, f := range slices.Sorted(maps.Keys(swapped)) {
			fmt.Fprintf(stderr, "lockscope: debugmutex in %s\n", relTo(wd, f))
		}
		for _, s := range deps.swapped {
			cached := ""
			if s.Cached {
				cached = ", copy cached"
			}
			fmt.Fprintf(stderr, "lockscope: debugmutex in module %s@%s (%s%s)\n", s.Path, s.Version, plural(s.Files, "file"), cached)
		}
		if src.Why != "" {
			where := src.Version
			if src.Dir != "" {
				where = src.Dir
			}
			fmt.Fprintf(stderr, "lockscope: using lockscope %s (%s)\n", where, src.Why)
		}
	}
	if len(deps.swapped) > 0 {
		fmt.Fprintf(stderr, "lockscope: debugmutex replaces sync in %s of %s and %s of %s; the standard library keeps sync%s\n",
			plural(len(swapped), "file"), mod.Module.Path, plural(deps.files(), "file"), plural(len(deps.swapped), "dependency module"),
			map[bool]string{true: "", false: " (-v lists them)"}[gl.verbose])
	} else {
		fmt.Fprintf(stderr, "lockscope: debugmutex replaces sync in %s of %s; other modules keep sync%s\n",
			plural(len(swapped), "file"), mod.Module.Path, map[bool]string{true: "", false: " (-v lists them)"}[gl.verbose])
	}

	goArgs := []string{sub}
	if ga.chdir != "" {
		goArgs = append(goArgs, "-C", ga.chdir)
	}
	goArgs = append(goArgs, "-modfile="+modfile, "-overlay="+overlayFile)
	if !ga.mod {
		goArgs = append(goArgs, "-mod=mod")
	}
	goArgs = append(goArgs, ga.rest...)

	if profileDir != "" {
		childEnv = slices.DeleteFunc(childEnv, func(kv string) bool { return strings.HasPrefix(kv, "LOCKSCOPE_PROFILE_DIR=") })
		childEnv = append(childEnv, "LOCKSCOPE_PROFILE_DIR="+profileDir)
	}

	if gl.verbose {
		listLeftAlone(deps, stderr)
	}

	// go test shows the output of a package's tests only when they fail
	// (or with -v): the reports of passing packages would be lost. So the
	// tests append their reports to a file too, and lockscope prints them
	// at the end.
	var reports *reportTail
	if sub == "test" {
		reports, childEnv, err = newReportTail(wd, tmp, childEnv)
		if err != nil {
			return fail("%v", err)
		}
		if len(deps.swapped) > 0 {
			reports.modules = []string{mod.Module.Path}
			for _, m := range deps.swapped {
				reports.modules = append(reports.modules, m.Path)
			}
		}
	}
	// Name the user's files, not the rewritten copies, in what go says.
	// go run's output is the program's own, perhaps interactive: as is.
	var filters []*rewrite.PathFilter
	stdout, errout := io.Writer(os.Stdout), io.Writer(os.Stderr)
	if sub != "run" {
		from, to := rewrite.CopiesPattern(), relTo(wd, root)+string(filepath.Separator)
		filters = []*rewrite.PathFilter{rewrite.NewPathFilter(os.Stdout, from, to), rewrite.NewPathFilter(os.Stderr, from, to)}
		stdout, errout = filters[0], filters[1]
	}
	var prog progress
	if sub != "run" {
		fmt.Fprintf(stderr, "lockscope: go %s: building%s with debugmutex (go %[1]s may say nothing until a package is done)\n",
			sub, map[bool]string{true: " and testing", false: ""}[sub == "test"])
		stdout, errout = counting{stdout, &prog}, counting{errout, &prog}
		prog.watch(sub, stderr)
	}
	started := time.Now()
	code := runChild(exec.Command("go", goArgs...), sigs, childEnv, stdout, errout, stderr)
	prog.stop()
	if now := gotool.GoLine(modfile); gotool.GoRaised(mod.Go, now) {
		// The go command raised the go line: a module in the build's graph
		// needs a newer one. Say so; the language version changed with it.
		fmt.Fprintf(stderr, "lockscope: note: go.mod says go %s; the build's module graph needed go %s, and used it\n", mod.Go, now)
	}
	mixed := false
	for _, f := range filters {
		f.Flush()
		mixed = mixed || f.Mixed()
	}
	if mixed {
		fmt.Fprintf(stderr, "lockscope: %s hands one of its locks to code outside the module (or takes one from it)\n"+
			"\tthat wants a sync lock; lockscope %s swaps only the module's own code. Keep that lock a sync one\n"+
			"\twith a second import marked to stay:  stdsync \"sync\" //%s  and declare it as a stdsync.Mutex.\n",
			mod.Module.Path, sub, rewrite.KeepMark)
	}
	if reports != nil {
		reports.print(stderr, code, filters[0].BuildFailed())
	}
	if profileDir != "" {
		printContended(stderr, wd, profileDir, started, 5)
	}
	return code
}

// swapCopy is what the overlay holds of a Go file of the module: the file
// with its imports of sync swapped for debugmutex and its package-level
// locks named by their declarations. There is none for a file that does
// not import sync, or does not parse (the go command will say what is
// wrong with it).
func swapCopy(path string, src []byte) ([]byte, bool) {
	newSrc, changed, err := rewrite.Swap(path, src, true)
	if err != nil || !changed {
		return nil, false
	}
	return rewrite.DeclNames(path, newSrc), true
}

// listLeftAlone names, for -v, the packages outside the main module that
// import sync and so keep the real locks.
func listLeftAlone(deps depsResult, stderr io.Writer) {
	left := gotool.LeftAlone(deps.mods, deps.isSwapped)
	if len(left) == 0 {
		if len(deps.swapped) > 0 {
			fmt.Fprintf(stderr, "lockscope: every package that imports sync is in the main module or a swapped -deps module\n")
		} else {
			fmt.Fprintf(stderr, "lockscope: no package outside the main module imports sync\n")
		}
		return
	}
	if len(deps.swapped) > 0 {
		fmt.Fprintf(stderr, "lockscope: left alone (outside the main module and the -deps modules), these packages keep sync:\n")
	} else {
		fmt.Fprintf(stderr, "lockscope: left alone (not in the main module), these packages keep sync:\n")
	}
	for _, p := range left {
		fmt.Fprintf(stderr, "\t%s\n", p)
	}
}

// relTo names path relative to dir when it is below dir, as it is given
// otherwise.
func relTo(dir, path string) string {
	if rel, err := filepath.Rel(dir, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

// plural returns "1 file", "2 files", "2 binaries".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "ry") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
