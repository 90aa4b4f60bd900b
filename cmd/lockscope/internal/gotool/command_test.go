package gotool

import "testing"

func TestOlderGo(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{{"1.21", "1.22", true}, {"1.22", "1.22", false}, {"1.22.3", "1.22", false}, {"1.9", "1.22", true}, {"", "1.22", true}} {
		if got := olderGo(c.a, c.b); got != c.want {
			t.Errorf("olderGo(%q, %q) = %v", c.a, c.b, got)
		}
	}
}
