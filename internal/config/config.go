package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lockscope/lockscope/report"
)

// The environment variables lockscope reads at start. All start LOCKSCOPE_.
const (
	// EnvSwitch turns recording off when set to "off", "0" or "false": every
	// lock then costs a branch more than sync's.
	EnvSwitch = "LOCKSCOPE"
	// EnvHoldThreshold is the hold duration after which a lock is reported
	// as held too long (a Go duration, e.g. "30s"; "0" disables).
	EnvHoldThreshold = "LOCKSCOPE_HOLD_THRESHOLD"
	// EnvWaitThreshold is the same for waiting.
	EnvWaitThreshold = "LOCKSCOPE_WAIT_THRESHOLD"
	// EnvReportFile names a file that reports are appended to as JSON lines.
	EnvReportFile = "LOCKSCOPE_REPORT_FILE"
	// EnvOnReport says what happens after a report: "continue" (default),
	// "panic", or "exit" (exit status 66 after flushing the report).
	EnvOnReport = "LOCKSCOPE_ON_REPORT"
	// EnvQuiet, when set to 1, stops reports going to standard error.
	EnvQuiet = "LOCKSCOPE_QUIET"
	// EnvSampling is the largest sampling period for timing holds of locks
	// whose holds are short (default 64; 1 times every acquisition).
	EnvSampling = "LOCKSCOPE_SAMPLING"
	// EnvRecursiveGrace is how long a goroutine must wait for a lock it holds
	// itself before that is reported as a deadlock (default 1s): a mutex used
	// as a baton is unlocked by another goroutine within it.
	EnvRecursiveGrace = "LOCKSCOPE_RECURSIVE_GRACE"
)

// Settings holds the configuration. Durations are atomics so that tests and
// Configure can change them while locks are in use.
type Settings struct {
	HoldThreshold  atomic.Int64 // ns; 0 = off
	WaitThreshold  atomic.Int64
	RecursiveGrace atomic.Int64
	MaxPeriod      atomic.Int32
	Action         atomic.Int32
	Quiet          atomic.Bool
}

var Cfg Settings

// Disabled is set once, at start, from LOCKSCOPE. Read on every lock
// operation, written only during package initialisation.
var Disabled = compiledOut || SwitchedOff(os.Getenv(EnvSwitch))

func SwitchedOff(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "off", "0", "false", "no":
		return true
	}
	return false
}

// Defaults: long enough that correct programs stay quiet.
const (
	DefaultHoldThreshold  = 30 * time.Second
	defaultWaitThreshold  = 30 * time.Second
	defaultRecursiveGrace = time.Second
	defaultMaxPeriod      = 64
)

func init() {
	Cfg.HoldThreshold.Store(int64(envDuration(EnvHoldThreshold, DefaultHoldThreshold)))
	Cfg.WaitThreshold.Store(int64(envDuration(EnvWaitThreshold, defaultWaitThreshold)))
	Cfg.RecursiveGrace.Store(int64(envDuration(EnvRecursiveGrace, defaultRecursiveGrace)))
	Cfg.MaxPeriod.Store(int32(envInt(EnvSampling, defaultMaxPeriod, 1, 1<<20)))
	switch strings.ToLower(os.Getenv(EnvOnReport)) {
	case "", "continue":
	case "panic":
		Cfg.Action.Store(int32(report.Panic))
	case "exit":
		Cfg.Action.Store(int32(report.Exit))
	default:
		configWarning(EnvOnReport, os.Getenv(EnvOnReport), "continue, panic or exit")
	}
	Cfg.Quiet.Store(os.Getenv(EnvQuiet) == "1")
}

func envDuration(name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	if v == "0" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		configWarning(name, v, "a duration such as 10s")
		return def
	}
	return d
}

func envInt(name string, def, lo, hi int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		configWarning(name, v, fmt.Sprintf("an integer from %d to %d", lo, hi))
		return def
	}
	return n
}

func configWarning(name, value, want string) {
	fmt.Fprintf(os.Stderr, "lockscope: ignoring %s=%q: want %s\n", name, value, want)
}

// EnvProof, set to "off", stops lockscope asking for the runtime's proof
// (each consultation costs a garbage collection cycle): hangs are then
// reported when the thresholds run out, as where the proof is unavailable.
const EnvProof = "LOCKSCOPE_PROOF"

// EnvTraceDir names the directory the flight recorder writes traces to; set,
// it starts the recorder at start-up (when recording is on).
const EnvTraceDir = "LOCKSCOPE_TRACE_DIR"
