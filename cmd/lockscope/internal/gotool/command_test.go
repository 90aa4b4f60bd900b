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

func TestGoRaisedIsALaterVersionNotTheSameOneSpelledOtherwise(t *testing.T) {
	for _, c := range []struct {
		was, now string
		want     bool
	}{
		{"1.26", "1.26.0", false}, {"1.26.0", "1.26", false}, {"1.26", "1.26", false}, {"1.26.0", "1.26.0", false},
		{"1.21", "1.26.0", true}, {"1.26", "1.26.1", true}, {"1.26.0", "1.27", true},
		{"", "1.26.0", false}, {"1.26.1", "1.26", false},
	} {
		if got := GoRaised(c.was, c.now); got != c.want {
			t.Errorf("GoRaised(%q, %q) = %v, want %v", c.was, c.now, got, c.want)
		}
	}
}
