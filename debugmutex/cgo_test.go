//go:build cgo && linux && (amd64 || arm64)

package debugmutex_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestCgoCallback runs testdata/cgocallback: C calls an exported Go function
// that takes contended and nested locks (so lockscope walks the stack) with
// junk in the frame-pointer register, from a goroutine's thread and from a
// thread C created. A walk that follows the junk dies of "unexpected fault
// address"; fp.go's stops at the goroutine stack's bounds and takes the
// stack with runtime.Callers instead. The program also checks the stacks it
// recorded. (Built only where cgo is on and the test's assembly exists:
// the frame-pointer walk is amd64 and arm64 only.)
func TestCgoCallback(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(wd)
	dir := t.TempDir()
	src := filepath.Join("testdata", "cgocallback")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	gomod := "module example.com/cgocallback\n\ngo 1.26\n\nrequire github.com/lockscope/lockscope v0.0.0\n\nreplace github.com/lockscope/lockscope => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "cgocallback")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=1", "GOFLAGS=-mod=mod -buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build (cgo): %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-v").CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "ok\n") {
		t.Fatalf("cgocallback: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
