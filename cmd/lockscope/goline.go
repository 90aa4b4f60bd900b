package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
// need. Kept in step by TestSwapDepsComplete.
var swapDeps = []string{"github.com/petermattis/goid"}

// lowered is what a build needs to keep the user's go line.
type lowered struct {
	gomod    string // the lockscope checkout's go.mod, to overlay
	backing  string // the lowered go.mod written for it
	lang     string // lockscope's own language version, as "go1.26"
	userLang string // the user's go line, as it was
}

// lowerLockscope writes, in tmp, a go.mod for the lockscope module in dir
// that says go line userGo, and returns what to overlay and compile with.
// It returns nil when userGo is not older than lockscope's go line.
func lowerLockscope(wd, tmp, dir, userGo string) (*lowered, error) {
	gomod := filepath.Join(dir, "go.mod")
	own, err := readModInfo(wd, gomod)
	if err != nil {
		return nil, err
	}
	if userGo == "" {
		userGo = "1.16" // the go command's meaning of a go.mod without a go line
	}
	if !olderGo(userGo, own.Go) {
		return nil, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "// lockscope's go.mod, lowered to the go line of the module it debug-builds.\n\nmodule %s\n\ngo %s\n", lockscopeModule, userGo)
	for _, r := range own.Require {
		for _, d := range swapDeps {
			if r.Path == d {
				fmt.Fprintf(&b, "\nrequire %s %s\n", r.Path, r.Version)
			}
		}
	}
	backing := filepath.Join(tmp, "lockscope.go.mod")
	if err := os.WriteFile(backing, []byte(b.String()), 0o666); err != nil {
		return nil, err
	}
	return &lowered{gomod: gomod, backing: backing, lang: "go" + langOf(own.Go), userLang: userGo}, nil
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
	out, err := goOutput(wd, nil, "mod", "download", "-json", path+"@"+version)
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

// overlaySources writes, under tmp, a copy of every non-test Go file of
// lockscope's packages below dir/debugmutex that states lockscope's own
// language version in its build constraint, and returns their overlay
// entries. The go command gives every file of a module the module's go
// line, here the user's; a //go:build line naming a Go version overrides
// it for its file, for the compiler and for vet alike. The copies keep
// their positions: an existing //go:build line is extended in place, a new
// one is followed by a line directive naming the original file and line.
func (l *lowered) overlaySources(dir, tmp string) (map[string]string, error) {
	out := map[string]string{}
	root := filepath.Join(dir, "debugmutex")
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
		dst := filepath.Join(tmp, "lockscope-src", rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
			return err
		}
		if err := os.WriteFile(dst, withLang(path, src, l.lang), 0o666); err != nil {
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
