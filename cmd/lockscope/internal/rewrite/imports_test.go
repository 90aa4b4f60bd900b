package rewrite

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/lockscope/lockscope/cmd/lockscope/internal/rewrite/rewritetest"
)

func TestRewriteRoundTrip(t *testing.T) {
	for _, c := range rewritetest.SwapCases {
		t.Run(c.Name, func(t *testing.T) {
			got, _, err := Swap(c.Name, []byte(c.Before), false)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.After {
				t.Fatalf("swap:\n%s\nwant:\n%s", got, c.After)
			}
			again, changed, err := Swap(c.Name, got, false)
			if err != nil || changed || string(again) != c.After {
				t.Errorf("second swap changed the file (changed=%v, err=%v)", changed, err)
			}
			back, _, err := Unswap(c.Name, got)
			if err != nil {
				t.Fatal(err)
			}
			// The explicit `sync "sync"` of gen.pb.go is the one case that
			// cannot come back byte for byte: it comes back as "sync".
			want := c.Before
			if c.Name == "gen.pb.go" {
				want = strings.Replace(want, `sync "sync"`, `"sync"`, 1)
			}
			if string(back) != want {
				t.Errorf("unswap:\n%q\nwant:\n%q", back, want)
			}
		})
	}
}

func TestUnswapLeavesUserDebugmutexImports(t *testing.T) {
	// An unnamed debugmutex import was written by the user, not by swap.
	src := "package p\n\nimport \"github.com/lockscope/lockscope/debugmutex\"\n\nvar mu debugmutex.Mutex\n"
	got, changed, err := Unswap("p.go", []byte(src))
	if err != nil || changed || string(got) != src {
		t.Errorf("unswap changed a plain debugmutex import: changed=%v err=%v\n%s", changed, err, got)
	}
}

func TestUnswapRefusesDebugmutexOnlyNames(t *testing.T) {
	src := "package p\n\nimport sync \"github.com/lockscope/lockscope/debugmutex\"\n\nvar mu sync.Mutex\n\nfunc init() {\n\tmu.SetName(\"x\")\n\tsync.SetHoldThreshold(0)\n}\n"
	_, _, err := Unswap("p.go", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "p.go:9:") || !strings.Contains(err.Error(), "sync.SetHoldThreshold") {
		t.Errorf("unswap of a file using debugmutex-only API: err = %v, want it named at p.go:9", err)
	}
}

// TestSyncNamesComplete checks syncNames against the sync package of the
// Go toolchain running the test: a name sync gains must be added (and
// debugmutex must re-export it).
func TestSyncNamesComplete(t *testing.T) {
	out, err := exec.Command("go", "doc", "-short", "sync").Output()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) < 2 || (f[0] != "func" && f[0] != "type") {
			continue
		}
		name := f[1]
		if i := strings.IndexAny(name, "[( "); i >= 0 {
			name = name[:i]
		}
		found++
		if !syncNames[name] {
			t.Errorf("sync exports %s, missing from syncNames", name)
		}
	}
	if found != len(syncNames) {
		t.Errorf("go doc lists %d names of sync, syncNames has %d", found, len(syncNames))
	}
}
