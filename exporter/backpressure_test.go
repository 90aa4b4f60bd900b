//go:build !nolockscope

package exporter

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lockscope/lockscope/debugmutex"
)

// Never the cause: whatever happens downstream, locking does not wait for
// the exporter, and what cannot be exported is dropped and counted.

// holdFreshLocks locks and unlocks n new locks. A new lock times its first
// hold (see debugmutex's sampling), so with a MinHold of 1ns each makes one
// hold event.
func holdFreshLocks(n int) {
	for range n {
		var mu debugmutex.Mutex
		mu.Lock()
		time.Sleep(time.Microsecond) // a hold of measurable length
		mu.Unlock()
	}
}

// within runs f and fails the test if it has not returned after d: lock
// operations that waited for the exporter would show up here.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not finish in %v: locking waits for the exporter", what, d)
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestCollectorDownLocksCompleteAndDropsAreCounted(t *testing.T) {
	ctx := context.Background()
	// A real OTLP exporter pointed at a port nobody listens on: each export
	// attempt fails, is retried, and holds the batch processor for seconds.
	se, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(closedPort(t)), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	const queue = 8
	e, err := Start(ctx, WithSpanExporter(se), WithQueueSize(queue), WithMinHold(time.Nanosecond), WithMinWait(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}

	const workers, perWorker = 4, 500
	within(t, 20*time.Second, "lock operations with the collector down", func() {
		var wg sync.WaitGroup
		var shared debugmutex.Mutex
		for range workers {
			wg.Go(func() {
				holdFreshLocks(perWorker)
				for range perWorker { // contention too: waits
					shared.Lock()
					shared.Unlock()
				}
			})
		}
		wg.Wait()
	})

	// Convert what was received; exporting cannot finish, so Flush times out.
	fctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := e.Flush(fctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush with the collector down: %v, want a deadline error", err)
	}
	st := e.Stats()
	t.Logf("stats with the collector down: %+v", st)
	if st.Events+st.DroppedEvents < workers*perWorker {
		t.Errorf("events %d + dropped %d, want at least the %d fresh-lock holds", st.Events, st.DroppedEvents, workers*perWorker)
	}
	if st.Spans != st.Events-st.SampledOut {
		t.Errorf("spans %d, want every event received (%d)", st.Spans, st.Events)
	}
	if st.Exported != 0 {
		t.Errorf("%d spans exported to a closed port", st.Exported)
	}
	if st.DroppedSpans == 0 {
		t.Error("no spans dropped although the queue holds 8 and nothing was exported")
	}
	// Memory stays bounded: what is neither exported, failed nor dropped is
	// queued or in the export under way, and that is at most the queue size.
	pending := int64(st.Spans) - int64(st.Exported+st.FailedSpans+st.DroppedSpans)
	if queued := e.st.pending.Load(); pending < 0 || pending > queue || queued > pending {
		t.Errorf("%d spans queued or being exported (%d queued), want 0..%d", pending, queued, queue)
	}

	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	within(t, 5*time.Second, "Stop with the collector down", func() { e.Stop(sctx) })
}

// blockingProcessor stands for a TracerProvider that has become very slow:
// OnEnd blocks until release is closed.
type blockingProcessor struct {
	blocked chan struct{} // closed on the first OnEnd
	release chan struct{}
	once    sync.Once
}

func (p *blockingProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (p *blockingProcessor) OnEnd(sdktrace.ReadOnlySpan) {
	p.once.Do(func() { close(p.blocked) })
	<-p.release
}
func (p *blockingProcessor) Shutdown(context.Context) error   { return nil }
func (p *blockingProcessor) ForceFlush(context.Context) error { return nil }

func TestStuckTracerProviderDropsEventsNotLocks(t *testing.T) {
	p := &blockingProcessor{blocked: make(chan struct{}), release: make(chan struct{})}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	const buffer = 4
	e, err := Start(context.Background(), WithTracerProvider(tp), WithBuffer(buffer), WithMinHold(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	holdFreshLocks(1)
	select {
	case <-p.blocked: // the exporter goroutine is stuck in OnEnd
	case <-time.After(10 * time.Second):
		t.Fatal("the hold of a new lock made no span")
	}

	const more = 100
	within(t, 10*time.Second, "lock operations with the exporter stuck", func() { holdFreshLocks(more) })
	st := e.Stats()
	if st.DroppedEvents != more-buffer {
		t.Errorf("dropped %d events, want %d (%d did not fit in a buffer of %d)", st.DroppedEvents, more-buffer, more, buffer)
	}

	close(p.release)
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Events != 1+buffer || st.Spans != 1+buffer {
		t.Errorf("events %d spans %d, want the blocked one and the %d buffered", st.Events, st.Spans, buffer)
	}
}
