package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The end of every test binary: debugmutex.Exiting reports what the end
// makes certain (locks left by exited goroutines, goroutines stuck in a
// recursive Lock) and runs the profile writers. Go has no exit hook, so
// lockscope test calls it from TestMain: a package without one gets one
// (a test file of lockscope's, through the overlay), and in a TestMain of
// the user's, each m.Run() becomes debugmutex.Exiting(m.Run()). Only the
// line of the package clause (an import added after it) and those of the
// m.Run() calls change, so every position stays where it was.

// exitingImport is the name the added import of debugmutex goes by.
const exitingImport = "lockscope_debugmutex"

// exitingFile and profileFile are the names of the test files lockscope
// adds.
const (
	exitingFile = "zz_lockscope_exiting_test.go"
	profileFile = "zz_lockscope_profile_test.go"
)

// autoprofilePath is the package that writes profiles where the
// environment says.
const autoprofilePath = lockscopeModule + "/profiler/autoprofile"

// exitingMain returns the overlay entries that make every test binary of
// the packages in tests (directory -> its _test.go files) call
// debugmutex.Exiting at the end. read returns a file's content as the
// build sees it; the copies go under tmp, at their path relative to root.
// With profiles, every test binary also imports profiler/autoprofile, which
// writes its profiles to LOCKSCOPE_PROFILE_DIR (the last time in Exiting).
func exitingMain(root, tmp string, tests map[string][]string, read func(string) ([]byte, error), profiles bool) (map[string]string, error) {
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
		hasMain := false
		for _, path := range tests[dir] {
			src, err := read(path)
			if err != nil {
				return nil, err
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, src, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				continue // the go command will say what is wrong
			}
			if name := f.Name.Name; pkg == "" || !strings.HasSuffix(name, "_test") {
				pkg = strings.TrimSuffix(name, "_test")
			}
			edits, found := exitingEdits(fset, f)
			hasMain = hasMain || found
			if len(edits) > 0 {
				if err := write(path, applyEdits(src, edits)); err != nil {
					return nil, err
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
					return nil, err
				}
			}
		}
		if hasMain {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, exitingFile)); err == nil {
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
`, pkg, exitingImport, debugPath, exitingImport)
		if err := write(filepath.Join(dir, exitingFile), []byte(src)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// exitingEdits returns the edits that make the TestMain in f, if it has
// one, call debugmutex.Exiting with the result of each m.Run(), and
// whether f has a TestMain.
func exitingEdits(fset *token.FileSet, f *ast.File) ([]edit, bool) {
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
	var edits []edit
	ast.Inspect(main.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) != 0 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Run" {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); !ok || id.Name != m {
			return true
		}
		edits = append(edits,
			edit{fset.Position(call.Pos()).Offset, fset.Position(call.Pos()).Offset, exitingImport + ".Exiting("},
			edit{fset.Position(call.End()).Offset, fset.Position(call.End()).Offset, ")"})
		return true
	})
	if len(edits) == 0 {
		return nil, true // m.Run() elsewhere (goleak.VerifyTestMain(m), a helper): left alone
	}
	// The import, on the line of the package clause.
	at := fset.Position(f.Name.End()).Offset
	edits = append(edits, edit{at, at, fmt.Sprintf("; import %s %q", exitingImport, debugPath)})
	return edits, true
}
