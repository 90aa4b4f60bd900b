package rewrite

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
)

// Names from declarations. The engine names a lock from the source of the
// site where it is first locked (debugmutex/naming.go), which says nothing
// when the lock is locked through a closure, a wrapper or a function
// value, or when the source is gone. The rewrite reads every swapped file
// anyway, and a package-level lock is declared there: so the copy of the
// file names each of them, exactly, with debugmutex.SetName in an init
// function appended to it (after the last line: no position moves).
// A user's own SetName, called later, wins.

// DeclNames returns src, a swapped file, with an init function naming its
// package-level Mutex and RWMutex variables, and fields of the locks of
// its package-level variables of anonymous struct type, "pkg.v" and
// "pkg.v.mu" as the engine names them. It returns src unchanged when
// there are none or the file does not parse.
func DeclNames(path string, src []byte) []byte {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		return src
	}
	qual, ok := "", false
	for _, spec := range f.Imports {
		if importPath(spec) != DebugPath || spec.Name == nil || spec.Name.Name == "_" {
			continue
		}
		qual, ok = spec.Name.Name+".", true
		if spec.Name.Name == "." {
			qual = ""
		}
		break
	}
	if !ok {
		return src
	}
	isLock := func(t ast.Expr) bool {
		switch t := t.(type) {
		case *ast.SelectorExpr:
			id, ok := t.X.(*ast.Ident)
			return ok && qual != "" && id.Name+"." == qual && (t.Sel.Name == "Mutex" || t.Sel.Name == "RWMutex")
		case *ast.Ident:
			return qual == "" && (t.Name == "Mutex" || t.Name == "RWMutex")
		}
		return false
	}
	pkg := f.Name.Name
	var calls []string
	name := func(expr, label string) {
		calls = append(calls, fmt.Sprintf("%sSetName(&%s, %s)", qual, expr, strconv.Quote(pkg+"."+label)))
	}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			if vs.Type == nil || len(vs.Values) > 0 {
				continue // a type the rewrite cannot see, or copied from a value
			}
			for _, id := range vs.Names {
				if id.Name == "_" {
					continue
				}
				if isLock(vs.Type) {
					name(id.Name, id.Name)
					continue
				}
				st, ok := vs.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, fld := range st.Fields.List {
					if !isLock(fld.Type) {
						continue
					}
					if len(fld.Names) == 0 { // embedded: the variable is the lock
						sel := "Mutex"
						if isRW(fld.Type) {
							sel = "RWMutex"
						}
						name(id.Name+"."+sel, id.Name)
					}
					for _, fn := range fld.Names {
						if fn.Name != "_" {
							name(id.Name+"."+fn.Name, id.Name+"."+fn.Name)
						}
					}
				}
			}
		}
	}
	if len(calls) == 0 {
		return src
	}
	out := append([]byte{}, src...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	out = fmt.Appendf(out, "\nfunc init() { %s }\n", strings.Join(calls, "; "))
	return out
}

func isRW(t ast.Expr) bool {
	switch t := t.(type) {
	case *ast.SelectorExpr:
		return t.Sel.Name == "RWMutex"
	case *ast.Ident:
		return t.Name == "RWMutex"
	}
	return false
}
