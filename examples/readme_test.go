// README transcripts, checked.
//
// TestREADMETranscripts runs every ```console block of ../README.md and
// compares what the commands print with what the block shows, so that a
// transcript cannot go stale: a changed report, frame or line number fails
// the test. TestExamplesTable checks examples/README.md's table against the
// folders (exactly one row for each folder with a main package, no row for
// anything else, each row linking to and running its own example), and the
// counts of README.md's tour ("Three of them show ... (the other nine"),
// the first against the examples the tour's transcripts run, the second
// against the rest.
//
// A console block is a sequence of commands, each a line starting with
// "$ ", followed by its expected output: the lines up to the next "$ "
// line or the end of the block. A line "$" alone is the prompt after the
// last command; nothing may follow it. Every command must exit 0.
//
// Matching, line by line:
//   - "…" alone on a line (indentation aside) matches any run of lines,
//     none included;
//   - "…" inside a line matches any text within that line;
//   - every other expected line must equal the actual line, after masking,
//     one for one and in order; the actual output may not go on after the
//     last expected line unless that line is "…".
//
// Masking, applied to expected and actual lines alike, before comparing:
//   - paths: the repository root (README shows /work/main; the test's
//     checkout is elsewhere), the module cache (README shows
//     /root/go/pkg/mod) and the folder a testdata module is made in
//     (README shows /home/you);
//   - goroutine ids ("goroutine 19", "Goroutine 19");
//   - durations in Go's forms (101ms, 100.706ms, 1.5µs, 1m2.5s, 2h0m0s),
//     with the blanks before them, which compare as one blank (a longer
//     duration moves the columns of a table);
//   - hex addresses (0xc000012345).
//
// Line numbers of file:line frames are not masked: stale frames are what
// this test is for. A block whose numbers legitimately vary from run to
// run (a load test's counts, pprof's totals) says so by an HTML comment on
// the line before its opening fence:
//
//	<!-- transcript: numbers vary -->
//
// and then every number is masked too, the same way (a file:line's line
// number included).
//
// Other directives of that comment (several are separated by ";"):
//   - "in module testdata/NAME.txtar": the block runs in a module made
//     from that txtar file of the repository (files named proxy/PATH@VERSION/...
//     are served as module PATH@VERSION by a file-system module proxy,
//     the rest is the module, committed to a fresh git repository; a
//     module with proxy/ files gets a module cache of its own, kept under
//     the user cache directory in lockscope-readme-test/, named by the
//     txtar file's hash);
//   - "excerpt of CMD", on a ```text block: the block is an excerpt
//     (any lines before and after it) of what CMD prints, CMD being one of
//     the commands below.
//
// An unknown directive fails the test, as does a console block with a
// command the runner cannot run. The commands it runs:
//   - go run ./examples/NAME [args], from the repository root;
//   - go tool pprof [args];
//   - lockscope [args], a lockscope built from this checkout, in the
//     block's module (see "in module");
//   - git status [args], in the block's module;
//   - with VAR=value words before any of them, as a shell would.
//
// Stdout and stderr go to one pipe, as 2>&1 does. An argument that is a
// bare file name ending in .pb.gz or .jsonl names a file in a scratch
// folder shared by every block (so that the pprof commands read the
// profile the service wrote). Commands run without the caller's
// LOCKSCOPE_* and OTEL_* settings.
//
// Go versions: the go command is the one "go env GOROOT" names (the
// version GOTOOLCHAIN selects), run with GOTOOLCHAIN=local. The README
// shows what Go 1.27 prints, where Go's goroutine leak profile (the
// runtime's proof that a goroutine is blocked forever) is on by default.
// On Go 1.26 the commands run with GOEXPERIMENT=goroutineleakprofile,
// which gives them the same; other versions fail the test. Frames in the
// standard library differ between versions: transcripts elide them with
// "…".
package examples_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const ellipsis = "…"

// commandTimeout bounds one command of a transcript (a cold build of the
// service example and its dependencies takes a while on a loaded machine).
const commandTimeout = 5 * time.Minute

// transcriptBlock is a fenced block of README.md that the test checks.
type transcriptBlock struct {
	line         int    // of the opening fence, 1-based
	lang         string // console or text
	numbersVary  bool
	module       string // testdata/NAME.txtar, or ""
	excerptOf    string // for a text block: the command it is an excerpt of
	commands     []transcriptCommand
	endsInPrompt bool
}

type transcriptCommand struct {
	line int // in README.md, 1-based
	text string
	want []string
}

var directiveRE = regexp.MustCompile(`^<!--\s*transcript:\s*(.*?)\s*-->$`)

// parseTranscripts returns README's console blocks and the text blocks
// marked as excerpts.
func parseTranscripts(t *testing.T, readme string) []transcriptBlock {
	t.Helper()
	lines := strings.Split(readme, "\n")
	var blocks []transcriptBlock
	for i := 0; i < len(lines); i++ {
		fence, ok := strings.CutPrefix(lines[i], "```")
		if !ok {
			continue
		}
		lang := strings.TrimSpace(fence)
		end := i + 1
		for end < len(lines) && !strings.HasPrefix(lines[end], "```") {
			end++
		}
		if end == len(lines) {
			t.Fatalf("README.md:%d: a ``` block that does not end", i+1)
		}
		body := lines[i+1 : end]
		b := transcriptBlock{line: i + 1, lang: lang}
		marked := false
		if i > 0 {
			if m := directiveRE.FindStringSubmatch(strings.TrimSpace(lines[i-1])); m != nil {
				marked = true
				for _, d := range strings.Split(m[1], ";") {
					d = strings.TrimSpace(d)
					switch {
					case d == "numbers vary":
						b.numbersVary = true
					case strings.HasPrefix(d, "in module "):
						b.module = strings.TrimPrefix(d, "in module ")
					case strings.HasPrefix(d, "excerpt of "):
						b.excerptOf = strings.TrimPrefix(d, "excerpt of ")
					default:
						t.Errorf("README.md:%d: unknown transcript directive %q", i, d)
					}
				}
			}
		}
		i = end
		switch {
		case lang == "console":
			if b.excerptOf != "" {
				t.Errorf("README.md:%d: \"excerpt of\" is for ```text blocks; a console block shows its commands", b.line)
				continue
			}
			for j, l := range body {
				n := b.line + 1 + j
				switch {
				case b.endsInPrompt:
					t.Errorf("README.md:%d: a line after the final \"$\"", n)
				case l == "$":
					b.endsInPrompt = true
				case strings.HasPrefix(l, "$ "):
					b.commands = append(b.commands, transcriptCommand{line: n, text: strings.TrimPrefix(l, "$ ")})
				case len(b.commands) == 0:
					t.Errorf("README.md:%d: a console block must start with a command (\"$ ...\")", n)
				default:
					c := &b.commands[len(b.commands)-1]
					c.want = append(c.want, l)
				}
			}
			blocks = append(blocks, b)
		case marked && b.excerptOf != "":
			want := append([]string{ellipsis}, body...)
			if strings.TrimSpace(body[len(body)-1]) != ellipsis {
				want = append(want, ellipsis)
			}
			b.commands = []transcriptCommand{{line: b.line, text: b.excerptOf, want: want}}
			blocks = append(blocks, b)
		case marked:
			t.Errorf("README.md:%d: a transcript directive on a ```%s block, which is not checked", b.line, lang)
		}
	}
	return blocks
}

// transcriptEnv is what the commands of the transcripts run with.
type transcriptEnv struct {
	root      string   // the repository
	scratch   string   // output files (*.pb.gz)
	env       []string // the environment of every command
	goVersion string
	goBin     string   // that version's go command
	proofEnv  []string // what gives a go build the goroutine leak profile
	modcache  string   // the machine's module cache

	lockscopeOnce sync.Once
	lockscope     string
	lockscopeErr  error
}

func newTranscriptEnv(t *testing.T) *transcriptEnv {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	te := &transcriptEnv{root: root, scratch: t.TempDir()}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LOCKSCOPE") && !strings.HasPrefix(kv, "OTEL_") {
			te.env = append(te.env, kv)
		}
	}
	// The go command these tests run (GOTOOLCHAIN may pick another than the
	// one on PATH), called directly from here on: the "in module" blocks
	// have a module cache of their own, which holds no toolchain.
	out, err := exec.Command("go", "env", "GOVERSION", "GOROOT", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		t.Fatalf("go env GOVERSION GOROOT GOMODCACHE: %q", out)
	}
	te.goVersion = f[0]
	te.goBin = filepath.Join(f[1], "bin", "go")
	te.env = append(te.env, "PATH="+filepath.Join(f[1], "bin")+string(os.PathListSeparator)+os.Getenv("PATH"), "GOTOOLCHAIN=local")
	te.modcache = f[2]
	// Go 1.27 has the goroutine leak profile on by default; Go 1.26 has it
	// as an experiment (and 1.27 does not know the experiment's name).
	var minor int
	fmt.Sscanf(te.goVersion, "go1.%d", &minor)
	switch {
	case minor == 26:
		exp := os.Getenv("GOEXPERIMENT")
		if exp != "" {
			exp += ","
		}
		te.proofEnv = []string{"GOEXPERIMENT=" + exp + "goroutineleakprofile"}
	case minor >= 27:
	default:
		t.Fatalf("go version %s: the transcripts are Go 1.27's, and Go 1.26 can run them with GOEXPERIMENT=goroutineleakprofile; not this one", te.goVersion)
	}
	t.Logf("go command %s (these tests: %s), transcripts run with %v", te.goVersion, runtime.Version(), te.proofEnv)
	return te
}

// lockscopeBin builds cmd/lockscope once.
func (te *transcriptEnv) lockscopeBin(t *testing.T) string {
	t.Helper()
	te.lockscopeOnce.Do(func() {
		te.lockscope = filepath.Join(binDir, "lockscope-cmd", "lockscope")
		cmd := exec.Command(te.goBin, "build", "-o", te.lockscope, "./cmd/lockscope")
		cmd.Dir, cmd.Env = te.root, te.env
		if out, err := cmd.CombinedOutput(); err != nil {
			te.lockscopeErr = fmt.Errorf("go build ./cmd/lockscope: %v\n%s", err, out)
		}
	})
	if te.lockscopeErr != nil {
		t.Fatal(te.lockscopeErr)
	}
	return te.lockscope
}

// blockModule is the module an "in module" block runs in.
type blockModule struct {
	dir    string   // the module
	parent string   // its parent folder, masked as /home/you
	env    []string // module proxy, module cache
	// modcache is the module cache of a module with proxy/ files, masked
	// as /root/go/pkg/mod; "" for the machine's.
	modcache string
}

// makeModule makes the module of txtar file name (testdata/NAME.txtar, of
// the repository): a git repository of its files, committed, and a module
// proxy serving the proxy/PATH@VERSION/ ones.
func (te *transcriptEnv) makeModule(t *testing.T, name string) *blockModule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(te.root, filepath.FromSlash(name)))
	if err != nil {
		t.Fatalf("the block's module: %v", err)
	}
	files := parseTxtar(t, name, string(b))
	parent, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := &blockModule{dir: filepath.Join(parent, strings.TrimSuffix(filepath.Base(name), ".txtar")), parent: parent}
	proxy := t.TempDir()
	mods := map[string]map[string]string{}
	for _, f := range files {
		if rest, ok := strings.CutPrefix(f.name, "proxy/"); ok {
			elems := strings.Split(rest, "/")
			at := slices.IndexFunc(elems, func(e string) bool { return strings.Contains(e, "@") })
			if at < 0 || at == len(elems)-1 {
				t.Fatalf("%s: %s: want proxy/PATH@VERSION/FILE", name, f.name)
			}
			mv, file := strings.Join(elems[:at+1], "/"), strings.Join(elems[at+1:], "/")
			if mods[mv] == nil {
				mods[mv] = map[string]string{}
			}
			mods[mv][file] = f.data
			continue
		}
		p := filepath.Join(m.dir, filepath.FromSlash(f.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.data), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	m.env = []string{"GOFLAGS=-modcacherw -count=1", "LOCKSCOPE_DEPS_CACHE=" + t.TempDir()}
	if len(mods) > 0 {
		writeProxy(t, proxy, mods)
		// The proxy's modules must not stay in the machine's module cache,
		// nor a stale copy be used there: a module cache of their own, kept
		// between runs (so that the build cache serves what it built) under
		// a name that changes with the txtar file. It gets lockscope's own
		// requirements from the machine's download cache: no network.
		ucache, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		modcache := filepath.Join(ucache, "lockscope-readme-test", fmt.Sprintf("%s-%x", filepath.Base(name), sum[:8]))
		m.modcache = modcache
		m.env = append(m.env,
			"GOPROXY=file://"+proxy+",file://"+filepath.Join(te.modcache, "cache", "download"),
			"GOSUMDB=off", "GOMODCACHE="+modcache)
	}
	for _, args := range [][]string{
		{"init", "-q"}, {"add", "-A"},
		{"-c", "user.name=readme", "-c", "user.email=readme@example.com", "commit", "-q", "-m", "the module"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = m.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return m
}

type txtarFile struct{ name, data string }

// parseTxtar reads the txtar format (a comment, then "-- NAME --" lines,
// each followed by that file's content).
func parseTxtar(t *testing.T, name, s string) []txtarFile {
	t.Helper()
	var files []txtarFile
	for _, l := range strings.SplitAfter(s, "\n") {
		trimmed := strings.TrimRight(l, "\n")
		if strings.HasPrefix(trimmed, "-- ") && strings.HasSuffix(trimmed, " --") && len(trimmed) > 6 {
			files = append(files, txtarFile{name: strings.TrimSpace(trimmed[3 : len(trimmed)-3])})
			continue
		}
		if len(files) > 0 {
			files[len(files)-1].data += l
		}
	}
	if len(files) == 0 {
		t.Fatalf("%s has no files", name)
	}
	return files
}

// writeProxy lays out mods (path@version -> files) as a module proxy
// (GOPROXY=file://dir).
func writeProxy(t *testing.T, dir string, mods map[string]map[string]string) {
	t.Helper()
	for mv, files := range mods {
		path, version, _ := strings.Cut(mv, "@")
		at := filepath.Join(dir, filepath.FromSlash(path), "@v")
		if err := os.MkdirAll(at, 0o777); err != nil {
			t.Fatal(err)
		}
		write := func(name, content string) {
			if err := os.WriteFile(filepath.Join(at, name), []byte(content), 0o666); err != nil {
				t.Fatal(err)
			}
		}
		write(version+".info", `{"Version":"`+version+`","Time":"2026-01-01T00:00:00Z"}`)
		write(version+".mod", files["go.mod"])
		write("list", version+"\n")
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		names := make([]string, 0, len(files))
		for name := range files {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			w, err := zw.Create(mv + "/" + name)
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte(files[name]))
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		write(version+".zip", buf.String())
	}
}

// splitWords splits a command line as a shell would, for the forms the
// transcripts use: blanks between words, single and double quotes.
func splitWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	in, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		case r == '$' || r == '`' || r == '|' || r == '>' || r == '<' || r == '&' || r == ';' || r == '#' || r == '*':
			return nil, fmt.Errorf("%q: the runner does not do %q", s, r)
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q: unclosed quote", s)
	}
	if in {
		words = append(words, w.String())
	}
	return words, nil
}

var envWordRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// runCommand runs one command of a transcript and returns what it
// printed, stdout and stderr together.
func (te *transcriptEnv) runCommand(t *testing.T, line string, mod *blockModule) string {
	t.Helper()
	words, err := splitWords(line)
	if err != nil {
		t.Fatal(err)
	}
	var assign []string
	for len(words) > 0 && envWordRE.MatchString(words[0]) {
		assign, words = append(assign, words[0]), words[1:]
	}
	if len(words) == 0 {
		t.Fatalf("%q: no command", line)
	}
	for i, w := range words {
		if !strings.Contains(w, "/") && !strings.HasPrefix(w, "-") && (strings.HasSuffix(w, ".pb.gz") || strings.HasSuffix(w, ".jsonl")) {
			words[i] = filepath.Join(te.scratch, w)
		}
	}
	env := slices.Clone(te.env)
	var bin, dir string
	switch {
	case len(words) >= 3 && words[0] == "go" && words[1] == "run" && strings.HasPrefix(words[2], "./examples/"):
		bin, dir = te.goBin, te.root
		env = append(env, te.proofEnv...)
	case len(words) >= 3 && words[0] == "go" && words[1] == "tool" && words[2] == "pprof":
		bin, dir = te.goBin, te.root
	case words[0] == "lockscope" || (len(words) >= 2 && words[0] == "git" && words[1] == "status"):
		if mod == nil {
			t.Fatalf("%q runs in a module: the block needs <!-- transcript: in module testdata/NAME.txtar -->", line)
		}
		bin, dir = words[0], mod.dir
		if bin == "lockscope" {
			bin = te.lockscopeBin(t)
			env = append(env, te.proofEnv...)
		}
		env = append(env, mod.env...)
	default:
		t.Fatalf("%q: the runner cannot run this command (see the top of readme_test.go); make it one it runs, or the block a ```text illustration", line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, words[1:]...)
	cmd.Dir, cmd.Env = dir, append(env, assign...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out // one pipe
	start := time.Now()
	err = cmd.Run()
	t.Logf("$ %s (%v)", line, time.Since(start).Round(time.Millisecond))
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%q did not finish within %v", line, commandTimeout)
	case err != nil:
		t.Fatalf("%q: %v (a transcript's commands must succeed)\n%s", line, err, out.String())
	}
	return out.String()
}

// masker masks what varies from run to run (see the top of this file).
type masker struct {
	paths       [][2]string // actual path, and what README shows for it
	numbersVary bool
}

var (
	goroutineRE = regexp.MustCompile(`\b([Gg]oroutine) \d+\b`)
	hexRE       = regexp.MustCompile(`\b0x[0-9a-fA-F]+\b`)
	durationRE  = regexp.MustCompile(`(?:\d+(?:\.\d+)?(?:ns|µs|us|ms|s|m|h))+`)
	numberRE    = regexp.MustCompile(`\d+(?:\.\d+)?`)
)

func (m *masker) mask(s string, actual bool) string {
	for _, p := range m.paths {
		if actual {
			s = strings.ReplaceAll(s, p[0], p[1])
		}
	}
	s = goroutineRE.ReplaceAllString(s, "$1 <id>")
	s = hexRE.ReplaceAllString(s, "<addr>")
	// A duration stands alone: not inside a word or a number.
	s = replaceAllStandalone(durationRE, s, "<duration>")
	if m.numbersVary {
		s = replaceAllStandalone(numberRE, s, "<n>")
	}
	return s
}

// replaceAllStandalone replaces the matches of re in s that neither
// follow nor precede a letter, digit, '_' or '.' (a '.' that ends a
// sentence aside), together with the blanks before them, which become one
// blank: values of other widths move columns.
func replaceAllStandalone(re *regexp.Regexp, s, with string) string {
	word := func(b byte) bool {
		return b == '_' || b == '.' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
	}
	var out strings.Builder
	last := 0
	for _, loc := range re.FindAllStringIndex(s, -1) {
		i, j := loc[0], loc[1]
		if i > 0 && word(s[i-1]) || j < len(s) && word(s[j]) && !(s[j] == '.' && (j+1 == len(s) || !word(s[j+1]))) {
			continue
		}
		k := i
		for k > last && (s[k-1] == ' ' || s[k-1] == '\t') {
			k--
		}
		out.WriteString(s[last:k])
		if k < i {
			out.WriteByte(' ')
		}
		out.WriteString(with)
		last = j
	}
	out.WriteString(s[last:])
	return out.String()
}

// lineMatches reports whether the masked actual line matches the masked
// expected line, "…" in it matching any text.
func lineMatches(want, got string) bool {
	if !strings.Contains(want, ellipsis) {
		return want == got
	}
	parts := strings.Split(want, ellipsis)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(got)
}

// matchLines matches got against want ("…" lines matching any run of
// lines). If they do not match, it returns the index in want of the first
// expected line that no alignment gets past, and the index in got where
// the furthest alignment stood.
func matchLines(want, got []string) (ok bool, wi, gi int) {
	type key struct{ i, j int }
	memo := map[key]bool{}
	bestI, bestJ := -1, 0
	var match func(i, j int) bool
	match = func(i, j int) bool {
		if r, seen := memo[key{i, j}]; seen {
			return r
		}
		if i > bestI || i == bestI && j > bestJ {
			bestI, bestJ = i, j
		}
		var r bool
		switch {
		case i == len(want):
			r = j == len(got)
		case strings.TrimSpace(want[i]) == ellipsis:
			for k := j; k <= len(got) && !r; k++ {
				r = match(i+1, k)
			}
		default:
			r = j < len(got) && lineMatches(want[i], got[j]) && match(i+1, j+1)
		}
		memo[key{i, j}] = r
		return r
	}
	if match(0, 0) {
		return true, 0, 0
	}
	return false, bestI, bestJ
}

// transcriptDiff says how want and got differ, naming the first line that
// does not match.
func transcriptDiff(want, got, wantMasked, gotMasked []string, wi, gi int) string {
	var b strings.Builder
	switch {
	case wi < len(want):
		fmt.Fprintf(&b, "first mismatch: expected line %d\n  want: %s\n", wi+1, want[wi])
		if gi < len(got) {
			fmt.Fprintf(&b, "  got:  %s   (actual line %d)\n", got[gi], gi+1)
			fmt.Fprintf(&b, "  masked, want: %s\n  masked, got:  %s\n", wantMasked[wi], gotMasked[gi])
		} else {
			fmt.Fprintf(&b, "  got:  (the output ended after %d lines)\n", len(got))
		}
	default:
		fmt.Fprintf(&b, "the output goes on after the last expected line (end the transcript with \"…\" if that is meant):\n  extra, actual line %d: %s\n", gi+1, got[gi])
	}
	b.WriteString("\nexpected (README):\n")
	for i, l := range want {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, l)
	}
	b.WriteString("\nactual:\n")
	for i, l := range got {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, l)
	}
	return b.String()
}

func outputLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestREADMETranscripts(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := parseTranscripts(t, string(readme))
	if len(blocks) == 0 {
		t.Fatal("README.md has no transcripts")
	}
	te := newTranscriptEnv(t)
	for _, b := range blocks {
		name := fmt.Sprintf("README.md:%d", b.line)
		if len(b.commands) > 0 {
			// No "/" in the name, which go test -run would take as a level.
			name += " " + strings.ReplaceAll(b.commands[0].text, "/", "_")
		}
		t.Run(name, func(t *testing.T) {
			var mod *blockModule
			m := &masker{numbersVary: b.numbersVary, paths: [][2]string{{te.root, "/work/main"}}}
			if b.module != "" {
				mod = te.makeModule(t, b.module)
				gomodcache := mod.modcache
				if gomodcache == "" {
					gomodcache = te.modcache
				}
				m.paths = append(m.paths, [2]string{gomodcache, "/root/go/pkg/mod"}, [2]string{mod.parent, "/home/you"})
			}
			for _, c := range b.commands {
				got := outputLines(te.runCommand(t, c.text, mod))
				wantMasked, gotMasked := make([]string, len(c.want)), make([]string, len(got))
				for i, l := range c.want {
					wantMasked[i] = m.mask(l, false)
				}
				for i, l := range got {
					gotMasked[i] = m.mask(l, true)
				}
				if ok, wi, gi := matchLines(wantMasked, gotMasked); !ok {
					t.Errorf("README.md:%d: $ %s: the transcript is stale\n%s", c.line, c.text, transcriptDiff(c.want, got, wantMasked, gotMasked, wi, gi))
				}
			}
		})
	}
}

// numberWords are the numbers README writes as words.
var numberWords = map[string]int{
	"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
	"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
}

var exampleRunRE = regexp.MustCompile("`(?:[A-Z_]+=\\S+ )*go run (?:-race )?\\./examples/([a-z]+)")

// TestExamplesTable checks examples/README.md's table against the example
// folders (one row each, no row without one), and README.md's tour's
// counts against both.
func TestExamplesTable(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var mains []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		src, err := os.ReadFile(filepath.Join(e.Name(), "main.go"))
		if err == nil && regexp.MustCompile(`(?m)^package main$`).Match(src) {
			mains = append(mains, e.Name())
		}
	}
	if len(mains) == 0 {
		t.Fatal("no example programs")
	}

	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{}
	rowRE := regexp.MustCompile(`^\| \[([^\]]+)\]\(([^)]+)\) \|`)
	for i, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "| ") || strings.HasPrefix(l, "| example ") {
			continue
		}
		m := rowRE.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("examples/README.md:%d: a table row that does not start with [name](name/main.go): %s", i+1, l)
			continue
		}
		name := m[1]
		rows[name]++
		if m[2] != name+"/main.go" {
			t.Errorf("examples/README.md:%d: %s links to %s, want %s/main.go", i+1, name, m[2], name)
		}
		if !slices.Contains(mains, name) {
			t.Errorf("examples/README.md:%d: a row for %s, which is no example program under examples/", i+1, name)
		}
		cells := strings.Split(l, "|")
		run := cells[len(cells)-2]
		for _, rm := range exampleRunRE.FindAllStringSubmatch(run, -1) {
			if rm[1] != name {
				t.Errorf("examples/README.md:%d: %s's row runs ./examples/%s", i+1, name, rm[1])
			}
		}
		if !strings.Contains(run, "./examples/"+name+"`") && !strings.Contains(run, "./examples/"+name+" ") {
			t.Errorf("examples/README.md:%d: %s's row does not say how to run it (go run ./examples/%s)", i+1, name, name)
		}
	}
	for _, name := range mains {
		if rows[name] != 1 {
			t.Errorf("examples/README.md has %d rows for example %s, want 1", rows[name], name)
		}
	}

	// README.md's tour: "N of them show ... (the other M are listed in
	// examples/README.md", N being the examples its sections run.
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, tour, ok := strings.Cut(string(readme), "\n## A five-minute tour\n")
	if !ok {
		t.Fatal("README.md has no section \"A five-minute tour\"")
	}
	tour, _, _ = strings.Cut(tour, "\n## ")
	m := regexp.MustCompile(`(?i)\b([a-z]+) of them show\b[^(]*\(the other ([a-z]+)\b`).FindStringSubmatch(strings.Join(strings.Fields(tour), " "))
	if m == nil {
		t.Fatal(`README.md's tour does not say "N of them show ... (the other M ..."`)
	}
	shown, other := numberWords[strings.ToLower(m[1])], numberWords[strings.ToLower(m[2])]
	var ran []string
	for _, rm := range regexp.MustCompile(`(?m)^\$ (?:\S+=\S+ )*go run \./examples/([a-z]+)`).FindAllStringSubmatch(tour, -1) {
		if !slices.Contains(ran, rm[1]) {
			ran = append(ran, rm[1])
		}
	}
	if shown != len(ran) {
		t.Errorf("README.md's tour says %q of them show what lockscope does; its transcripts run %d: %v", m[1], len(ran), ran)
	}
	if other != len(mains)-len(ran) {
		t.Errorf("README.md's tour says \"the other %s\"; there are %d examples (%v), %d besides the %d it runs", m[2], len(mains), mains, len(mains)-len(ran), len(ran))
	}
	if !regexp.MustCompile(`\(the other [a-z]+ are listed in\s+\[examples/README\.md\]\(examples/README\.md\)`).MatchString(tour) {
		t.Error("README.md's tour does not point at examples/README.md for the other examples")
	}
}
