// Package rewrite edits Go sources for lockscope: imports of sync swapped
// for debugmutex and back (swap, unswap, and the copies lockscope test
// builds), a package's locks named by their declarations, every test
// binary ended by debugmutex.Exiting, and, for the go command's output
// about those copies, the names of the user's files put back. Every edit
// keeps the positions of what it does not change.
package rewrite

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"sort"
	"strconv"
	"strings"
)

// DebugPath is the import path that replaces "sync".
const DebugPath = "github.com/lockscope/lockscope/debugmutex"

// syncNames are the exported names of package sync. debugmutex defines or
// re-exports every one of them, so a file that uses only these names through
// a debugmutex import can go back to importing sync. Kept in step with the
// standard library by TestSyncNamesComplete.
var syncNames = map[string]bool{
	"Cond": true, "Locker": true, "Map": true, "Mutex": true, "NewCond": true,
	"Once": true, "OnceFunc": true, "OnceValue": true, "OnceValues": true,
	"Pool": true, "RWMutex": true, "WaitGroup": true,
}

// An edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// importPath returns the unquoted path of spec, or "" if it is malformed.
func importPath(spec *ast.ImportSpec) string {
	p, err := strconv.Unquote(spec.Path.Value)
	if err != nil {
		return ""
	}
	return p
}

// swapEdits returns the edits that make f import debugmutex wherever it
// imports sync. Only the bytes of each import spec change:
//
//	"sync"        ->  sync "github.com/lockscope/lockscope/debugmutex"
//	name "sync"   ->  name "github.com/lockscope/lockscope/debugmutex"
//	. "sync"      ->  . "github.com/lockscope/lockscope/debugmutex"
//
// A blank import (_ "sync") is left alone: it declares nothing to swap. So
// is an import marked with a //lockscope:keep comment, for the locks that
// must stay sync ones (those handed to code that wants a *sync.Mutex).
func swapEdits(fset *token.FileSet, f *ast.File) []edit {
	var edits []edit
	for _, spec := range f.Imports {
		if importPath(spec) != "sync" || keep(spec) {
			continue
		}
		start := fset.Position(spec.Path.Pos()).Offset
		end := fset.Position(spec.Path.End()).Offset
		switch {
		case spec.Name == nil:
			edits = append(edits, edit{start, end, "sync " + quoteLike(spec.Path.Value, DebugPath)})
		case spec.Name.Name == "_":
		default:
			edits = append(edits, edit{start, end, quoteLike(spec.Path.Value, DebugPath)})
		}
	}
	return edits
}

// unswapEdits returns the edits that undo swapEdits: every debugmutex import
// with an explicit name goes back to sync. "sync" naming the package sync is
// dropped again, so unswap after swap restores the original bytes. An
// unnamed or blank debugmutex import was written by the user, not by swap,
// and is left alone. A named import whose file uses names sync does not have
// (SetName, say) cannot go back and is an error.
func unswapEdits(fset *token.FileSet, f *ast.File) ([]edit, error) {
	var edits []edit
	for _, spec := range f.Imports {
		if importPath(spec) != DebugPath || spec.Name == nil || spec.Name.Name == "_" {
			continue
		}
		name := spec.Name.Name
		if name != "." {
			if err := usesOnlySync(fset, f, name); err != nil {
				return nil, err
			}
		}
		pathStart := fset.Position(spec.Path.Pos()).Offset
		end := fset.Position(spec.Path.End()).Offset
		if name == "sync" && !hasCommentBetween(f, spec.Name.End(), spec.Path.Pos()) {
			start := fset.Position(spec.Name.Pos()).Offset
			edits = append(edits, edit{start, end, quoteLike(spec.Path.Value, "sync")})
			continue
		}
		edits = append(edits, edit{pathStart, end, quoteLike(spec.Path.Value, "sync")})
	}
	return edits, nil
}

// KeepMark on an import of sync, in a comment before it or on its line,
// keeps it from being swapped.
const KeepMark = "lockscope:keep"

func keep(spec *ast.ImportSpec) bool {
	for _, cg := range []*ast.CommentGroup{spec.Doc, spec.Comment} {
		if cg != nil {
			for _, c := range cg.List {
				if strings.Contains(c.Text, KeepMark) {
					return true
				}
			}
		}
	}
	return false
}

// quoteLike quotes path the way lit, an import path literal, is quoted:
// `raw` or "interpreted", so that unswap can restore either.
func quoteLike(lit, path string) string {
	if strings.HasPrefix(lit, "`") {
		return "`" + path + "`"
	}
	return strconv.Quote(path)
}

// usesOnlySync reports an error naming the first selector name.X in f where
// X is not an exported name of package sync. It can be fooled by a local
// variable that shadows the import name; such code does not compile anyway
// unless name is unused as a package, in which case the answer is still safe.
func usesOnlySync(fset *token.FileSet, f *ast.File, name string) error {
	var bad *ast.SelectorExpr
	ast.Inspect(f, func(n ast.Node) bool {
		if bad != nil {
			return false
		}
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && id.Name == name && !syncNames[sel.Sel.Name] {
			bad = sel
			return false
		}
		return true
	})
	if bad != nil {
		return fmt.Errorf("%s: uses %s.%s, which package sync does not have; it needs debugmutex",
			fset.Position(bad.Pos()), name, bad.Sel.Name)
	}
	return nil
}

func hasCommentBetween(f *ast.File, from, to token.Pos) bool {
	for _, cg := range f.Comments {
		if cg.Pos() >= from && cg.End() <= to {
			return true
		}
	}
	return false
}

// applyEdits returns src with edits applied. Edits must not overlap.
func applyEdits(src []byte, edits []edit) []byte {
	if len(edits) == 0 {
		return src
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	out := make([]byte, 0, len(src)+64*len(edits))
	last := 0
	for _, e := range edits {
		out = append(out, src[last:e.start]...)
		out = append(out, e.text...)
		last = e.end
	}
	return append(out, src[last:]...)
}

// Swap parses src (named filename in errors) and returns it with every
// import of sync (but a blank one, or one marked with KeepMark) importing
// DebugPath under the same name (see swapEdits), and whether anything
// changed. With importsOnly, only the package clause and imports must
// parse.
func Swap(filename string, src []byte, importsOnly bool) ([]byte, bool, error) {
	return rewriteImports(filename, src, false, importsOnly)
}

// Unswap parses src (named filename in errors) and returns it with what
// Swap did undone (see unswapEdits), and whether anything changed: every
// import of DebugPath with an explicit name imports sync again, one named
// sync as a plain "sync". It is an error if the file uses, through such an
// import, a name that sync does not have.
func Unswap(filename string, src []byte) ([]byte, bool, error) {
	return rewriteImports(filename, src, true, false)
}

// rewriteImports parses src (named filename in errors) and returns it with
// swap (or unswap) applied, and whether anything changed. With importsOnly,
// only the package clause and imports must parse.
func rewriteImports(filename string, src []byte, unswap, importsOnly bool) ([]byte, bool, error) {
	fset := token.NewFileSet()
	mode := parser.ParseComments | parser.SkipObjectResolution
	if importsOnly {
		mode |= parser.ImportsOnly
	}
	f, err := parser.ParseFile(fset, filename, src, mode)
	if err != nil {
		return nil, false, err
	}
	var edits []edit
	if unswap {
		edits, err = unswapEdits(fset, f)
		if err != nil {
			return nil, false, err
		}
	} else {
		edits = swapEdits(fset, f)
	}
	if len(edits) == 0 {
		return src, false, nil
	}
	return applyEdits(src, edits), true, nil
}
