package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockscope/lockscope/cmd/lockscope/internal/rewrite"
	"github.com/lockscope/lockscope/cmd/lockscope/internal/rewrite/rewritetest"
)

func swapTree() map[string]string {
	files := map[string]string{
		"go.mod":                    "module example.com/swapme\n\ngo 1.22\n",
		"vendor/x/x.go":             "package x\n\nimport \"sync\"\n\nvar M sync.Mutex\n",
		"testdata/t.go":             "package t\n\nimport \"sync\"\n\nvar M sync.Mutex\n",
		".hidden/h.go":              "package h\n\nimport \"sync\"\n\nvar M sync.Mutex\n",
		"inner/not_go.txt":          "import \"sync\"\n",
		"inner/deeper/deep_test.go": "package deeper\n\nimport (\n\t\"sync\"\n\t\"testing\"\n)\n\nfunc TestX(t *testing.T) { var mu sync.Mutex; mu.Lock() }\n",
	}
	for _, c := range rewritetest.SwapCases {
		files["pkg/"+c.Name] = c.Before
	}
	return files
}

func TestSwapUnswapEndToEnd(t *testing.T) {
	dir := t.TempDir()
	mod := filepath.Join(dir, "mod")
	writeTree(t, mod, swapTree())
	// A private file must stay private.
	if err := os.Chmod(filepath.Join(mod, "pkg", "plain.go"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A symbolic link out of the tree must not be followed or replaced.
	outside := filepath.Join(dir, "outside")
	writeTree(t, outside, map[string]string{"o.go": "package o\n\nimport \"sync\"\n\nvar M sync.Mutex\n"})
	if err := os.Symlink(filepath.Join(outside, "o.go"), filepath.Join(mod, "pkg", "link.go")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(mod, "linkdir")); err != nil {
		t.Fatal(err)
	}
	original := snapshot(t, mod)
	outsideBefore := snapshot(t, outside)

	r := lockscope(t, mod, nil, "swap", "./...")
	if r.code != 0 {
		t.Fatalf("swap: exit %d\n%s", r.code, r.stderr)
	}
	swapped := snapshot(t, mod)
	for _, c := range rewritetest.SwapCases {
		if got := swapped["pkg/"+c.Name]; !strings.HasSuffix(got, "\n"+c.After) {
			t.Errorf("after swap, pkg/%s =\n%s\nwant:\n%s", c.Name, got, c.After)
		}
	}
	if got := swapped["pkg/plain.go"]; !strings.HasPrefix(got, "-rw-------\n") {
		t.Errorf("swap lost the mode of plain.go: %q", got[:11])
	}
	if !strings.Contains(swapped["inner/deeper/deep_test.go"], rewrite.DebugPath) {
		t.Errorf("swap did not reach inner/deeper/deep_test.go")
	}
	for _, untouched := range []string{"vendor/x/x.go", "testdata/t.go", ".hidden/h.go", "inner/not_go.txt", "pkg/link.go", "linkdir", "go.mod"} {
		if swapped[untouched] != original[untouched] {
			t.Errorf("swap changed %s", untouched)
		}
	}
	sameTree(t, outsideBefore, snapshot(t, outside))
	if !strings.Contains(r.stderr, "gen.pb.go is generated") {
		t.Errorf("swap did not warn about the generated file:\n%s", r.stderr)
	}

	// Idempotent.
	if r := lockscope(t, mod, nil, "swap"); r.code != 0 || !strings.Contains(r.stderr, "changed 0 of") {
		t.Errorf("second swap: exit %d\n%s", r.code, r.stderr)
	}
	sameTree(t, swapped, snapshot(t, mod))

	r = lockscope(t, mod, nil, "unswap", ".")
	if r.code != 0 {
		t.Fatalf("unswap: exit %d\n%s", r.code, r.stderr)
	}
	// Byte for byte as before, but for the explicit `sync "sync"`.
	want := original
	want["pkg/gen.pb.go"] = strings.Replace(want["pkg/gen.pb.go"], `sync "sync"`, `"sync"`, 1)
	sameTree(t, want, snapshot(t, mod))

	if r := lockscope(t, mod, nil, "unswap"); r.code != 0 || !strings.Contains(r.stderr, "changed 0 of") {
		t.Errorf("second unswap: exit %d\n%s", r.code, r.stderr)
	}
}

func TestSwapVendorAndTestdataWhenAsked(t *testing.T) {
	mod := t.TempDir()
	writeTree(t, mod, swapTree())
	r := lockscope(t, mod, nil, "swap", "-vendor", "-testdata")
	if r.code != 0 {
		t.Fatalf("swap: exit %d\n%s", r.code, r.stderr)
	}
	for _, f := range []string{"vendor/x/x.go", "testdata/t.go"} {
		data, err := os.ReadFile(filepath.Join(mod, f))
		if err != nil || !strings.Contains(string(data), rewrite.DebugPath) {
			t.Errorf("swap -vendor -testdata left %s alone (%v)", f, err)
		}
	}
}

func TestSwapRefusesMalformedAndChangesNothing(t *testing.T) {
	mod := t.TempDir()
	files := swapTree()
	files["pkg/zz_broken.go"] = "package p\n\nimport \"sync\"\n\nfunc f() {\n\tvar mu sync.Mutex\n\tmu.Lock(\n}\n"
	writeTree(t, mod, files)
	before := snapshot(t, mod)
	for _, cmd := range []string{"swap", "unswap"} {
		r := lockscope(t, mod, nil, cmd, ".")
		if r.code == 0 {
			t.Errorf("%s of a tree with a broken file succeeded", cmd)
		}
		if !strings.Contains(r.stderr, filepath.Join("pkg", "zz_broken.go")+":8:") || !strings.Contains(r.stderr, "no files changed") {
			t.Errorf("%s: error does not name zz_broken.go:8 and say nothing changed:\n%s", cmd, r.stderr)
		}
		sameTree(t, before, snapshot(t, mod))
	}
}

func TestSwapDryRunPrintsApplicableDiff(t *testing.T) {
	mod := t.TempDir()
	writeTree(t, mod, swapTree())
	before := snapshot(t, mod)
	r := lockscope(t, mod, nil, "swap", "-n")
	if r.code != 0 {
		t.Fatalf("swap -n: exit %d\n%s", r.code, r.stderr)
	}
	sameTree(t, before, snapshot(t, mod))
	wantHunk := "--- a/pkg/plain.go\n+++ b/pkg/plain.go\n@@ -1,5 +1,5 @@\n package p\n \n-import \"sync\"\n+import sync \"github.com/lockscope/lockscope/debugmutex\"\n \n var mu sync.Mutex\n"
	if !strings.Contains(r.stdout, wantHunk) {
		t.Errorf("swap -n output lacks\n%s\ngot:\n%s", wantHunk, r.stdout)
	}
	if !strings.Contains(r.stdout, "\\ No newline at end of file") {
		t.Errorf("swap -n does not mark raw.go's missing final newline")
	}
	// The diff must be one git can apply, giving what swap writes.
	patch := filepath.Join(t.TempDir(), "swap.diff")
	if err := os.WriteFile(patch, []byte(r.stdout), 0o666); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("git", "apply", "--unsafe-paths", patch)
	cmd.Dir = mod
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git apply: %v\n%s", err, out)
	}
	applied := snapshot(t, mod)
	other := t.TempDir()
	writeTree(t, other, swapTree())
	if r := lockscope(t, other, nil, "swap"); r.code != 0 {
		t.Fatalf("swap: exit %d\n%s", r.code, r.stderr)
	}
	sameTree(t, snapshot(t, other), applied)
}

func TestUnifiedDiffHunks(t *testing.T) {
	var a, b strings.Builder
	for i := 1; i <= 30; i++ {
		line := strings.Repeat("x", i%7) + "\n"
		a.WriteString(line)
		if i == 2 || i == 20 {
			line = "changed\n"
		}
		b.WriteString(line)
	}
	got := unifiedDiff("f", "f", []byte(a.String()), []byte(b.String()))
	if n := strings.Count(got, "@@ -"); n != 2 {
		t.Errorf("two changes 18 lines apart should make 2 hunks, got %d:\n%s", n, got)
	}
	if !strings.Contains(got, "@@ -1,5 +1,5 @@\n") || !strings.Contains(got, "@@ -17,7 +17,7 @@\n") {
		t.Errorf("wrong hunk ranges:\n%s", got)
	}
	if unifiedDiff("f", "f", []byte("same\n"), []byte("same\n")) != "" {
		t.Error("diff of equal inputs is not empty")
	}
}

func TestHelpSwapSaysHowToRequireAnUnpublishedModule(t *testing.T) {
	r := lockscope(t, t.TempDir(), nil, "help", "swap")
	for _, want := range []string{"-replace=github.com/lockscope/lockscope=/path/to/lockscope", "go mod tidy"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("lockscope help swap: exit %d, lacks %q:\n%s", r.code, want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "go get") && !strings.Contains(r.stdout, "go get cannot fetch it") {
		t.Errorf("lockscope help swap still says go get:\n%s", r.stdout)
	}
}
