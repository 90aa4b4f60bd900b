package main

import (
	"maps"
	"os/exec"
	"strings"
	"testing"
)

// plainGo runs the go command in dir and returns its exit status and
// combined output.
func plainGo(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// oldLoop is a module at go 1.21 whose test passes only with the loop
// variables of Go 1.21 and before (one variable for the whole loop), and
// whose test calls fmt.Printf with a non-constant format, which vet flags
// only in files at go 1.24 or later.
var oldLoop = map[string]string{
	"go.mod": "module example.com/oldloop\n\ngo 1.21\n",
	"old.go": `package oldloop

import "sync"

var mu sync.Mutex

// Addresses returns the address of the loop variable in each iteration.
func Addresses() []*int {
	mu.Lock()
	defer mu.Unlock()
	var ps []*int
	for i := 0; i < 3; i++ {
		ps = append(ps, &i)
	}
	return ps
}
`,
	"old_test.go": `package oldloop

import (
	"fmt"
	"testing"
)

func TestOneLoopVariable(t *testing.T) {
	ps := Addresses()
	if ps[0] != ps[2] {
		t.Fatal("a new loop variable per iteration: these are Go 1.22 semantics, not go 1.21's")
	}
	fmt.Printf("LOCK TYPE %T\n", &mu)
}

func TestFormat(t *testing.T) {
	format := "%d\n"
	fmt.Printf(format, 1)
}
`,
}

func TestOldGoLineKeepsItsLoopVariables(t *testing.T) {
	mod := t.TempDir()
	writeTree(t, mod, oldLoop)
	before := snapshot(t, mod)
	if code, out := plainGo(t, mod, "test", "-count=1", "."); code != 0 {
		t.Fatalf("plain go test fails: the test module is wrong:\n%s", out)
	}
	env := []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot}
	r := lockscope(t, mod, env, "test", "-count=1", "-v", ".")
	if r.code != 0 || !strings.Contains(r.stdout, "--- PASS: TestOneLoopVariable") || !strings.Contains(r.stdout, "LOCK TYPE *debugmutex.Mutex") {
		t.Errorf("lockscope test of a go 1.21 module: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "note:") {
		t.Errorf("the go line was raised:\n%s", r.stderr)
	}
	sameTree(t, before, snapshot(t, mod))
}

func TestVetSaysWhatItSaysUnderGoTest(t *testing.T) {
	env := []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot}
	const finding = "non-constant format string in call to fmt.Printf"
	for _, c := range []struct {
		goLine string
		flags  bool // vet flags the Printf
	}{{"1.21", false}, {"1.24", true}} {
		mod := t.TempDir()
		files := maps.Clone(oldLoop)
		files["go.mod"] = "module example.com/oldloop\n\ngo " + c.goLine + "\n"
		files["old_test.go"] = strings.Replace(files["old_test.go"], "ps[0] != ps[2]", "ps == nil", 1)
		files["old_test.go"] = strings.Replace(files["old_test.go"], `fmt.Printf(format, 1)`, `fmt.Printf(format)`, 1)
		writeTree(t, mod, files)
		for _, sub := range []string{"vet", "test"} {
			args := []string{sub, "."}
			if sub == "test" {
				args = []string{sub, "-count=1", "."}
			}
			code, out := plainGo(t, mod, args...)
			if (code != 0) != c.flags || strings.Contains(out, finding) != c.flags {
				t.Fatalf("go %s at go %s: exit %d, the test module is wrong:\n%s", sub, c.goLine, code, out)
			}
			r := lockscope(t, mod, env, args...)
			if r.code != code || strings.Contains(r.stdout+r.stderr, finding) != c.flags {
				t.Errorf("lockscope %s at go %s: exit %d, go %s exits %d\n%s%s", sub, c.goLine, r.code, sub, code, r.stdout, r.stderr)
			}
		}
	}
}

// A module at go 1.26 builds with lockscope, whose go.mod says go 1.26.0:
// the go command writes 1.26.0 in the build's go.mod, the same version, and
// lockscope says nothing about it.
func TestSameGoVersionSpelledOtherwiseIsNoNote(t *testing.T) {
	mod := t.TempDir()
	files := maps.Clone(oldLoop)
	files["go.mod"] = "module example.com/oldloop\n\ngo 1.26\n"
	files["old_test.go"] = strings.Replace(files["old_test.go"], "ps[0] != ps[2]", "ps == nil", 1)
	writeTree(t, mod, files)
	r := lockscope(t, mod, []string{"LOCKSCOPE_MODULE_DIR=" + repoRoot}, "test", "-count=1", "-run=TestOneLoopVariable", ".")
	if r.code != 0 {
		t.Fatalf("lockscope test of a go 1.26 module: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "note:") {
		t.Errorf("a note about the go line at go 1.26:\n%s", r.stderr)
	}
}
