package main

import (
	"errors"
	"fmt"
	"strings"
)

// goValueFlags are the go command flags that take a separate value
// ("-o file"): scanning the arguments, the value is not a package.
var goValueFlags = map[string]bool{
	"C": true, "p": true, "o": true, "asmflags": true, "buildmode": true, "compiler": true,
	"gccgoflags": true, "gcflags": true, "installsuffix": true, "ldflags": true, "mod": true,
	"modfile": true, "overlay": true, "pgo": true, "pkgdir": true, "tags": true,
	"toolexec": true, "exec": true, "covermode": true, "coverpkg": true, "coverprofile": true,
	"vettool": true, "run": true, "skip": true, "bench": true, "benchtime": true, "count": true,
	"cpu": true, "parallel": true, "timeout": true, "list": true, "fuzz": true, "fuzztime": true,
	"fuzzminimizetime": true, "shuffle": true, "outputdir": true, "blockprofile": true,
	"blockprofilerate": true, "cpuprofile": true, "memprofile": true, "memprofilerate": true,
	"mutexprofile": true, "mutexprofilefraction": true, "trace": true, "lockscope-dir": true, "deps": true,
}

// goArgs is what lockscope needs to know about the go command line.
type goArgs struct {
	rest      []string // arguments for the go command, without the ones below
	chdir     string   // -C
	overlay   string   // the user's -overlay
	modfile   string   // the user's -modfile
	mod       bool     // the user gave -mod
	modValue  string   // its value
	lockscope string   // -lockscope-dir
	deps      string   // -deps (lockscope's, not the go command's)
}

// parseGoArgs picks out of args the flags lockscope must know about. Flags
// are looked for up to the first non-flag argument for run (the rest belongs
// to the program), and up to -args for test (which allows flags after the
// packages).
func parseGoArgs(sub string, args []string) (goArgs, error) {
	var g goArgs
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" || (sub == "test" && (a == "-args" || a == "--args")) {
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if sub == "test" {
				g.rest = append(g.rest, a)
				continue
			}
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var dst *string
		switch name {
		case "C":
			if i != 0 {
				return g, errors.New("-C must be the first flag (as for the go command)")
			}
			dst = &g.chdir
		case "overlay":
			dst = &g.overlay
		case "modfile":
			dst = &g.modfile
		case "lockscope-dir":
			dst = &g.lockscope
		case "deps":
			dst = &g.deps
		case "mod":
			g.mod = true
		}
		if !hasValue && goValueFlags[name] {
			if i+1 >= len(args) {
				return g, fmt.Errorf("flag needs an argument: %s", a)
			}
			value = args[i+1]
			if dst == nil {
				g.rest = append(g.rest, a, value)
			}
			i++
		} else if dst == nil {
			g.rest = append(g.rest, a)
		}
		if dst != nil {
			*dst = value
		}
		if name == "mod" {
			g.modValue = value
		}
	}
	g.rest = append(g.rest, args[i:]...)
	return g, nil
}
