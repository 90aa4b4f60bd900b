package gotool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
)

// develVersion is the version required in a temporary go.mod when lockscope
// comes from a directory through a replace directive: any version does, and
// this one says clearly that it is not a release.
const develVersion = "v0.0.0-00010101000000-000000000000"

// A Source says which lockscope module a debug build compiles against.
type Source struct {
	// Version is the module version to require.
	Version string
	// Dir, if not empty, is a checkout of the module to use through a
	// replace directive.
	Dir string
	// Why says how Version and Dir were chosen, for -v and errors.
	Why string
}

// released returns the version of this binary when it was installed from a
// module version (go install github.com/lockscope/lockscope/cmd/lockscope@v1.2.3),
// and "" for a development build (go build in a checkout, which stamps
// "(devel)" or a VCS pseudo-version that no proxy can serve).
func released() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Path != Module || bi.Main.Sum == "" {
		return ""
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" || strings.Contains(v, "+") {
		return ""
	}
	return v
}

// findSource decides which lockscope the user's build links against:
//  1. dir, from -lockscope-dir or LOCKSCOPE_MODULE_DIR: that checkout;
//  2. a released binary: the same version of the module;
//  3. a development build: the checkout it was built from, if it is still
//     where the compiler saw it.
func findSource(dir string) (Source, error) {
	if dir == "" {
		dir = os.Getenv("LOCKSCOPE_MODULE_DIR")
	}
	if dir != "" {
		abs, err := checkCheckout(dir)
		if err != nil {
			return Source{}, err
		}
		return Source{Version: develVersion, Dir: abs, Why: "checkout named by -lockscope-dir or LOCKSCOPE_MODULE_DIR"}, nil
	}
	if v := released(); v != "" {
		return Source{Version: v, Why: "the version of this lockscope binary"}, nil
	}
	// A development build: runtime.Caller names this file as the compiler
	// saw it (unless built with -trimpath), four levels below the module
	// root (cmd/lockscope/internal/gotool).
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		if abs, err := checkCheckout(filepath.Join(filepath.Dir(file), "..", "..", "..", "..")); err == nil {
			return Source{Version: develVersion, Dir: abs, Why: "the checkout this development build of lockscope was built from"}, nil
		}
	}
	return Source{}, errors.New("this lockscope is a development build and its source checkout cannot be found;\n" +
		"\tset LOCKSCOPE_MODULE_DIR to a lockscope checkout, or install lockscope from one:\n" +
		"\tcd /path/to/lockscope && go install ./cmd/lockscope")
}

// checkCheckout returns dir as an absolute path if it holds the lockscope
// module.
func checkCheckout(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	path, err := ModulePath(filepath.Join(abs, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("lockscope module directory %s: %v", dir, err)
	}
	if path != Module {
		return "", fmt.Errorf("lockscope module directory %s holds module %s, not %s", dir, path, Module)
	}
	return abs, nil
}

// ModulePath reads the module path from the module line of a go.mod file.
func ModulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return parseModulePath(f)
}

func parseModulePath(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			rest = strings.TrimSpace(rest)
			if i := strings.Index(rest, "//"); i >= 0 {
				rest = strings.TrimSpace(rest[:i])
			}
			return strings.Trim(rest, `"`+"`"), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no module line")
}
