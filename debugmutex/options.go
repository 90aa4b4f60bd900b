package debugmutex

import (
	"time"

	"github.com/lockscope/lockscope/internal/config"
	"github.com/lockscope/lockscope/internal/rt"
	"github.com/lockscope/lockscope/report"
)

// Action is what happens after a report has been delivered: Continue (the
// default), Panic or Exit (see OnReportAction and LOCKSCOPE_ON_REPORT).
type Action = report.Action

// The actions.
const (
	// Continue: carry on (the default). The program is never killed by default.
	Continue = report.Continue
	// Panic: panic in the goroutine that made the report, with the Report
	// as value (the watchdog's reports are delivered without panicking).
	Panic = report.Panic
	// Exit: exit the process with status report.ExitCode (66) after the
	// report is written.
	Exit = report.Exit
)

// Option changes the configuration; see Configure.
type Option interface{ apply(*config.Settings) }

type optionFunc func(*config.Settings)

func (f optionFunc) apply(s *config.Settings) { f(s) }

// HoldThreshold reports locks held longer than d (0 disables).
func HoldThreshold(d time.Duration) Option {
	return optionFunc(func(s *config.Settings) { s.HoldThreshold.Store(int64(d)) })
}

// WaitThreshold reports waits longer than d (0 disables).
func WaitThreshold(d time.Duration) Option {
	return optionFunc(func(s *config.Settings) { s.WaitThreshold.Store(int64(d)) })
}

// RecursiveGrace sets how long a goroutine may wait for a lock it holds
// itself before it is reported (see EnvRecursiveGrace).
func RecursiveGrace(d time.Duration) Option {
	return optionFunc(func(s *config.Settings) { s.RecursiveGrace.Store(int64(d)) })
}

// OnReportAction sets what happens after each report.
func OnReportAction(a report.Action) Option {
	return optionFunc(func(s *config.Settings) { s.Action.Store(int32(a)) })
}

// Quiet stops (true) or restarts (false) reports going to standard error.
func Quiet(q bool) Option {
	return optionFunc(func(s *config.Settings) { s.Quiet.Store(q) })
}

// SamplingPeriod sets the largest sampling period for timing short holds
// (1 times every acquisition).
func SamplingPeriod(n int) Option {
	if n < 1 {
		n = 1
	}
	return optionFunc(func(s *config.Settings) { s.MaxPeriod.Store(int32(n)) })
}

// Configure applies options on top of the environment's configuration. It is
// safe to call at any time, from any goroutine.
func Configure(opts ...Option) {
	for _, o := range opts {
		o.apply(&config.Cfg)
	}
	rt.KickWatchdog()
}
