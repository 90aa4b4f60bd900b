package report

import (
	"strings"
	"testing"
)

func TestLocksOfTwoPackagesAreNamedWithTheirClasses(t *testing.T) {
	r := Report{Kind: KindLockOrder, Summary: "s", Locks: []LockRef{
		{ID: 2, Name: "store.mu", Type: "Mutex", Class: "example.com/store.mu"},
		{ID: 3, Name: "service.accounts", Type: "Mutex", Class: "example.com/service.accounts"},
	}}
	text := r.String()
	for _, want := range []string{"  store.mu (Mutex #2, class example.com/store.mu)\n", "  service.accounts (Mutex #3, class example.com/service.accounts)\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	// One package: the names say it all.
	r.Locks[1].Class = "example.com/store.DB.mu"
	r.Locks[1].Name = "DB.mu"
	text = r.String()
	if strings.Contains(text, "class ") || !strings.Contains(text, "  DB.mu (Mutex #3)\n") {
		t.Errorf("locks of one package named with their classes:\n%s", text)
	}
}

func TestClassPackage(t *testing.T) {
	for class, want := range map[string]string{
		"example.com/store.DB.mu": "example.com/store",
		"main.mu":                 "main",
		"":                        "",
		"example.com/x/y.T.f[]":   "example.com/x/y",
	} {
		if got := classPackage(class); got != want {
			t.Errorf("classPackage(%q) = %q, want %q", class, got, want)
		}
	}
}
