package stacks

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/lockscope/lockscope/report"
)

// Naming a lock from its source (DESIGN.md, "Naming").
//
// A lock without SetName is named as a Go programmer would name it: by the
// package variable (main.serviceMu) or the struct field (DB.mmaplock,
// Cache.mu) that it is. lockscope has no type information at run time, but it
// has the site where the lock was first acquired, and usually the source of
// that site: lockLabel reads the file, finds the lock call on the line, and
// names the expression the call is made on, by the receiver's, the
// parameter's or the local's declared type, or as a package variable. Where
// the source is missing, stale or says nothing certain, it gives "" and the
// lock is named by its site.
//
// Sources are parsed once and kept, within the bounds below, and so are the
// top-level variables and struct types of a package's directory. namingMu,
// which guards these caches, is a leaf held only to look up and update
// them: nothing is read or parsed under it, and no other lock is taken.

// Bounds on what naming reads and keeps.
const (
	NamingMaxFileSize = 1 << 20 // larger sources are not read
	NamingMaxFiles    = 256     // parsed files kept
	NamingMaxBytes    = 8 << 20 // total source bytes behind the parsed files kept
	namingMaxDirs     = 64      // packages whose top-level variables are kept
	namingMaxDirFiles = 256     // files read from one package directory
	namingMaxLabels   = 8192    // remembered lockLabel results
	namingMaxAlias    = 4       // local := &x.mu chains followed
)

type namedFile struct {
	once sync.Once
	file *ast.File   // nil: unreadable or unparsable
	tf   *token.File // file's positions
	size int         // source bytes counted in namingBytes; namingMu guards it
}

type namedDir struct {
	once   sync.Once
	vars   map[string]bool              // top-level variables of the package
	fields map[string]map[string]string // struct type -> field -> the field's type, if named and the package's
}

var (
	NamingMu     sync.Mutex // leaf: guards the maps and lists below, never held while reading
	NamingFiles  = map[string]*namedFile{}
	NamingOrder  []string // namingFiles' keys, oldest first
	NamingBytes  int
	namingDirs   = map[string]*namedDir{}
	namingLabels = map[labelKey]Label{}
)

// labelKey is a remembered label: a frame, and the call looked for on its
// line (a Lock and a Do on one line name different things).
type labelKey struct {
	f    report.Frame
	call Call
}

// Call is the kind of call by which a lock is taken at its acquire site,
// the call whose receiver names the lock.
type Call uint8

const (
	// CallLock: X.Lock(), X.RLock(), X.TryLock(), X.TryRLock(),
	// X.RLocker().Lock(), pkg.LockContext(ctx, &X), TryLockContext.
	CallLock Call = iota
	// CallDo: X.Do(f), the Do of a Once X.
	CallDo
	// CallFunc: X(), a call of the function X that OnceFunc, OnceValue or
	// OnceValues returned, whose Once is locked inside it.
	CallFunc
)

// LockLabel returns the name for a lock first acquired at the call site
// whose frame is f (function like "go.etcd.io/bbolt.(*DB).beginTx", file, line), or "" if unknown.
//
// The lock call on the line is X.Lock(), X.RLock(), X.TryLock(),
// X.TryRLock(), X.RLocker().Lock() or pkg.LockContext(ctx, &X) (or
// TryLockContext), and X is named
//
//	r.mu, r.a.b     r the receiver of a method of T or *T ("T.mu", "T.a.b"; a
//	                generic Cache[K, V] is "Cache")
//	x.mu            x a parameter or local of a type declared in the function
//	                (x *T, var x T, x := &T{}, x := new(T)): "T.mu"
//	r, x            a struct embedding the mutex: "T"
//	r.a.mu          a of a struct type A of the package: "A.mu" (tx.db.metalock
//	                is "DB.metalock"), but r.a is "T.a", never "A"
//	mu, cfg.mu      a package-level variable: "pkg.mu", "pkg.cfg.mu"
//	other.Mu        a variable of an imported package: "other.Mu"
//	l               l := &r.mu or l := r.mu.RLocker(): as r.mu
//
// and anything else (a call in the chain, a local of unknown type, a plain
// local mutex, two different lock calls on the line, a line that is not in
// the function f names) is "".
func LockLabel(f report.Frame) string { return CallLabel(f, CallLock) }

// CallLabel is LockLabel for a lock taken by a call of the kind given: for
// CallDo, X of X.Do(f) is named as LockLabel names X of X.Lock() (a field
// initOnce of receiver c's *Client: "Client.initOnce"; a package variable:
// "pkg.cfgOnce"); for CallFunc, X of X() (the variable or field that holds
// the function OnceFunc returned: "pkg.loadConfig"). Two such calls on the
// line that name different things, or one whose function is no selector
// chain (f()()), give "".
func CallLabel(f report.Frame, call Call) string { return CallLabelOf(f, call).Name }

// A Label is what the source at a lock's site says it is.
type Label struct {
	Name string // as CallLabel names it; "" if unknown
	// Local is the line of the declaration when the lock is a local of
	// the function (var mu sync.Mutex, mu := new(sync.Mutex)), else 0:
	// its class says the line, which tells it from a field.
	Local int
}

// CallLabelOf is CallLabel with what it knows of the lock's declaration.
func CallLabelOf(f report.Frame, call Call) (label Label) {
	if f.Line <= 0 || !strings.HasSuffix(f.File, ".go") {
		return Label{}
	}
	key := labelKey{f, call}
	NamingMu.Lock()
	l, ok := namingLabels[key]
	NamingMu.Unlock()
	if ok {
		return l
	}
	defer func() {
		if recover() != nil {
			label = Label{}
		}
		NamingMu.Lock()
		if len(namingLabels) >= namingMaxLabels {
			clear(namingLabels)
		}
		namingLabels[key] = label
		NamingMu.Unlock()
	}()
	nf := parsedFile(f.File)
	if nf.file == nil || f.Line > nf.tf.LineCount() {
		return Label{}
	}
	n := &namer{f: f, nf: nf, call: call}
	name := n.label()
	if name == "" {
		return Label{}
	}
	return Label{Name: name, Local: n.local}
}

// parsedFile returns path's parse, from the cache or read now.
func parsedFile(path string) *namedFile {
	NamingMu.Lock()
	nf := NamingFiles[path]
	if nf == nil {
		nf = &namedFile{}
		for len(NamingOrder) >= NamingMaxFiles {
			namingEvict()
		}
		NamingFiles[path] = nf
		NamingOrder = append(NamingOrder, path)
	}
	NamingMu.Unlock()
	nf.once.Do(func() {
		src, ok := readSource(path)
		if !ok {
			return
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil || file == nil {
			return
		}
		nf.file, nf.tf = file, fset.File(file.Pos())
		NamingMu.Lock()
		if NamingFiles[path] == nf {
			nf.size = len(src)
			NamingBytes += nf.size
			for NamingBytes > NamingMaxBytes && len(NamingOrder) > 1 && NamingOrder[0] != path {
				namingEvict()
			}
		}
		NamingMu.Unlock()
	})
	return nf
}

// namingEvict forgets the oldest parsed file. namingMu is held.
func namingEvict() {
	old := NamingOrder[0]
	NamingOrder = NamingOrder[1:]
	if nf := NamingFiles[old]; nf != nil {
		// A parse still running counts its size only if it is still in the map.
		NamingBytes -= nf.size
		delete(NamingFiles, old)
	}
}

// readSource reads a regular file of at most namingMaxFileSize bytes.
func readSource(path string) ([]byte, bool) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer fh.Close()
	if st, err := fh.Stat(); err != nil || !st.Mode().IsRegular() || st.Size() > NamingMaxFileSize {
		return nil, false
	}
	src, err := io.ReadAll(io.LimitReader(fh, NamingMaxFileSize+1))
	if err != nil || len(src) > NamingMaxFileSize {
		return nil, false
	}
	return src, true
}

// packageDecls returns the top-level variables and struct types of package
// pkg in dir (of the files that could be read).
func packageDecls(dir, pkg string) *namedDir {
	key := dir + "\x00" + pkg
	NamingMu.Lock()
	nd := namingDirs[key]
	if nd == nil {
		if len(namingDirs) >= namingMaxDirs {
			clear(namingDirs)
		}
		nd = &namedDir{}
		namingDirs[key] = nd
	}
	NamingMu.Unlock()
	nd.once.Do(func() {
		nd.vars, nd.fields = map[string]bool{}, map[string]map[string]string{}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		read := 0
		for _, e := range ents {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".go") {
				continue
			}
			if read++; read > namingMaxDirFiles {
				break
			}
			path := filepath.Join(dir, name)
			src, ok := readSource(path)
			if !ok {
				continue
			}
			file, err := parser.ParseFile(token.NewFileSet(), path, src, parser.SkipObjectResolution)
			if err != nil || file == nil {
				continue
			}
			if file.Name.Name != pkg {
				continue
			}
			for _, v := range topLevelVars(file) {
				nd.vars[v] = true
			}
			for t, fs := range structTypes(file) {
				nd.fields[t] = fs
			}
		}
	})
	return nd
}

// topLevelVars lists the variables file declares at package scope.
func topLevelVars(file *ast.File) []string {
	var vars []string
	for _, d := range file.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, s := range g.Specs {
			if vs, ok := s.(*ast.ValueSpec); ok {
				for _, id := range vs.Names {
					vars = append(vars, id.Name)
				}
			}
		}
	}
	return vars
}

// structTypes maps the struct types file declares at package scope to their
// fields, and each field to the name of its type where that is a type of
// the package (F, *F, F[K]; an embedded F is field F; "[]F" for a slice,
// array or map of F), else "".
func structTypes(file *ast.File) map[string]map[string]string {
	types := map[string]map[string]string{}
	for _, d := range file.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.TYPE {
			continue
		}
		for _, s := range g.Specs {
			ts, ok := s.(*ast.TypeSpec)
			if !ok || ts.Assign.IsValid() {
				continue
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			fields := map[string]string{}
			for _, f := range st.Fields.List {
				t, q := containerTypeName(f.Type)
				if q {
					t = ""
				}
				if len(f.Names) == 0 {
					if t != "" {
						fields[t] = t
					}
					continue
				}
				for _, id := range f.Names {
					fields[id.Name] = t
				}
			}
			types[ts.Name.Name] = fields
		}
	}
	return types
}

// fieldType returns the name of the type of field of struct type t, a type
// of the frame's package, or "".
func (n *namer) fieldType(t, field string) string {
	if fs, ok := structTypes(n.nf.file)[t]; ok {
		return fs[field]
	}
	return packageDecls(filepath.Dir(n.f.File), n.nf.file.Name.Name).fields[t][field]
}

// A namer names the lock of one frame.
type namer struct {
	f     report.Frame
	nf    *namedFile
	call  Call // the kind of call that took the lock
	local int  // the declaration line of the local last named, 0 if none
}

// A lockCall is a lock call on the frame's line: the locked expression and
// the nodes from the file down to the call.
type lockCall struct {
	x    ast.Expr
	path []ast.Node
}

func (n *namer) line(p token.Pos) int { return n.nf.tf.Line(p) }

func (n *namer) label() string {
	calls := n.lockCalls()
	if len(calls) == 0 {
		return ""
	}
	label, local := "", 0
	for i, c := range calls {
		if !n.inFunction(c.path) {
			return ""
		}
		n.local = 0
		l := n.name(c.x, c.path, c.x.Pos(), 0)
		if l == "" || (i > 0 && (l != label || n.local != local)) {
			return ""
		}
		label, local = l, n.local
	}
	return label
}

// lockCalls finds the lock calls on the frame's line.
func (n *namer) lockCalls() []lockCall {
	var calls []lockCall
	var stack []ast.Node
	ast.Inspect(n.nf.file, func(node ast.Node) bool {
		if node == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		if n.line(node.Pos()) > n.f.Line || n.line(node.End()) < n.f.Line {
			return false
		}
		stack = append(stack, node)
		if c, ok := node.(*ast.CallExpr); ok {
			if x := n.lockedBy(c); x != nil {
				calls = append(calls, lockCall{x: x, path: append([]ast.Node(nil), stack...)})
			}
		}
		return true
	})
	return calls
}

// lockedBy returns the expression whose lock c acquires, if c is a lock call
// (of the namer's kind) made on the frame's line.
func (n *namer) lockedBy(c *ast.CallExpr) ast.Expr {
	switch n.call {
	case CallDo:
		// X.Do(f): X's Once.
		fun, ok := ast.Unparen(c.Fun).(*ast.SelectorExpr)
		if !ok || fun.Sel.Name != "Do" || len(c.Args) != 1 || !n.onLine(fun.Sel.Pos(), c.Lparen) {
			return nil
		}
		return ast.Unparen(fun.X)
	case CallFunc:
		// X(): the function OnceFunc returned, in the variable or field X.
		// Any call without arguments may be it: a line with two that name
		// different things, or one that is no chain (f()()), names nothing.
		fun := ast.Unparen(c.Fun)
		if len(c.Args) != 0 || !n.onLine(fun.End()-1, c.Lparen) {
			return nil
		}
		return fun
	}
	var name *ast.Ident
	var recv ast.Expr
	switch fun := ast.Unparen(c.Fun).(type) {
	case *ast.SelectorExpr:
		name, recv = fun.Sel, fun.X
	case *ast.Ident:
		name = fun
	default:
		return nil
	}
	if !n.onLine(name.Pos(), c.Lparen) {
		return nil
	}
	switch name.Name {
	case "Lock", "RLock", "TryLock", "TryRLock":
		if recv == nil || len(c.Args) != 0 {
			return nil
		}
		return rlockerOf(recv)
	case "LockContext", "TryLockContext":
		if recv != nil {
			if _, ok := ast.Unparen(recv).(*ast.Ident); !ok {
				return nil
			}
		}
		if len(c.Args) != 2 {
			return nil
		}
		x := ast.Unparen(c.Args[1])
		if u, ok := x.(*ast.UnaryExpr); ok && u.Op == token.AND {
			return ast.Unparen(u.X)
		}
		return rlockerOf(x)
	}
	return nil
}

// onLine reports whether a call whose function's name is at name and whose
// arguments open at lparen is made on the frame's line (the compiler puts a
// call at a line between the two).
func (n *namer) onLine(name, lparen token.Pos) bool {
	return n.line(name) <= n.f.Line && n.line(lparen) >= n.f.Line
}

// rlockerOf returns X for X.RLocker(), else x.
func rlockerOf(x ast.Expr) ast.Expr {
	x = ast.Unparen(x)
	if c, ok := x.(*ast.CallExpr); ok && len(c.Args) == 0 {
		if s, ok := ast.Unparen(c.Fun).(*ast.SelectorExpr); ok && s.Sel.Name == "RLocker" {
			return ast.Unparen(s.X)
		}
	}
	return x
}

// inFunction reports whether the function declaration around the call is
// the frame's function (or one of its closures): else the source is not
// the one the program was built from, or the frame is not this file's.
func (n *namer) inFunction(path []ast.Node) bool {
	var d *ast.FuncDecl
	for _, node := range path {
		if fd, ok := node.(*ast.FuncDecl); ok {
			d = fd
		}
	}
	if d == nil || n.f.Function == "" {
		return true // a package-level initializer's closure, or no name to check
	}
	rest := n.f.Function
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		rest = rest[i+1:]
	}
	i := strings.IndexByte(rest, '.')
	if i < 0 {
		return false
	}
	rest = rest[i+1:]
	if after, ok := matchDecl(rest, d); ok && (after == "" || after[0] == '.' || after[0] == '-') {
		return true
	}
	// A closure of a function inlined into another is named after both:
	// "pkg.caller.(*T).m.func1".
	for i := 1; i < len(rest); i++ {
		if rest[i-1] != '.' {
			continue
		}
		if after, ok := matchDecl(rest[i:], d); ok && after != "" && (after[0] == '.' || after[0] == '-') {
			return true
		}
	}
	return false
}

// matchDecl matches the start of s with d's name as the runtime prints it
// ("f", "T.m", "(*T).m", "(*T[...]).m") and returns what follows.
func matchDecl(s string, d *ast.FuncDecl) (string, bool) {
	if d.Recv != nil && len(d.Recv.List) == 1 {
		t, _ := typeName(d.Recv.List[0].Type)
		_, ptr := ast.Unparen(d.Recv.List[0].Type).(*ast.StarExpr)
		if ptr {
			if !strings.HasPrefix(s, "(*") {
				return "", false
			}
			s = s[2:]
		}
		if t == "" || !strings.HasPrefix(s, t) {
			return "", false
		}
		s = skipTypeArgs(s[len(t):])
		if ptr {
			if !strings.HasPrefix(s, ")") {
				return "", false
			}
			s = s[1:]
		}
		if !strings.HasPrefix(s, ".") {
			return "", false
		}
		s = s[1:]
	}
	name := d.Name.Name
	if !strings.HasPrefix(s, name) {
		return "", false
	}
	return s[len(name):], true
}

// skipTypeArgs drops a leading "[...]" (type arguments, however printed).
func skipTypeArgs(s string) string {
	if !strings.HasPrefix(s, "[") {
		return s
	}
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			if depth--; depth == 0 {
				return s[i+1:]
			}
		}
	}
	return s
}

// typeName returns the name of type expression t (T, *T, pkg.T, T[K, V]:
// "T") and whether it is qualified by a package.
func typeName(t ast.Expr) (string, bool) {
	switch t := ast.Unparen(t).(type) {
	case *ast.Ident:
		return t.Name, false
	case *ast.StarExpr:
		return typeName(t.X)
	case *ast.SelectorExpr:
		if _, ok := ast.Unparen(t.X).(*ast.Ident); ok {
			return t.Sel.Name, true
		}
	case *ast.IndexExpr:
		return typeName(t.X)
	case *ast.IndexListExpr:
		return typeName(t.X)
	}
	return "", false
}

// containerTypeName is typeName for a type that may be a slice, an array or
// a map (of values of) such a type: "[]T" for []*T, [4]T and map[K]T.
func containerTypeName(t ast.Expr) (string, bool) {
	switch t := ast.Unparen(t).(type) {
	case *ast.ArrayType:
		e, q := containerTypeName(t.Elt)
		if e == "" {
			return "", false
		}
		return "[]" + e, q
	case *ast.MapType:
		e, q := containerTypeName(t.Value)
		if e == "" {
			return "", false
		}
		return "[]" + e, q
	}
	return typeName(t)
}

// isLockType reports whether a type named t of another package is one of
// the lock types (sync's, or lockscope's of the same names).
func isLockType(t string) bool { return t == "Mutex" || t == "RWMutex" || t == "Once" }

// chain splits a selector chain r.a[i].b into its root r and the rest
// ".a", "[i]", ".b"; ok is false for anything else (calls, conversions, ...).
func chain(x ast.Expr) (root *ast.Ident, rest []string, ok bool) {
	var parts []string
	for {
		switch e := ast.Unparen(x).(type) {
		case *ast.Ident:
			slices.Reverse(parts)
			return e, parts, true
		case *ast.SelectorExpr:
			parts = append(parts, "."+e.Sel.Name)
			x = e.X
		case *ast.StarExpr:
			x = e.X
		case *ast.IndexExpr:
			idx := "..."
			switch i := ast.Unparen(e.Index).(type) {
			case *ast.Ident:
				idx = i.Name
			case *ast.BasicLit:
				idx = i.Value
			}
			parts = append(parts, "["+idx+"]")
			x = e.X
		default:
			return nil, nil, false
		}
	}
}

// A binding is what a name in the function refers to.
type binding struct {
	found  bool
	typ    string   // the declared type's name ("[]T" for a container of T), or "" if unknown
	qual   bool     // typ is another package's
	alias  ast.Expr // l := &X or l := X.RLocker(): X
	expr   ast.Expr // x := X[k] or x := X.f: typed as X[k] or X.f is (exprType)
	elemOf ast.Expr // for _, x := range X: an element of X
	decl   bool     // the name declares a value of its type (var x T, x := T{}, new(T)), not a pointer or a copy from elsewhere
	at     token.Pos
}

// name names the locked expression x, whose enclosing nodes are path and
// which is at pos; depth counts followed aliases.
func (n *namer) name(x ast.Expr, path []ast.Node, pos token.Pos, depth int) string {
	root, parts, ok := chain(x)
	if !ok || root.Name == "_" {
		return ""
	}
	rest := strings.Join(parts, "")
	if b := lookup(path, root.Name, pos); b.found {
		if b.alias != nil {
			if depth >= namingMaxAlias {
				return ""
			}
			l := n.name(b.alias, path, b.at, depth+1)
			if l == "" {
				return ""
			}
			return l + rest
		}
		t, q := n.bindingType(b, path, depth)
		if rest == "" && b.decl && q && isLockType(t) {
			// A local mutex (or Once) declared in the function: its class
			// is its declaration, "f.mu" ("(*T).m.mu" in a method), as a
			// field's is its struct's.
			// Two declarations of one name in the function ("a, b :=" in
			// two loops) are two classes: the later ones say their line.
			fd := funcDecl(path)
			fn := funcDeclName(fd)
			if fn == "" || !b.at.IsValid() {
				return ""
			}
			n.local = n.line(b.at)
			if declarations(fd, root.Name) > 1 {
				return fmt.Sprintf("%s.%s@%d", fn, root.Name, n.local)
			}
			return fn + "." + root.Name
		}
		// tx.db.metalock is DB.metalock when Tx's field db is a *DB: name
		// the lock by the innermost struct of the package it is a field
		// of (but never by a bare type: p.hits stays Pair.hits); an
		// element of a slice, array or map of T is a T (files[id].mu with
		// files a map[string]*logFile is logFile.mu).
		for len(parts) > 0 && t != "" {
			if parts[0][0] == '[' {
				if !strings.HasPrefix(t, "[]") {
					break
				}
				t, parts = t[2:], parts[1:]
				continue
			}
			if len(parts) < 2 || q || strings.HasPrefix(t, "[]") {
				break
			}
			u := n.fieldType(t, parts[0][1:])
			if u == "" {
				break
			}
			t, parts = u, parts[1:]
		}
		rest = strings.Join(parts, "")
		if t == "" || strings.HasPrefix(t, "[]") || (rest == "" && (q || isLockType(t))) {
			// Unknown type, a container, or a plain local (or parameter,
			// or element) mutex or Once.
			return ""
		}
		return t + rest
	}
	file := n.nf.file
	pkg := file.Name.Name
	for _, v := range topLevelVars(file) {
		if v == root.Name {
			return pkg + "." + root.Name + rest
		}
	}
	if rest != "" {
		for _, im := range file.Imports {
			if im.Name != nil && im.Name.Name == root.Name ||
				im.Name == nil && importName(im.Path.Value) == root.Name {
				return root.Name + rest // another package's variable
			}
		}
	}
	if packageDecls(filepath.Dir(n.f.File), pkg).vars[root.Name] {
		return pkg + "." + root.Name + rest
	}
	return ""
}

// bindingType returns the type of what b binds: declared, or that of the
// expression it was set from, or of an element of the one it ranges over.
func (n *namer) bindingType(b binding, path []ast.Node, depth int) (string, bool) {
	switch {
	case b.expr != nil:
		return n.exprType(b.expr, path, b.at, depth+1)
	case b.elemOf != nil:
		t, q := n.exprType(b.elemOf, path, b.at, depth+1)
		if e, ok := strings.CutPrefix(t, "[]"); ok {
			return e, q
		}
		return "", false
	}
	return b.typ, b.qual
}

// exprType returns the type of expression x at pos in the function
// (T{}, &T{}, new(T), a chain of fields and indexes from a name the function
// declares), as containerTypeName names types, or "" if unknown.
func (n *namer) exprType(x ast.Expr, path []ast.Node, pos token.Pos, depth int) (string, bool) {
	if depth > namingMaxAlias {
		return "", false
	}
	switch v := ast.Unparen(x).(type) {
	case *ast.CompositeLit:
		return containerTypeName(v.Type)
	case *ast.UnaryExpr:
		if cl, ok := ast.Unparen(v.X).(*ast.CompositeLit); ok && v.Op == token.AND {
			return containerTypeName(cl.Type)
		}
		return "", false
	case *ast.CallExpr:
		if id, ok := ast.Unparen(v.Fun).(*ast.Ident); ok && id.Name == "new" && len(v.Args) == 1 {
			return containerTypeName(v.Args[0])
		}
		return "", false
	}
	root, parts, ok := chain(x)
	if !ok {
		return "", false
	}
	b := lookup(path, root.Name, pos)
	if !b.found || b.alias != nil {
		return "", false
	}
	t, q := n.bindingType(b, path, depth)
	for _, p := range parts {
		switch {
		case t == "":
			return "", false
		case p[0] == '[':
			e, ok := strings.CutPrefix(t, "[]")
			if !ok {
				return "", false
			}
			t = e
		case q || strings.HasPrefix(t, "[]"):
			return "", false
		default:
			t = n.fieldType(t, p[1:])
		}
	}
	return t, q
}

// funcDecl returns the function declaration around path, or nil.
func funcDecl(path []ast.Node) *ast.FuncDecl {
	for _, node := range path {
		if d, ok := node.(*ast.FuncDecl); ok {
			return d
		}
	}
	return nil
}

// funcDeclName names a function declaration as the runtime prints it: "f",
// "T.m", "(*T).m"; "" for none.
func funcDeclName(d *ast.FuncDecl) string {
	if d == nil {
		return ""
	}
	if d.Recv == nil || len(d.Recv.List) != 1 {
		return d.Name.Name
	}
	t, _ := typeName(d.Recv.List[0].Type)
	if t == "" {
		return ""
	}
	if _, ptr := ast.Unparen(d.Recv.List[0].Type).(*ast.StarExpr); ptr {
		return "(*" + t + ")." + d.Name.Name
	}
	return t + "." + d.Name.Name
}

// declarations counts the declarations of name in d: variables, constants,
// parameters and results of d and of its closures, := and range variables.
func declarations(d *ast.FuncDecl, name string) int {
	count := 0
	fields := func(fl *ast.FieldList) {
		if fl == nil {
			return
		}
		for _, f := range fl.List {
			for _, id := range f.Names {
				if id.Name == name {
					count++
				}
			}
		}
	}
	fields(d.Recv)
	ast.Inspect(d, func(node ast.Node) bool {
		switch node := node.(type) {
		case *ast.FuncType:
			fields(node.Params)
			fields(node.Results)
		case *ast.ValueSpec:
			for _, id := range node.Names {
				if id.Name == name {
					count++
				}
			}
		case *ast.AssignStmt:
			if node.Tok == token.DEFINE {
				for _, l := range node.Lhs {
					if id, ok := l.(*ast.Ident); ok && id.Name == name {
						count++
					}
				}
			}
		case *ast.RangeStmt:
			if node.Tok == token.DEFINE {
				for _, k := range []ast.Expr{node.Key, node.Value} {
					if id, ok := k.(*ast.Ident); ok && id.Name == name {
						count++
					}
				}
			}
		}
		return true
	})
	return count
}

// importName guesses the package name of a quoted import path: its last
// element without a "go-" prefix or ".vN" suffix, or the one before a
// major-version element "vN".
func importName(quoted string) string {
	p := strings.Trim(quoted, "\"`")
	elems := strings.Split(p, "/")
	last := elems[len(elems)-1]
	if isMajorVersion(last) && len(elems) > 1 {
		last = elems[len(elems)-2]
	}
	if i := strings.Index(last, ".v"); i > 0 && isMajorVersion(last[i+1:]) {
		last = last[:i]
	}
	last = strings.TrimPrefix(last, "go-")
	return strings.ReplaceAll(last, "-", "")
}

func isMajorVersion(s string) bool {
	if len(s) < 2 || s[0] != 'v' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// lookup resolves name at pos in the function around it (path runs from the
// file down to pos): the innermost declaration that is in scope wins.
// found is false for a name the function does not declare.
func lookup(path []ast.Node, name string, pos token.Pos) binding {
	for i := len(path) - 1; i >= 0; i-- {
		var b binding
		switch node := path[i].(type) {
		case *ast.BlockStmt:
			b = inStmts(node.List, name, pos)
		case *ast.CaseClause:
			b = inStmts(node.Body, name, pos)
			if !b.found && i >= 2 {
				if ts, ok := path[i-2].(*ast.TypeSwitchStmt); ok {
					b = inTypeSwitch(ts, node, name)
				}
			}
		case *ast.CommClause:
			b = inStmts(node.Body, name, pos)
			if !b.found && node.Comm != nil && node.Comm.End() <= pos {
				b = inStmt(node.Comm, name)
			}
		case *ast.IfStmt:
			b = inInit(node.Init, name, pos)
		case *ast.ForStmt:
			b = inInit(node.Init, name, pos)
		case *ast.SwitchStmt:
			b = inInit(node.Init, name, pos)
		case *ast.TypeSwitchStmt:
			b = inInit(node.Init, name, pos)
		case *ast.RangeStmt:
			if node.Tok == token.DEFINE && node.X.End() <= pos {
				if id, ok := node.Key.(*ast.Ident); ok && id.Name == name {
					b = binding{found: true}
				}
				if id, ok := node.Value.(*ast.Ident); ok && id.Name == name {
					b = binding{found: true, elemOf: node.X, at: node.Pos()}
				}
			}
		case *ast.FuncLit:
			b = inFields(name, node.Type.Params, node.Type.Results)
		case *ast.FuncDecl:
			b = inFields(name, node.Recv, node.Type.Params, node.Type.Results)
		}
		if b.found {
			return b
		}
	}
	return binding{}
}

func inInit(init ast.Stmt, name string, pos token.Pos) binding {
	if init == nil || init.End() > pos {
		return binding{}
	}
	return inStmt(init, name)
}

// inStmts finds the last declaration of name among the statements that end
// before pos.
func inStmts(list []ast.Stmt, name string, pos token.Pos) binding {
	var b binding
	for _, s := range list {
		if s.End() > pos {
			break
		}
		if d := inStmt(s, name); d.found {
			b = d
		}
	}
	return b
}

// inStmt returns the declaration of name that statement s makes, if any.
func inStmt(s ast.Stmt, name string) binding {
	for {
		l, ok := s.(*ast.LabeledStmt)
		if !ok {
			break
		}
		s = l.Stmt
	}
	switch s := s.(type) {
	case *ast.DeclStmt:
		g, ok := s.Decl.(*ast.GenDecl)
		if !ok || (g.Tok != token.VAR && g.Tok != token.CONST) {
			return binding{}
		}
		for _, spec := range g.Specs {
			vs, ok := spec.(*ast.ValueSpec)
			if !ok {
				continue
			}
			for i, id := range vs.Names {
				if id.Name != name {
					continue
				}
				switch {
				case g.Tok == token.CONST:
					return binding{found: true}
				case vs.Type != nil:
					t, q := containerTypeName(vs.Type)
					_, ptr := ast.Unparen(vs.Type).(*ast.StarExpr)
					return binding{found: true, typ: t, qual: q, decl: !ptr, at: s.Pos()}
				case len(vs.Values) == len(vs.Names):
					return valueBinding(vs.Values[i], s.Pos())
				}
				return binding{found: true}
			}
		}
	case *ast.AssignStmt:
		if s.Tok != token.DEFINE {
			return binding{}
		}
		for i, l := range s.Lhs {
			if id, ok := l.(*ast.Ident); ok && id.Name == name {
				switch {
				case len(s.Rhs) == len(s.Lhs):
					return valueBinding(s.Rhs[i], s.Pos())
				case i == 0 && len(s.Rhs) == 1 && len(s.Lhs) == 2:
					// x, ok := m[k] and x, ok := v.(T): x is as in x := m[k].
					switch r := ast.Unparen(s.Rhs[0]).(type) {
					case *ast.IndexExpr, *ast.TypeAssertExpr:
						b := valueBinding(r, s.Pos())
						b.decl = false
						return b
					}
				}
				return binding{found: true}
			}
		}
	}
	return binding{}
}

// valueBinding types a name initialised with v: T{}, &T{}, new(T) (which
// declare a T), v.(T), an alias &X / X.RLocker(), or a chain X[k] / X.f
// (typed as the chain is, exprType).
func valueBinding(v ast.Expr, at token.Pos) binding {
	b := binding{found: true, at: at}
	switch v := ast.Unparen(v).(type) {
	case *ast.CompositeLit:
		b.typ, b.qual = containerTypeName(v.Type)
		b.decl = true
	case *ast.UnaryExpr:
		if v.Op != token.AND {
			break
		}
		if cl, ok := ast.Unparen(v.X).(*ast.CompositeLit); ok {
			b.typ, b.qual = containerTypeName(cl.Type)
			b.decl = true
		} else if _, _, ok := chain(v.X); ok {
			b.alias, b.at = v.X, at
		}
	case *ast.CallExpr:
		if id, ok := ast.Unparen(v.Fun).(*ast.Ident); ok && id.Name == "new" && len(v.Args) == 1 {
			b.typ, b.qual = containerTypeName(v.Args[0])
			b.decl = true
		} else if x := rlockerOf(v); x != ast.Expr(v) {
			b.alias, b.at = x, at
		}
	case *ast.TypeAssertExpr:
		if v.Type != nil {
			b.typ, b.qual = containerTypeName(v.Type)
		}
	case *ast.IndexExpr, *ast.SelectorExpr:
		if _, _, ok := chain(v); ok {
			b.expr, b.at = v, at
		}
	}
	return b
}

// inTypeSwitch binds the variable of switch v := x.(type) in clause cc: of
// the case's type when the case lists one.
func inTypeSwitch(ts *ast.TypeSwitchStmt, cc *ast.CaseClause, name string) binding {
	as, ok := ts.Assign.(*ast.AssignStmt)
	if !ok || len(as.Lhs) != 1 {
		return binding{}
	}
	if id, ok := as.Lhs[0].(*ast.Ident); !ok || id.Name != name {
		return binding{}
	}
	b := binding{found: true}
	if len(cc.List) == 1 {
		b.typ, b.qual = typeName(cc.List[0])
	}
	return b
}

// inFields finds name among the fields (receiver, parameters, results).
func inFields(name string, lists ...*ast.FieldList) binding {
	for _, fl := range lists {
		if fl == nil {
			continue
		}
		for _, f := range fl.List {
			for _, id := range f.Names {
				if id.Name == name {
					t, q := containerTypeName(f.Type)
					return binding{found: true, typ: t, qual: q}
				}
			}
		}
	}
	return binding{}
}
