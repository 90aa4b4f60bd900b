package stacks

import "testing"

func TestClassLabelsAreIndexFreeButForLiterals(t *testing.T) {
	for _, tc := range []struct{ fn, label, want string }{
		{"example.com/cache.(*DB).get", "DB.shards[i].mu", "example.com/cache.DB.shards[].mu"},
		{"example.com/cache.(*DB).get", "DB.shards[j].mu", "example.com/cache.DB.shards[].mu"},
		{"example.com/cache.(*DB).get", "DB.shards[0].mu", "example.com/cache.DB.shards[0].mu"},
		{"example.com/cache.(*DB).get", "DB.grid[0x1f][k]", "example.com/cache.DB.grid[0x1f][]"},
		{"example.com/cache.handle", "cache.locks[...]", "example.com/cache.locks[]"},
		{"example.com/cache.handle", `Registry.byName["a"]`, `example.com/cache.Registry.byName["a"]`},
		{"example.com/cache.handle", "Registry.byName[", "example.com/cache.Registry.byName["},
		{"example.com/cache.TestX.func1", "TestX.mu", "example.com/cache.TestX.mu"},
		{"example.com/cache.(*DB).m", "(*DB).m.mu", "example.com/cache.(*DB).m.mu"},
	} {
		if got := qualify(tc.fn, indexFree(tc.label)); got != tc.want {
			t.Errorf("class of %q in %s = %q, want %q", tc.label, tc.fn, got, tc.want)
		}
	}
}
