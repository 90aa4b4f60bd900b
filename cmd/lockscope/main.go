// Command lockscope debug-builds Go programs with lockscope's locks, without
// editing them, and reads what those locks report.
//
// Usage:
//
//	lockscope test [go test flags] [packages]   go test with debugmutex swapped in
//	lockscope build|run|vet [go flags] ...      the same for go build, go run, go vet
//	lockscope swap [-n] [paths]                 rewrite imports of sync to debugmutex, in place
//	lockscope unswap [-n] [paths]               put sync back
//	lockscope report [-kind k,...] [-json] FILE read JSON-lines reports; exit 1 if any
//	lockscope top [-interval d] [-n N] URL      watch a running program's locks
//	lockscope version                           print the version
//	lockscope help [command]                    explain a command
//
// lockscope test, build, run and vet change no file: the module's own
// packages see github.com/lockscope/lockscope/debugmutex wherever they
// import sync, through the go command's -overlay and -modfile flags. Run
// "lockscope help test" for the details.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `lockscope debug-builds Go programs with lockscope's locks and reads their reports.

Usage:

	lockscope [-v] [-lockscope-dir dir] [-deps all|modules] <command> [arguments]

Commands:

	test      go test with every sync lock of the module swapped for debugmutex
	build     go build, the same way
	run       go run, the same way
	vet       go vet, the same way
	swap      rewrite imports of "sync" to debugmutex in place
	unswap    rewrite them back to "sync"
	report    read JSON-lines reports (LOCKSCOPE_REPORT_FILE); exit 1 if any
	top       watch the locks of a running program through its HTTP endpoint
	version   print lockscope's version
	help      explain a command: lockscope help <command>

test, build, run and vet change no file of the module. Start with:

	lockscope test ./...
`

// globals are the flags before the command.
type globals struct {
	verbose      bool
	lockscopeDir string
	deps         string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs lockscope with args and returns its exit status: 0 for success,
// 2 for a usage mistake, otherwise the command's own status.
func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("lockscope", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var gl globals
	fl.BoolVar(&gl.verbose, "v", false, "for test, build, run and vet: list the files rewritten and the packages left alone")
	fl.StringVar(&gl.lockscopeDir, "lockscope-dir", "", "for test, build, run and vet: build against the lockscope checkout in `dir`")
	fl.StringVar(&gl.deps, "deps", "", "for test, build, run and vet: swap sync in these dependency `modules` too (all, or patterns separated by commas)")
	fl.Usage = func() {
		fmt.Fprint(stderr, usage)
		fmt.Fprintln(stderr, "\nFlags:")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return flagErr(err)
	}
	if fl.NArg() == 0 {
		fl.Usage()
		return 2
	}
	cmd, rest := fl.Arg(0), fl.Args()[1:]
	switch cmd {
	case "test", "build", "run", "vet":
		return cmdGo(cmd, rest, gl, stderr)
	case "swap", "unswap":
		return cmdSwap(cmd, rest, stdout, stderr)
	case "report":
		return cmdReport(rest, stdout, stderr)
	case "top":
		return cmdTop(rest, stdout, stderr)
	case "version":
		if len(rest) > 0 {
			fmt.Fprintln(stderr, "usage: lockscope version")
			return 2
		}
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-help":
		return cmdHelp(rest, stdout, stderr)
	}
	fmt.Fprintf(stderr, "lockscope: unknown command %q\nRun 'lockscope help' for usage.\n", cmd)
	return 2
}

// cmdHelp prints the usage of lockscope or of one command to stdout: help
// that was asked for is output, not an error.
func cmdHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if len(args) > 1 {
		fmt.Fprintln(stderr, "usage: lockscope help [command]")
		return 2
	}
	switch args[0] {
	case "test", "build", "run", "vet":
		fmt.Fprintf(stdout, goUsage, args[0])
		return 0
	case "swap", "unswap", "report", "top":
		// Each command prints its own usage for -h.
		return run([]string{args[0], "-h"}, stdout, stdout)
	case "version":
		fmt.Fprintln(stdout, "usage: lockscope version\n\nPrints the version of lockscope and of the Go toolchain that built it.")
		return 0
	case "help":
		fmt.Fprintln(stdout, "usage: lockscope help [command]")
		return 0
	}
	fmt.Fprintf(stderr, "lockscope help: unknown command %q\n", args[0])
	return 2
}
