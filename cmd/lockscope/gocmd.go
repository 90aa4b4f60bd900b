package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const goUsage = `usage: lockscope [-v] [-lockscope-dir dir] %[1]s [go %[1]s flags] [packages] [arguments]

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

All arguments after %[1]s go to the go command unchanged, and its exit
status is lockscope's. For test, the lock problems the tests report are
printed again at the end, grouped: go test shows the output of a package
only when it fails. They are also in LOCKSCOPE_REPORT_FILE if you set it
(made absolute, as each test runs in its own directory); lockscope report
reads that file, and exits 1 if it holds any problem, for CI:

	LOCKSCOPE_REPORT_FILE=locks.jsonl lockscope test ./... && lockscope report locks.jsonl

Every test binary ends with debugmutex.Exiting, which reports what its end
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

Flags before %[1]s:
  -v                  list the files rewritten and the packages left alone
  -lockscope-dir dir  use the lockscope checkout in dir
`

// goValueFlags are the go command flags that take a separate value
// ("-o file"): scanning the arguments, the value is not a package.
var goValueFlags = map[string]bool{
	"C": true, "p": true, "o": true, "asmflags": true, "buildmode": true, "compiler": true,
	"gccgoflags": true, "gcflags": true, "installsuffix": true, "ldflags": true, "mod": true,
	"modfile": true, "overlay": true, "pgo": true, "pkgdir": true, "tags": true,
	"toolexec": true, "exec": true, "covermode": true, "coverpkg": true, "coverprofile": true,
	"vettool": true, "run": true, "skip": true, "bench": true, "benchtime": true, "count": true,
	"cpu": true, "parallel": true, "timeout": true, "list": true, "fuzz": true, "fuzztime": true,
	"fuzzminimizetime": true, "shuffle": true, "outputdir": true, "blockprofile": true,
	"blockprofilerate": true, "cpuprofile": true, "memprofile": true, "memprofilerate": true,
	"mutexprofile": true, "mutexprofilefraction": true, "trace": true, "lockscope-dir": true,
}

// goArgs is what lockscope needs to know about the go command line.
type goArgs struct {
	rest      []string // arguments for the go command, without the ones below
	chdir     string   // -C
	overlay   string   // the user's -overlay
	modfile   string   // the user's -modfile
	mod       bool     // the user gave -mod
	lockscope string   // -lockscope-dir
}

// parseGoArgs picks out of args the flags lockscope must know about. Flags
// are looked for up to the first non-flag argument for run (the rest belongs
// to the program), and up to -args for test (which allows flags after the
// packages).
func parseGoArgs(sub string, args []string) (goArgs, error) {
	var g goArgs
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" || (sub == "test" && (a == "-args" || a == "--args")) {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if sub == "test" {
				g.rest = append(g.rest, a)
				continue
			}
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var dst *string
		switch name {
		case "C":
			if i != 0 {
				return g, errors.New("-C must be the first flag (as for the go command)")
			}
			dst = &g.chdir
		case "overlay":
			dst = &g.overlay
		case "modfile":
			dst = &g.modfile
		case "lockscope-dir":
			dst = &g.lockscope
		case "mod":
			g.mod = true
		}
		if !hasValue && goValueFlags[name] {
			if i+1 >= len(args) {
				return g, fmt.Errorf("flag needs an argument: %s", a)
			}
			value = args[i+1]
			if dst == nil {
				g.rest = append(g.rest, a, value)
			}
			i++
		} else if dst == nil {
			g.rest = append(g.rest, a)
		}
		if dst != nil {
			*dst = value
		}
	}
	g.rest = append(g.rest, args[i:]...)
	return g, nil
}

// goEnv is what lockscope reads from go env.
type goEnv struct {
	GOMOD, GOWORK, GOFLAGS, GOMODCACHE string
}

// modInfo is the part of go mod edit -json that lockscope reads.
type modInfo struct {
	Module  struct{ Path string }
	Go      string
	Require []struct{ Path, Version string }
	Replace []struct{ Old struct{ Path string } }
}

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
	wd, err := os.Getwd()
	if err != nil {
		return fail("%v", err)
	}
	if ga.chdir != "" {
		wd = absIn(wd, ga.chdir)
	}

	var env goEnv
	out, err := goOutput(wd, nil, "env", "-json", "GOMOD", "GOWORK", "GOFLAGS", "GOMODCACHE")
	if err != nil {
		return fail("%v", err)
	}
	if err := json.Unmarshal(out, &env); err != nil {
		return fail("reading go env: %v", err)
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
			ga.mod = true
		}
		goflags = append(goflags, f)
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
		if replace, err = readOverlay(absIn(wd, ga.overlay), wd); err != nil {
			return fail("reading -overlay: %v", err)
		}
	}
	ov := overlayer{root: root, tmp: filepath.Join(tmp, "src"), user: replace, modcache: env.GOMODCACHE}
	baseMod := env.GOMOD
	if ga.modfile != "" {
		baseMod = absIn(wd, ga.modfile)
	}
	mod, err := readModInfo(wd, baseMod)
	if err != nil {
		return fail("%v", err)
	}
	if mod.Module.Path == lockscopeModule {
		// lockscope on itself: debugmutex and what it imports must keep sync.
		ov.exclude = []string{filepath.Join(root, "debugmutex"), filepath.Join(root, "internal")}
	}
	swapped, err := ov.run()
	if err != nil {
		return fail("%v", err)
	}
	// LOCKSCOPE_PROFILE_DIR: every test binary writes its profiles there
	// (through profiler/autoprofile, which lockscope adds to it).
	profileDir := ""
	if v := os.Getenv("LOCKSCOPE_PROFILE_DIR"); v != "" && sub == "test" && mod.Module.Path != lockscopeModule {
		profileDir = absIn(wd, v)
	}
	var mains map[string]string
	if sub == "test" && mod.Module.Path != lockscopeModule {
		// Every test binary ends with debugmutex.Exiting.
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
		if mains, unchecked, err = exitingMain(root, filepath.Join(tmp, "src"), ov.tests, read, profileDir != ""); err != nil {
			return fail("%v", err)
		}
		for _, dir := range unchecked {
			fmt.Fprintf(stderr, "lockscope: %s: its tests name the frames below TestMain (main.main), so lockscope adds none: the end of its test binary is not checked\n", relTo(wd, dir))
		}
	}
	// The module file: a copy of the user's (or their -modfile) requiring
	// lockscope.
	modfile, src, low, err := tempModfile(wd, tmp, env.GOMODCACHE, baseMod, mod, gl.lockscopeDir, profileDir != "")
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
		maps.Copy(merged, low.overlay)
	}
	ovJSON, err := json.MarshalIndent(struct{ Replace map[string]string }{merged}, "", "\t")
	if err != nil {
		return fail("%v", err)
	}
	overlayFile := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(overlayFile, ovJSON, 0o666); err != nil {
		return fail("%v", err)
	}

	if gl.verbose {
		for _, f := range sortedKeys(swapped) {
			fmt.Fprintf(stderr, "lockscope: debugmutex in %s\n", relTo(wd, f))
		}
		if src.Why != "" {
			where := src.Version
			if src.Dir != "" {
				where = src.Dir
			}
			fmt.Fprintf(stderr, "lockscope: using lockscope %s (%s)\n", where, src.Why)
		}
	}
	fmt.Fprintf(stderr, "lockscope: debugmutex replaces sync in %s of %s; other modules keep sync%s\n",
		plural(len(swapped), "file"), mod.Module.Path, map[bool]string{true: "", false: " (-v lists them)"}[gl.verbose])

	goArgs := []string{sub}
	if ga.chdir != "" {
		goArgs = append(goArgs, "-C", ga.chdir)
	}
	goArgs = append(goArgs, "-modfile="+modfile, "-overlay="+overlayFile)
	if !ga.mod {
		goArgs = append(goArgs, "-mod=mod")
	}
	goArgs = append(goArgs, ga.rest...)

	childEnv := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOFLAGS=") })
	childEnv = append(childEnv, "GOFLAGS="+strings.Join(goflags, " "))

	if profileDir != "" {
		childEnv = slices.DeleteFunc(childEnv, func(kv string) bool { return strings.HasPrefix(kv, "LOCKSCOPE_PROFILE_DIR=") })
		childEnv = append(childEnv, "LOCKSCOPE_PROFILE_DIR="+profileDir)
	}

	if gl.verbose {
		listLeftAlone(wd, childEnv, modfile, overlayFile, ga.rest, sub, stderr)
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
	}
	// Name the user's files, not the rewritten copies, in what go says.
	// go run's output is the program's own, perhaps interactive: as is.
	var filters []*pathFilter
	stdout, errout := io.Writer(os.Stdout), io.Writer(os.Stderr)
	if sub != "run" {
		from, to := copiesPattern(), relTo(wd, root)+string(filepath.Separator)
		filters = []*pathFilter{newPathFilter(os.Stdout, from, to), newPathFilter(os.Stderr, from, to)}
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
	if now := goLine(modfile); now != mod.Go && mod.Go != "" {
		// The go command raised the go line: a module in the build's graph
		// needs a newer one. Say so; the language version changed with it.
		fmt.Fprintf(stderr, "lockscope: note: go.mod says go %s; the build's module graph needed go %s, and used it\n", mod.Go, now)
	}
	mixed := false
	for _, f := range filters {
		f.Flush()
		mixed = mixed || f.mixed
	}
	if mixed {
		fmt.Fprintf(stderr, "lockscope: %s hands one of its locks to code outside the module (or takes one from it)\n"+
			"\tthat wants a sync lock; lockscope %s swaps only the module's own code. Keep that lock a sync one\n"+
			"\twith a second import marked to stay:  stdsync \"sync\" //%s  and declare it as a stdsync.Mutex.\n",
			mod.Module.Path, sub, keepMark)
	}
	if reports != nil {
		reports.print(stderr, code, filters[0].buildFailed)
	}
	if profileDir != "" {
		printContended(stderr, wd, profileDir, started, 5)
	}
	return code
}

// goLine returns the go line of a go.mod file, "" if it has none.
func goLine(gomod string) string {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "go" {
			return f[1]
		}
	}
	return ""
}

// reportTail collects the reports written to LOCKSCOPE_REPORT_FILE during
// one run: the user's file (from its current end) or a temporary one.
type reportTail struct {
	path   string
	offset int64
}

// newReportTail sets LOCKSCOPE_REPORT_FILE in env, made absolute because
// every test binary runs in its own package directory.
func newReportTail(wd, tmp string, env []string) (*reportTail, []string, error) {
	path := os.Getenv("LOCKSCOPE_REPORT_FILE")
	user := path != ""
	if !user {
		path = filepath.Join(tmp, "reports.jsonl")
	}
	path = absIn(wd, path)
	t := &reportTail{path: path}
	if fi, err := os.Stat(path); err == nil {
		t.offset = fi.Size()
	} else if user {
		// The tests create the file when they report; a clean run leaves
		// an empty one, so that lockscope report FILE says "no problems"
		// of a run that happened, and fails for one that did not.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, err
		}
		f.Close()
	}
	env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "LOCKSCOPE_REPORT_FILE=") })
	return t, append(env, "LOCKSCOPE_REPORT_FILE="+path), nil
}

// print writes the problems reported during the run, grouped, to w. code
// is go test's exit status and buildFailed the number of packages it did
// not build: "no lock problems" is said only of tests that ran.
func (t *reportTail) print(w io.Writer, code, buildFailed int) {
	none := func() {
		switch {
		case buildFailed > 0:
			fmt.Fprintf(w, "lockscope: the build failed: %s did not build, so %s tests did not run; no lock problems reported by the tests that ran\n",
				plural(buildFailed, "package"), map[bool]string{true: "its", false: "their"}[buildFailed == 1])
		case code != 0:
			fmt.Fprintf(w, "lockscope: go test failed (exit status %d); no lock problems reported by the tests that ran\n", code)
		default:
			fmt.Fprintln(w, "lockscope: no lock problems reported")
		}
	}
	f, err := os.Open(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		none()
		return
	}
	if err != nil {
		fmt.Fprintf(w, "lockscope: reading reports: %v\n", err)
		return
	}
	defer f.Close()
	if _, err := f.Seek(t.offset, io.SeekStart); err != nil {
		fmt.Fprintf(w, "lockscope: reading reports: %v\n", err)
		return
	}
	reports, lineErrs, err := readReports(t.path, f)
	for _, e := range lineErrs {
		fmt.Fprintf(w, "lockscope: %v\n", e)
	}
	if err != nil {
		fmt.Fprintf(w, "lockscope: reading reports: %v\n", err)
	}
	groups := groupReports(reports)
	if len(groups) == 0 {
		none()
		return
	}
	if buildFailed > 0 {
		fmt.Fprintf(w, "\nlockscope: %s did not build; the tests that ran reported these lock problems:\n", plural(buildFailed, "package"))
	}
	if buildFailed == 0 {
		fmt.Fprintf(w, "\nlockscope: the tests reported these lock problems:\n")
	}
	for i := range groups {
		fmt.Fprint(w, groups[i].String())
	}
	fmt.Fprintln(w, summarize(groups, made(reports)))
}

// runChild runs cmd with lockscope's standard input and the given output
// streams, passes signals on to it (see signals), and returns its exit
// status.
func runChild(cmd *exec.Cmd, sigs *signals, env []string, childOut, childErr, stderr io.Writer) int {
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, childOut, childErr
	if err := sigs.start(cmd); err != nil {
		fmt.Fprintf(stderr, "lockscope: %v\n", err)
		return 1
	}
	err := cmd.Wait()
	sigs.ended()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	default:
		fmt.Fprintf(stderr, "lockscope: %v\n", err)
		return 1
	}
}

// overlayer writes the swapped copies of a module's Go files.
type overlayer struct {
	root     string            // module root
	tmp      string            // where the copies go
	user     map[string]string // the user's overlay, absolute paths
	modcache string            // GOMODCACHE: never replaced
	exclude  []string          // directories to leave alone
	// tests, filled by run, lists the _test.go files of each directory.
	tests map[string][]string
}

// run walks the module (skipping nested modules, vendor, testdata and
// directories the go command ignores) and returns the overlay entries of
// the files it rewrote. Every file importing sync is rewritten, generated
// and cgo files included: types must agree across the files of a package.
// A file that does not parse is left as it is, for the go command to
// report.
func (o *overlayer) run() (map[string]string, error) {
	out := map[string]string{}
	seen := map[string]bool{}
	o.tests = map[string][]string{}
	do := func(path string) error {
		seen[path] = true
		if strings.HasSuffix(path, "_test.go") {
			if _, deleted := o.user[path]; !deleted || o.user[path] != "" {
				o.tests[filepath.Dir(path)] = append(o.tests[filepath.Dir(path)], path)
			}
		}
		var src []byte
		var err error
		if backing, ok := o.user[path]; ok {
			if backing == "" {
				return nil // deleted by the user's overlay
			}
			src, err = os.ReadFile(backing)
		} else {
			src, err = os.ReadFile(path)
		}
		if err != nil {
			return err
		}
		newSrc, changed, err := rewrite(path, src, false, true)
		if err != nil || !changed {
			return nil
		}
		newSrc = declNames(path, newSrc)
		rel, err := filepath.Rel(o.root, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(o.tmp, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
			return err
		}
		if err := os.WriteFile(dst, newSrc, 0o666); err != nil {
			return err
		}
		out[path] = dst
		return nil
	}
	err := filepath.WalkDir(o.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == o.root {
				return nil
			}
			name := d.Name()
			if name == "vendor" || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
				o.excluded(path) || path == o.modcache {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_") {
			return nil
		}
		if !d.Type().IsRegular() && d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		return do(path)
	})
	if err != nil {
		return nil, err
	}
	// Go files that exist only in the user's overlay.
	for _, path := range sortedKeys(o.user) {
		if !seen[path] && strings.HasSuffix(path, ".go") && within(o.root, path) && !o.excluded(path) {
			if err := do(path); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func (o *overlayer) excluded(path string) bool {
	for _, e := range o.exclude {
		if within(e, path) {
			return true
		}
	}
	return false
}

// readOverlay reads a go command overlay file; relative paths in it are
// relative to dir, as for the go command.
func readOverlay(file, dir string) (map[string]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var ov struct{ Replace map[string]string }
	if err := json.Unmarshal(data, &ov); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	out := make(map[string]string, len(ov.Replace))
	for k, v := range ov.Replace {
		if v != "" {
			v = absIn(dir, v)
		}
		out[absIn(dir, k)] = v
	}
	return out, nil
}

func readModInfo(dir, gomod string) (modInfo, error) {
	var m modInfo
	out, err := goOutput(dir, nil, "mod", "edit", "-json", gomod)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return m, fmt.Errorf("reading %s: %v", gomod, err)
	}
	return m, nil
}

// tempModfile writes tmp/go.mod, a copy of baseMod that requires lockscope,
// and tmp/go.sum beside it, and returns the go.mod's name, the lockscope
// source it chose (zero if the module already requires lockscope and no
// checkout was named, or is lockscope) and, when the module's go line is
// older than lockscope's, what keeps it (see lowerLockscope).
func tempModfile(wd, tmp, modcache, baseMod string, main modInfo, dirFlag string, profiles bool) (string, source, *lowered, error) {
	modfile := filepath.Join(tmp, "go.mod")
	if err := copyFile(baseMod, modfile); err != nil {
		return "", source{}, nil, err
	}
	// go.sum goes with the module file it belongs to: x.mod -> x.sum.
	sum, err := os.ReadFile(strings.TrimSuffix(baseMod, ".mod") + ".sum")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", source{}, nil, err
	}
	required := false
	for _, r := range main.Require {
		required = required || r.Path == lockscopeModule
	}
	var src source
	var low *lowered
	if main.Module.Path != lockscopeModule && (!required || dirFlag != "" || os.Getenv("LOCKSCOPE_MODULE_DIR") != "") {
		if src, err = findSource(dirFlag); err != nil {
			return "", source{}, nil, err
		}
		dir := src.Dir
		if dir == "" {
			// A released lockscope: its go line is that of its go.mod in
			// the module cache.
			if dir, err = moduleDir(wd, lockscopeModule, src.Version); err != nil {
				return "", source{}, nil, err
			}
		}
		if low, err = lowerLockscope(wd, tmp, modcache, dir, main.Go, profiles); err != nil {
			return "", source{}, nil, err
		}
		edit := []string{"mod", "edit"}
		if !required {
			edit = append(edit, "-require="+lockscopeModule+"@"+src.Version)
		}
		if low != nil {
			for _, p := range sortedKeys(low.replace) {
				edit = append(edit, "-replace="+p+"="+low.replace[p])
			}
		} else if src.Dir != "" {
			edit = append(edit, "-replace="+lockscopeModule+"="+dir)
		}
		if src.Dir != "" || low != nil {
			// The checkout's go.sum vouches for lockscope's own
			// dependencies: with it, no download is needed for them.
			if extra, err := os.ReadFile(filepath.Join(dir, "go.sum")); err == nil {
				sum = append(append(sum, '\n'), extra...)
			}
		}
		if _, err := goOutput(wd, nil, append(edit, modfile)...); err != nil {
			return "", source{}, nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "go.sum"), sum, 0o666); err != nil {
		return "", source{}, nil, err
	}
	return modfile, src, low, nil
}

// listLeftAlone names, for -v, the packages outside the main module that
// import sync and so keep the real locks.
func listLeftAlone(wd string, env []string, modfile, overlay string, rest []string, sub string, stderr io.Writer) {
	pkgs := []string{"./..."}
	if sub != "run" {
		var p []string
		for _, a := range rest {
			if !strings.HasPrefix(a, "-") && (strings.HasPrefix(a, ".") || strings.Contains(a, "/")) {
				p = append(p, a)
			}
		}
		if len(p) > 0 {
			pkgs = p
		}
	}
	args := append([]string{"list", "-e", "-deps", "-test", "-mod=mod", "-modfile=" + modfile, "-overlay=" + overlay,
		"-f", `{{if .Module}}{{if not .Module.Main}}{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{end}}{{end}}`}, pkgs...)
	out, err := goOutput(wd, env, args...)
	if err != nil {
		fmt.Fprintf(stderr, "lockscope: could not list dependencies: %v\n", err)
		return
	}
	var left []string
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) > 1 && slices.Contains(f[1:], "sync") && !strings.HasPrefix(f[0], lockscopeModule+"/") {
			left = append(left, f[0])
		}
	}
	slices.Sort(left)
	left = slices.Compact(left)
	if len(left) == 0 {
		fmt.Fprintf(stderr, "lockscope: no package outside the main module imports sync\n")
		return
	}
	fmt.Fprintf(stderr, "lockscope: left alone (not in the main module), these packages keep sync:\n")
	for _, p := range left {
		fmt.Fprintf(stderr, "\t%s\n", p)
	}
}

// goOutput runs the go command in dir and returns its standard output; its
// standard error becomes the error.
func goOutput(dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = env
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("go %s: %s", strings.Join(args[:min(2, len(args))], " "), msg)
	}
	return out, nil
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o666)
}

func absIn(dir, path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(dir, path)
}

// within reports whether path is dir or below it.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func relTo(dir, path string) string {
	if rel, err := filepath.Rel(dir, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// olderGo reports whether go version a (as in a go.mod go line) is older
// than b. An empty a is older than everything.
func olderGo(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
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
