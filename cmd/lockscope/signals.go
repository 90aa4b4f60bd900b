package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// signals keeps lockscope's temporary directory from outliving it. An
// interrupt or termination while the go command runs is passed on to it
// (a terminal's ^C reaches it anyway) and lockscope waits for it, then
// cleans up as usual; one that comes before the go command is started or
// after it ended removes the directory and exits at once. SIGPIPE (the
// reader of lockscope's output went away: lockscope vet | head -1) is
// caught so that a write to the closed pipe is an error lockscope carries
// on from, not the end of lockscope with its directory left behind.
type signals struct {
	tmp  string
	ch   chan os.Signal
	done chan struct{}

	mu    sync.Mutex // held while the child starts, so a signal sees it
	child *os.Process
}

// catchSignals starts watching for signals; stop ends it.
func catchSignals(tmp string) *signals {
	s := &signals{tmp: tmp, ch: make(chan os.Signal, 4), done: make(chan struct{})}
	signal.Notify(s.ch, os.Interrupt, syscall.SIGTERM, syscall.SIGPIPE)
	go s.loop()
	return s
}

func (s *signals) loop() {
	for {
		select {
		case sig := <-s.ch:
			if sig == syscall.SIGPIPE {
				continue
			}
			s.mu.Lock()
			child := s.child
			s.mu.Unlock()
			if child != nil {
				child.Signal(sig)
				continue
			}
			os.RemoveAll(s.tmp)
			n := 2
			if sn, ok := sig.(syscall.Signal); ok {
				n = int(sn)
			}
			os.Exit(128 + n)
		case <-s.done:
			return
		}
	}
}

// stop stops watching. Writes to a closed pipe go on returning errors.
func (s *signals) stop() {
	signal.Stop(s.ch)
	close(s.done)
}

// start starts cmd as the child signals are passed on to.
func (s *signals) start(cmd *exec.Cmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	s.child = cmd.Process
	return nil
}

// ended says the child is gone.
func (s *signals) ended() {
	s.mu.Lock()
	s.child = nil
	s.mu.Unlock()
}

// runChild runs cmd with lockscope's standard input and the given output
// streams, passes signals on to it (see signals), and returns its exit
// status.
func runChild(cmd *exec.Cmd, sigs *signals, env []string, childOut, childErr, stderr io.Writer) int {
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, childOut, childErr
	if err := sigs.start(cmd); err != nil {
		fmt.Fprintf(stderr, "lockscope: %v\n", err)
		return 1
	}
	err := cmd.Wait()
	sigs.ended()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	default:
		fmt.Fprintf(stderr, "lockscope: %v\n", err)
		return 1
	}
}

// quietAfter is how long the go command may be silent before lockscope
// says it is still at work.
var quietAfter = 30 * time.Second

// progress says, while the go command is silent (go test prints nothing
// while it builds, and nothing of a package until its tests are done),
// that it is still at work.
type progress struct {
	writes atomic.Int64 // output seen so far
	stopc  chan struct{}
	wg     sync.WaitGroup
}

// watch starts telling w, every quietAfter of silence, what sub is doing.
func (p *progress) watch(sub string, w io.Writer) {
	p.stopc = make(chan struct{})
	start := time.Now()
	p.wg.Go(func() {
		t := time.NewTicker(quietAfter)
		defer t.Stop()
		last := p.writes.Load()
		for {
			select {
			case <-p.stopc:
				return
			case <-t.C:
				if n := p.writes.Load(); n != last {
					last = n
					continue
				}
				fmt.Fprintf(w, "lockscope: go %s is still building or running (%s so far)\n", sub, time.Since(start).Round(time.Second))
			}
		}
	})
}

func (p *progress) stop() {
	if p.stopc != nil {
		close(p.stopc)
		p.wg.Wait()
	}
}

// counting counts writes to w in p.
type counting struct {
	w io.Writer
	p *progress
}

func (c counting) Write(b []byte) (int, error) {
	c.p.writes.Add(1)
	return c.w.Write(b)
}
