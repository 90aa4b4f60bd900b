//go:build !nolockscope

package debugmutex

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/internal/delivery"
	"github.com/lockscope/lockscope/internal/rt"
)

func TestRecordTracesWritesTheWindowOnAReport(t *testing.T) {
	Configure(Quiet(true)) // the report is expected
	t.Cleanup(func() { Configure(Quiet(false)) })
	dir := t.TempDir()
	stop, err := delivery.RecordTraces(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	wrote := make(chan string, 4)
	delivery.FlightMu.Lock()
	delivery.Flight.Wrote = wrote
	delivery.FlightMu.Unlock()
	if _, err := delivery.RecordTraces(dir); err == nil {
		t.Error("a second recorder started")
	}

	// A goroutine blocked on a lock another holds while the report is made
	// (held by another goroutine: held by this one, it would be a gate lock
	// making the inversion below harmless).
	var held Mutex
	SetName(&held, "flight.held")
	locked, release, released := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		held.Lock()
		close(locked)
		<-release
		held.Unlock()
		close(released)
	}()
	<-locked
	waiter := make(chan int64)
	done := make(chan struct{})
	go func() {
		waiter <- rt.CurGoid()
		held.Lock()
		held.Unlock()
		close(done)
	}()
	wg := <-waiter
	for !flightWaiting("flight.held") {
		time.Sleep(time.Millisecond) // polling for the waiter to block
	}

	var a, b Mutex
	SetName(&a, "flight.a")
	SetName(&b, "flight.b")
	a.Lock()
	b.Lock()
	b.Unlock()
	a.Unlock()
	b.Lock()
	a.Lock() // the inversion: a report, and a trace
	a.Unlock()
	b.Unlock()

	var name string
	select {
	case name = <-wrote:
	case <-time.After(30 * time.Second):
		t.Fatal("no trace written 30s after the report")
	}
	close(release)
	<-released
	<-done
	if !strings.HasPrefix(filepath.Base(name), "lockscope-") || !strings.HasSuffix(name, "-lock-order.trace") {
		t.Errorf("trace named %s, want lockscope-<prog>-<pid>-<n>-lock-order.trace", name)
	}
	txt, err := os.ReadFile(strings.TrimSuffix(name, ".trace") + ".txt")
	if err != nil || !strings.Contains(string(txt), "lock-order inversion flight.a -> flight.b") {
		t.Errorf("report text beside the trace: %v\n%s", err, txt)
	}
	// go tool trace reads it, and it shows the waiter blocked.
	out, err := exec.Command("go", "tool", "trace", "-d=parsed", name).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool trace -d=parsed: %v\n%.2000s", err, out)
	}
	g := "GoID=" + strconv.FormatInt(wg, 10) + " "
	blocked := false
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, g) && strings.Contains(line, "Running->Waiting") {
			blocked = true
		}
	}
	if !blocked {
		t.Errorf("the trace has no Running->Waiting transition of the waiting goroutine %d (%d bytes of events)", wg, len(out))
	}
}

func flightWaiting(lock string) bool {
	for _, w := range inspect.Snapshot().Waiting {
		if w.Lock.Name == lock {
			return true
		}
	}
	return false
}
