package rewrite

import (
	"strings"
	"testing"
)

func TestPathFilter(t *testing.T) {
	var b strings.Builder
	f := NewPathFilter(&b, CopiesPattern(), "./")
	f.Write([]byte("/tmp/lockscope-123/src/a.go:1: x\n../../tmp/lock"))
	if got := b.String(); got != "./a.go:1: x\n" {
		t.Errorf("after a line and a half: %q", got)
	}
	f.Write([]byte("scope-9/src/b/c.go:2: y\n{\"posn\":\"/t/lockscope-1/src/d.go:3\"}\npartial"))
	f.Flush()
	if got := b.String(); got != "./a.go:1: x\n./b/c.go:2: y\n{\"posn\":\"./d.go:3\"}\npartial" {
		t.Errorf("after flush: %q", got)
	}
}
