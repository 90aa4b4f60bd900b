package main

import (
	"reflect"
	"testing"
)

func TestParseGoArgs(t *testing.T) {
	for _, c := range []struct {
		sub  string
		args []string
		want goArgs
	}{
		{"test", []string{"-run", "X", "./...", "-overlay=o.json", "-v"},
			goArgs{rest: []string{"-run", "X", "./...", "-v"}, overlay: "o.json"}},
		{"test", []string{"-deps", "all", "./...", "-deps=example.com/...", "-race"},
			goArgs{rest: []string{"./...", "-race"}, deps: "example.com/..."}},
		{"test", []string{"-C", "dir", "-modfile", "m.mod", "-mod=vendor", ".", "-args", "-overlay", "x"},
			goArgs{rest: []string{"-mod=vendor", ".", "-args", "-overlay", "x"}, chdir: "dir", modfile: "m.mod", mod: true, modValue: "vendor"}},
		{"run", []string{"-race", "-lockscope-dir=/src/ls", ".", "-overlay", "prog-arg"},
			goArgs{rest: []string{"-race", ".", "-overlay", "prog-arg"}, lockscope: "/src/ls"}},
		{"build", []string{"-o", "bin", "-tags", "a,b", "./cmd/x"},
			goArgs{rest: []string{"-o", "bin", "-tags", "a,b", "./cmd/x"}}},
	} {
		got, err := parseGoArgs(c.sub, c.args)
		if err != nil {
			t.Errorf("%s %v: %v", c.sub, c.args, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %v:\ngot  %+v\nwant %+v", c.sub, c.args, got, c.want)
		}
	}
	if _, err := parseGoArgs("test", []string{"-v", "-C", "dir"}); err == nil {
		t.Error("-C after another flag accepted")
	}
}
