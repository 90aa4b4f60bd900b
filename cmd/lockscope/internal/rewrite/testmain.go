package rewrite

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	pathpkg "path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The end of every test binary: inspect.Exiting reports what the end
// makes certain (locks left by exited goroutines, goroutines stuck in a
// recursive Lock) and runs the profile writers. Go has no exit hook, so
// lockscope test calls it from TestMain: a package without one gets one
// (a test file of lockscope's, through the overlay), and in a TestMain of
// the user's, each m.Run() becomes inspect.Exiting(m.Run()). Only the
// line of the package clause (an import added after it) and those of the
// m.Run() calls change, so every position stays where it was.

// exitingImport is the name the added import of package inspect goes by.
const exitingImport = "lockscope_inspect"

// inspectPath is the package Exiting is in.
const inspectPath = "github.com/lockscope/lockscope/inspect"

// exitingFile and profileFile are the names of the test files lockscope
// adds.
const (
	exitingFile = "zz_lockscope_exiting_test.go"
	profileFile = "zz_lockscope_profile_test.go"
)

// autoprofilePath is the package that writes profiles where the
// environment says.
const autoprofilePath = "github.com/lockscope/lockscope/profiler/autoprofile"

// ExitingMain returns the overlay entries that make every test binary of
// the packages in tests (directory -> its _test.go files) call
// inspect.Exiting at the end. read returns a file's content as the
// build sees it; the copies go under tmp, at their path relative to root.
// With profiles, every test binary also imports profiler/autoprofile, which
// writes its profiles to LOCKSCOPE_PROFILE_DIR (the last time in Exiting).
//
// An added TestMain is a frame of its own between testing.(*M).Run and
// main.main in every stack of the tests. A package whose test files name
// those frames (an Example whose output is a stack, a test comparing
// stacks) gets none, as its tests would fail for it: it is in unchecked.
func ExitingMain(root, tmp string, tests map[string][]string, read func(string) ([]byte, error), profiles bool) (overlay map[string]string, unchecked []string, err error) {
	out := map[string]string{}
	write := func(path string, data []byte) error {
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(tmp, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o666); err != nil {
			return err
		}
		out[path] = dst
		return nil
	}
	dirs := make([]string, 0, len(tests))
	for d := range tests {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		var pkg string
		srcs := make([][]byte, len(tests[dir]))
		namesMain := false
		for i, path := range tests[dir] {
			src, err := read(path)
			if err != nil {
				return nil, nil, err
			}
			srcs[i] = src
			namesMain = namesMain || bytes.Contains(src, []byte("main.main")) || bytes.Contains(src, []byte("testing.(*M).Run"))
		}
		hasMain := false
		for i, path := range tests[dir] {
			src := srcs[i]
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, src, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				continue // the go command will say what is wrong
			}
			if name := f.Name.Name; pkg == "" || !strings.HasSuffix(name, "_test") {
				pkg = strings.TrimSuffix(name, "_test")
			}
			edits, found := exitingEdits(fset, f, !namesMain)
			hasMain = hasMain || found
			if len(edits) > 0 {
				if err := write(path, applyEdits(src, edits)); err != nil {
					return nil, nil, err
				}
			}
		}
		if pkg == "" {
			continue
		}
		if profiles {
			if _, err := os.Stat(filepath.Join(dir, profileFile)); err != nil {
				src := fmt.Sprintf("// Added by lockscope test: LOCKSCOPE_PROFILE_DIR gets the profiles.\n\npackage %s\n\nimport _ %q\n", pkg, autoprofilePath)
				if err := write(filepath.Join(dir, profileFile), []byte(src)); err != nil {
					return nil, nil, err
				}
			}
		}
		if hasMain {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, exitingFile)); err == nil {
			continue
		}
		if namesMain {
			unchecked = append(unchecked, dir)
			continue
		}
		src := fmt.Sprintf(`// Added by lockscope test: the end of the test binary is checked.

package %s

import (
	%s %q
	lockscope_os "os"
	lockscope_testing "testing"
)

func TestMain(m *lockscope_testing.M) { lockscope_os.Exit(%s.Exiting(m.Run())) }
`, pkg, exitingImport, inspectPath, exitingImport)
		if err := write(filepath.Join(dir, exitingFile), []byte(src)); err != nil {
			return nil, nil, err
		}
	}
	return out, unchecked, nil
}

// exitingEdits returns the edits that make the TestMain in f, if it has
// one, call inspect.Exiting with the result of each m.Run(), and
// whether f has a TestMain. A TestMain that hands m to
// goleak.VerifyTestMain (which runs the tests, checks for leaked goroutines
// and exits) hands it a wrapper instead, whose Run calls Exiting with the
// result of m.Run(): the end is checked before goleak looks. Other helpers
// that take m are left alone (their parameter may be *testing.M).
//
// wrap says whether a wrapper may be handed to goleak: it is a frame of
// its own in every stack of the tests.
func exitingEdits(fset *token.FileSet, f *ast.File, wrap bool) ([]edit, bool) {
	var main *ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == "TestMain" && fd.Body != nil {
			main = fd
		}
	}
	if main == nil {
		return nil, false
	}
	params := main.Type.Params.List
	if len(params) != 1 || len(params[0].Names) != 1 {
		return nil, true
	}
	m := params[0].Names[0].Name
	goleak := ""
	if wrap {
		goleak = importName(f, goleakPath)
	}
	isM := func(e ast.Expr) bool { id, ok := e.(*ast.Ident); return ok && id.Name == m }
	offset := func(p token.Pos) int { return fset.Position(p).Offset }
	var edits []edit
	wrapped := false
	ast.Inspect(main.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		switch {
		case sel.Sel.Name == "Run" && len(call.Args) == 0 && isM(sel.X):
			edits = append(edits,
				edit{offset(call.Pos()), offset(call.Pos()), exitingImport + ".Exiting("},
				edit{offset(call.End()), offset(call.End()), ")"})
		case goleak != "" && sel.Sel.Name == "VerifyTestMain" && len(call.Args) > 0 && isM(call.Args[0]):
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == goleak {
				arg := call.Args[0]
				edits = append(edits,
					edit{offset(arg.Pos()), offset(arg.Pos()), exitingWrapper + "{"},
					edit{offset(arg.End()), offset(arg.End()), "}"})
				wrapped = true
			}
		}
		return true
	})
	if len(edits) == 0 {
		return nil, true // m.Run() elsewhere (a helper of the user's): left alone
	}
	// The import, on the line of the package clause; the wrapper, after
	// everything.
	at := offset(f.Name.End())
	edits = append(edits, edit{at, at, fmt.Sprintf("; import %s %q", exitingImport, inspectPath)})
	if wrapped {
		end := offset(f.FileEnd)
		edits = append(edits, edit{end, end, fmt.Sprintf(`

// Added by lockscope test: the end of the test binary is checked when the
// tests have run.
type %[1]s struct{ m interface{ Run() int } }

func (w %[1]s) Run() int { return %[2]s.Exiting(w.m.Run()) }
`, exitingWrapper, exitingImport)})
	}
	return edits, true
}

// goleakPath is go.uber.org/goleak, whose VerifyTestMain runs m.Run itself;
// exitingWrapper is the name of the wrapper lockscope hands it.
const (
	goleakPath     = "go.uber.org/goleak"
	exitingWrapper = "lockscope_exitingM"
)

// importName returns the name path is imported by in f, "" if it is not
// (or is imported with . or _).
func importName(f *ast.File, path string) string {
	for _, im := range f.Imports {
		if p, err := strconv.Unquote(im.Path.Value); err != nil || p != path {
			continue
		}
		if im.Name != nil {
			if im.Name.Name == "." || im.Name.Name == "_" {
				return ""
			}
			return im.Name.Name
		}
		return pathpkg.Base(path)
	}
	return ""
}
