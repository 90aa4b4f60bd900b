package profiler

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// WriteFile writes the profile name (see Collect) to the file path,
// atomically: to a temporary file in the same directory, synced, then
// renamed over path, so that a reader (or a crash) never sees a half-written
// profile. The file is made readable by all (0644).
func WriteFile(name, path string) error {
	var buf bytes.Buffer
	if err := WriteProfile(&buf, name); err != nil {
		return err
	}
	return writeFileAtomic(path, buf.Bytes())
}

func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// A FileOption changes what a FileWriter does; see StartFileWriter.
type FileOption interface{ apply(*fileConfig) }

type fileConfig struct {
	prefix  string
	names   []string
	onError func(error)
}

type fileOptionFunc func(*fileConfig)

func (f fileOptionFunc) apply(c *fileConfig) { f(c) }

// FilePrefix puts prefix in front of every file name: with "api-1234-" the
// contention profile goes to <dir>/api-1234-contention.pb.gz. The default is
// no prefix.
func FilePrefix(prefix string) FileOption {
	return fileOptionFunc(func(c *fileConfig) { c.prefix = prefix })
}

// FileProfiles says which profiles to write (default: all of Names).
func FileProfiles(names ...string) FileOption {
	return fileOptionFunc(func(c *fileConfig) { c.names = append([]string(nil), names...) })
}

// FileErrors sets a function that is given the errors of periodic writes
// (default: they are printed to standard error, once per distinct message
// in a row).
func FileErrors(f func(error)) FileOption {
	return fileOptionFunc(func(c *fileConfig) { c.onError = f })
}

// A FileWriter writes profiles to files in a directory, periodically; see
// StartFileWriter.
type FileWriter struct {
	dir      string
	interval time.Duration
	cfg      fileConfig

	mu      sync.Mutex // serialises writes
	lastErr string

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// firstWriteInterval is the first interval between writes: a FileWriter
// writes at once, then after 100ms, and doubles the interval up to the one
// asked for, so that a short-lived program still leaves recent profiles.
const firstWriteInterval = 100 * time.Millisecond

// StartFileWriter writes every profile (see Names) to dir, named
// <name>.pb.gz (see FilePrefix), at once and then periodically until Stop:
// the interval starts at 100ms and doubles up to interval, so that a program
// that ends soon still leaves recent profiles. Each file is replaced
// atomically (see WriteFile). dir is created if needed.
//
// Go has no exit hook: when the program ends, whatever happened since the
// last write is lost unless Stop (or Flush) is called first. Package
// autoprofile also writes on SIGINT and SIGTERM. A program that ends during
// a write leaves that write's hidden temporary file (.<name>.pb.gz.tmp...)
// beside the whole profiles; the next FileWriter started on dir removes
// those older than a minute.
func StartFileWriter(dir string, interval time.Duration, opts ...FileOption) (*FileWriter, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("lockscope: file writer interval %v: want a positive duration", interval)
	}
	fw := &FileWriter{dir: dir, interval: interval, stop: make(chan struct{}), done: make(chan struct{})}
	fw.cfg.names = Names()
	for _, o := range opts {
		o.apply(&fw.cfg)
	}
	for _, n := range fw.cfg.names {
		if _, err := specFor(n); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	removeStaleTemps(dir, time.Now().Add(-staleTempAge))
	if err := fw.Flush(); err != nil {
		return nil, err
	}
	go fw.run()
	return fw, nil
}

// staleTempAge is the age past which a temporary profile file in a
// writer's directory is taken to be left by a program that ended while
// writing it (a write takes milliseconds).
const staleTempAge = time.Minute

// removeStaleTemps removes the temporary files that writeFileAtomic left in
// dir when a program ended during a write (returning from main while a
// periodic write was under way, say), modified before cutoff. Newer ones
// may be another writer's, still in flight.
func removeStaleTemps(dir string, cutoff time.Time) {
	temps, _ := filepath.Glob(filepath.Join(dir, ".*.pb.gz.tmp*"))
	for _, p := range temps {
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && fi.ModTime().Before(cutoff) {
			os.Remove(p)
		}
	}
}

func (fw *FileWriter) run() {
	defer close(fw.done)
	next := min(firstWriteInterval, fw.interval)
	t := time.NewTimer(next)
	defer t.Stop()
	for {
		select {
		case <-fw.stop:
			return
		case <-t.C:
		}
		fw.report(fw.Flush())
		next = min(2*next, fw.interval)
		t.Reset(next)
	}
}

func (fw *FileWriter) report(err error) {
	if fw.cfg.onError != nil {
		if err != nil {
			fw.cfg.onError(err)
		}
		return
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	fw.mu.Lock()
	repeat := msg == fw.lastErr
	fw.lastErr = msg
	fw.mu.Unlock()
	if err != nil && !repeat {
		fmt.Fprintf(os.Stderr, "lockscope: writing profiles: %v\n", err)
	}
}

// Path returns the file that profile name is written to.
func (fw *FileWriter) Path(name string) string {
	return filepath.Join(fw.dir, fw.cfg.prefix+name+".pb.gz")
}

// Flush writes every profile now. It is safe to call from any goroutine,
// including a signal handler's.
func (fw *FileWriter) Flush() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	var errs []error
	for _, n := range fw.cfg.names {
		if err := WriteFile(n, fw.Path(n)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stop stops the periodic writes and writes every profile one last time.
// Calls after the first only write.
func (fw *FileWriter) Stop() error {
	fw.stopOnce.Do(func() {
		close(fw.stop)
		<-fw.done
	})
	return fw.Flush()
}
