package debugmutex

import "time"

// Option changes the configuration; see Configure.
type Option interface{ apply(*settings) }

type optionFunc func(*settings)

func (f optionFunc) apply(s *settings) { f(s) }

// HoldThreshold reports locks held longer than d (0 disables).
func HoldThreshold(d time.Duration) Option {
	return optionFunc(func(s *settings) { s.holdThreshold.Store(int64(d)) })
}

// WaitThreshold reports waits longer than d (0 disables).
func WaitThreshold(d time.Duration) Option {
	return optionFunc(func(s *settings) { s.waitThreshold.Store(int64(d)) })
}

// RecursiveGrace sets how long a goroutine may wait for a lock it holds
// itself before it is reported (see EnvRecursiveGrace).
func RecursiveGrace(d time.Duration) Option {
	return optionFunc(func(s *settings) { s.recursiveGrace.Store(int64(d)) })
}

// OnReportAction sets what happens after each report.
func OnReportAction(a Action) Option {
	return optionFunc(func(s *settings) { s.action.Store(int32(a)) })
}

// Quiet stops (true) or restarts (false) reports going to standard error.
func Quiet(q bool) Option {
	return optionFunc(func(s *settings) { s.quiet.Store(q) })
}

// SamplingPeriod sets the largest sampling period for timing short holds
// (1 times every acquisition).
func SamplingPeriod(n int) Option {
	if n < 1 {
		n = 1
	}
	return optionFunc(func(s *settings) { s.maxPeriod.Store(int32(n)) })
}

// ReportAction returns what happens after a report now (LOCKSCOPE_ON_REPORT
// or OnReportAction): writers of what lockscope recorded (profiles) flush
// on a report when it is Exit, as the program ends right after it.
func ReportAction() Action { return Action(cfg.action.Load()) }

// Configure applies options on top of the environment's configuration. It is
// safe to call at any time, from any goroutine.
func Configure(opts ...Option) {
	for _, o := range opts {
		o.apply(&cfg)
	}
	kickWatchdog()
}
