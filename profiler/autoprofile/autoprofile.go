// Package autoprofile writes lock profiles to files, and optionally serves
// them over HTTP, when the environment asks for it: for programs that only
// swapped their locks for debugmutex. Import it for its side effect:
//
//	import _ "github.com/lockscope/lockscope/profiler/autoprofile"
//
// The environment variables, read once at init:
//
//	LOCKSCOPE_PROFILE_DIR=dir         write every profile to dir (created if needed) as
//	                                  <program>-<pid>-<profile>.pb.gz, e.g.
//	                                  dir/server-4242-contention.pb.gz; a test
//	                                  binary's as <package>.test-<profile>.pb.gz,
//	                                  e.g. dir/example.com_store.test-hold.pb.gz
//	LOCKSCOPE_PROFILE_INTERVAL=1s     how often (default 1s; the first writes come
//	                                  sooner: at start, after 100ms, 200ms, ...)
//	LOCKSCOPE_PROFILE_SIGNALS=0       do not write on SIGINT and SIGTERM (see below)
//	LOCKSCOPE_PROFILE_ADDR=:6060      serve /debug/locks/ on this address; without a
//	                                  host it binds to 127.0.0.1
//
// Nothing is written, no signal is caught and no port is opened unless these
// are set.
//
// Go has no exit hook, so the files are kept current by writing them
// periodically, once more on SIGINT or SIGTERM, after which the signal is
// raised again so that the program ends as it would have, once more when a
// report ends the program (LOCKSCOPE_ON_REPORT=exit), and a last time in
// inspect.Exiting, which lockscope test calls at the end of every test
// binary (and locktest.VerifyTestMain too). What happened since the last
// write is lost when the program ends otherwise, by returning from main or
// calling os.Exit (log.Fatal, ...): call Stop or inspect.Exiting before,
// or keep the interval short. A program that handles SIGINT or SIGTERM itself receives
// such a signal twice (once when sent, once raised again after the profiles
// are written): set LOCKSCOPE_PROFILE_SIGNALS=0 and call Stop on its way out
// instead.
package autoprofile

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/profiler"
	"github.com/lockscope/lockscope/report"
)

// The environment variables autoprofile reads.
const (
	// EnvDir is the directory to write profiles to; unset: none written.
	EnvDir = "LOCKSCOPE_PROFILE_DIR"
	// EnvInterval is the interval between writes (default DefaultInterval).
	EnvInterval = "LOCKSCOPE_PROFILE_INTERVAL"
	// EnvSignals set to 0 stops autoprofile catching SIGINT and SIGTERM.
	EnvSignals = "LOCKSCOPE_PROFILE_SIGNALS"
	// EnvAddr is an address to serve /debug/locks/ on (loopback unless a
	// host is given); unset: no port is opened.
	EnvAddr = "LOCKSCOPE_PROFILE_ADDR"
)

// DefaultInterval is the interval between writes when EnvInterval is unset.
const DefaultInterval = time.Second

var fw *profiler.FileWriter

func init() {
	start(os.Getenv)
}

func start(getenv func(string) string) {
	if addr := getenv(EnvAddr); addr != "" {
		go func() {
			// A debugging aid must not stop the program: say why, go on.
			err := profiler.ListenAndServe(addr)
			fmt.Fprintf(os.Stderr, "lockscope: not serving lock profiles on %s: %v\n", addr, err)
		}()
	}
	dir := getenv(EnvDir)
	if dir == "" {
		return
	}
	interval := DefaultInterval
	if v := getenv(EnvInterval); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "lockscope: ignoring %s=%q: want a positive duration such as 1s\n", EnvInterval, v)
		} else {
			interval = d
		}
	}
	w, err := profiler.StartFileWriter(dir, interval, profiler.FilePrefix(filePrefix()))
	if err != nil {
		fmt.Fprintf(os.Stderr, "lockscope: not writing lock profiles: %v\n", err)
		return
	}
	fw = w
	// The end of main or TestMain, where the program calls
	// inspect.Exiting (lockscope test does, in every test binary):
	// the last write, after the end's reports.
	inspect.AtExit(func() {
		if err := w.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "lockscope: writing lock profiles at exit: %v\n", err)
		}
	})
	// LOCKSCOPE_ON_REPORT=exit ends the program right after a report is
	// delivered: write first (handlers run before the exit).
	inspect.OnReport(func(report.Report) {
		if inspect.ReportAction() == report.Exit {
			if err := w.Flush(); err != nil {
				fmt.Fprintf(os.Stderr, "lockscope: writing lock profiles before exiting on a report: %v\n", err)
			}
		}
	})
	if getenv(EnvSignals) != "0" {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		go onSignal(ch)
	}
}

// filePrefix is "<program>-<pid>-", so that several programs, or several
// runs, do not overwrite each other's profiles. A test binary's is its
// package's import path, "/" made "_", as in
// "example.com_store.test-": go test ./... runs one binary per package, and
// its profiles are named by package, replaced by the next run of the same
// package as go test -mutexprofile's are.
func filePrefix() string {
	if bi, ok := debug.ReadBuildInfo(); ok && strings.HasSuffix(bi.Path, ".test") {
		return strings.NewReplacer("/", "_", "\\", "_").Replace(bi.Path) + "-"
	}
	prog := filepath.Base(os.Args[0])
	prog = strings.TrimSuffix(prog, ".exe")
	return fmt.Sprintf("%s-%d-", prog, os.Getpid())
}

// onSignal writes the profiles when the program is asked to stop, then
// raises the signal again with the default action restored (unless the
// program has a handler of its own), so that the program ends as it would
// have without autoprofile: killed by the signal.
func onSignal(ch chan os.Signal) {
	sig := <-ch
	if err := fw.Flush(); err != nil {
		fmt.Fprintf(os.Stderr, "lockscope: writing lock profiles on %v: %v\n", sig, err)
	}
	signal.Stop(ch)
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Signal(sig)
	}
}

// Dir returns the directory profiles are written to, or "" if autoprofile
// is not writing any.
func Dir() string {
	if fw == nil {
		return ""
	}
	return filepath.Dir(fw.Path(profiler.Contention))
}

// Path returns the file profile name is written to, or "" if autoprofile is
// not writing any.
func Path(name string) string {
	if fw == nil {
		return ""
	}
	return fw.Path(name)
}

// Stop writes the profiles one last time and stops the periodic writes, if
// autoprofile is writing any. Call it on the program's way out (for example
// deferred in main) so that the files hold everything.
func Stop() error {
	if fw == nil {
		return nil
	}
	return fw.Stop()
}
