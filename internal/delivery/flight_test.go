package delivery

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// While a trace is being written its final name does not exist, and a
// write that fails leaves nothing behind: no reader sees a partial file.
func TestWriteRenamedShowsOnlyCompleteFiles(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "lockscope-x-1-1-lock-order.trace")
	err := writeRenamed(name, func(w *bufio.Writer) error {
		w.WriteString("first half ")
		w.Flush()
		if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the final name exists mid-write: %v", err)
		}
		_, err := w.WriteString("second half")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(name); err != nil || string(b) != "first half second half" {
		t.Errorf("%s: %q, %v; want the whole content", name, b, err)
	}
	if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("%s: %v, %v; want mode 0644", name, fi, err)
	}

	failed := filepath.Join(dir, "lockscope-x-1-2-lock-order.trace")
	boom := errors.New("disk full")
	if err := writeRenamed(failed, func(w *bufio.Writer) error {
		w.WriteString("partial")
		w.Flush()
		return boom
	}); !errors.Is(err, boom) {
		t.Errorf("writeRenamed returned %v, want the write's error", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != filepath.Base(name) {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only the complete file", names)
	}
}
