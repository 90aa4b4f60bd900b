// Package gotool is lockscope's plumbing to the go command: running it and
// reading what it knows (go env, go mod edit -json, go list), the overlay of
// a module's swapped copies (-overlay), the temporary go.mod that requires
// lockscope (-modfile), and lockscope's own module lowered to the go line of
// the module it debug-builds. What the copies say is not its business: the
// caller hands the Overlayer the rewrite to apply.
package gotool

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Module is the path of lockscope's module, which the debug builds require.
const Module = "github.com/lockscope/lockscope"

// Output runs the go command in dir with environment env (nil: lockscope's
// own) and returns its standard output; its standard error becomes the
// error.
func Output(dir string, env []string, args ...string) ([]byte, error) {
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

// combinedOutput runs the go command in dir with environment env and
// returns what it printed on both outputs.
func combinedOutput(dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = env
	return cmd.CombinedOutput()
}

// Env is what lockscope reads from go env.
type Env struct {
	GOMOD, GOWORK, GOFLAGS, GOMODCACHE string
}

// ReadEnv runs go env in dir.
func ReadEnv(dir string) (Env, error) {
	var env Env
	out, err := Output(dir, nil, "env", "-json", "GOMOD", "GOWORK", "GOFLAGS", "GOMODCACHE")
	if err != nil {
		return env, err
	}
	if err := json.Unmarshal(out, &env); err != nil {
		return env, fmt.Errorf("reading go env: %v", err)
	}
	return env, nil
}

// ModInfo is the part of go mod edit -json that lockscope reads.
type ModInfo struct {
	Module  struct{ Path string }
	Go      string
	Require []struct{ Path, Version string }
	Replace []struct {
		Old, New struct{ Path, Version string }
	}
}

// ReadModInfo reads the go.mod file gomod through go mod edit -json, run
// in dir.
func ReadModInfo(dir, gomod string) (ModInfo, error) {
	var m ModInfo
	out, err := Output(dir, nil, "mod", "edit", "-json", gomod)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return m, fmt.Errorf("reading %s: %v", gomod, err)
	}
	return m, nil
}

// GoLine returns the go line of a go.mod file, "" if it has none.
func GoLine(gomod string) string {
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

// GoRaised reports whether the go command raised a go.mod go line from was
// to now: now is a later version, not the same one spelled otherwise
// (go 1.26 and go 1.26.0 are one version, the release's). False when was
// is empty: there was no line to raise.
func GoRaised(was, now string) bool {
	return was != "" && olderGo(was, now)
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

// AbsIn returns path made absolute, relative to dir if it is relative, as
// the go command reads the paths of its flags and overlay files.
func AbsIn(dir, path string) string {
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

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o666)
}
