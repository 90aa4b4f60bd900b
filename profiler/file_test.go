package profiler

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/debugmutex"
)

func readProfile(t *testing.T, path string) *profile.Profile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.ParseData(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	checkValid(t, p)
	return p
}

// countFor returns the first value of the samples of lock name.
func countFor(p *profile.Profile, name string) int64 {
	var n int64
	for _, s := range p.Sample {
		if s.Label["lock"][0] == name {
			n += s.Value[0]
		}
	}
	return n
}

func TestWriteFileReplacesAtomicallyAndLeavesNoTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hold.pb.gz")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(Hold, path); err != nil {
		t.Fatal(err)
	}
	readProfile(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the profile: %v", len(entries), entries)
	}
}

func TestWriteFileErrorsLeaveTheOldFileAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.pb.gz")
	os.WriteFile(path, []byte("old"), 0o644)
	var unknown *UnknownProfileError
	if err := WriteFile("mutex", path); !errors.As(err, &unknown) {
		t.Errorf("WriteFile(\"mutex\") = %v, want an UnknownProfileError", err)
	}
	if err := WriteFile(Hold, filepath.Join(dir, "missing", "p.pb.gz")); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
	if data, _ := os.ReadFile(path); string(data) != "old" {
		t.Errorf("the old file was changed to %q", data)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after failures, want 1: %v", len(entries), entries)
	}
}

func TestFileWriterWritesAtStartAndOnStop(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	var errs []error
	fw, err := StartFileWriter(dir, time.Hour, FilePrefix("app-"), FileErrors(func(err error) { errs = append(errs, err) }))
	if err != nil {
		t.Fatal(err)
	}
	// Written once before StartFileWriter returns.
	for _, name := range Names() {
		if p := fw.Path(name); p != filepath.Join(dir, "app-"+name+".pb.gz") {
			t.Errorf("Path(%q) = %q", name, p)
		}
		readProfile(t, fw.Path(name))
	}
	if n := countFor(readProfile(t, fw.Path(Contention)), "file.stop"); n != 0 {
		t.Fatalf("file.stop contended before it was used: %d", n)
	}
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "file.stop")
	contendNamed(&mu, "file.stop")
	if err := fw.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := countFor(readProfile(t, fw.Path(Contention)), "file.stop"); n != 1 {
		t.Errorf("after Stop, the contention file has %d contentions of file.stop, want 1", n)
	}
	if err := fw.Stop(); err != nil { // a second Stop only writes
		t.Errorf("second Stop: %v", err)
	}
	if len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
}

func TestStartFileWriterRemovesOnlyStaleTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	// What a program that ended during a write leaves, an hour ago and
	// just now (perhaps another writer's, still in flight), and a file
	// that is not lockscope's.
	stale := filepath.Join(dir, ".app-1-contention.pb.gz.tmp123")
	fresh := filepath.Join(dir, ".app-2-hold.pb.gz.tmp456")
	other := filepath.Join(dir, ".notes.tmp789")
	for _, p := range []string{stale, fresh, other} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{stale, other} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := StartFileWriter(dir, time.Hour, FilePrefix("app-3-"))
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Stop()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the hour-old temporary profile is still there (%v)", err)
	}
	for _, p := range []string{fresh, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(p), err)
		}
	}
}

func TestFileWriterWritesPeriodically(t *testing.T) {
	dir := t.TempDir()
	fw, err := StartFileWriter(dir, 50*time.Millisecond, FileProfiles(Contention))
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Stop()
	var mu debugmutex.Mutex
	debugmutex.SetName(&mu, "file.periodic")
	contendNamed(&mu, "file.periodic")
	// The writer runs on its own: wait (bounded) for a write to show it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(fw.Path(Contention))
		if p, err := profile.ParseData(data); err == nil && countFor(p, "file.periodic") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no periodic write within 10s shows the contention")
		}
		<-time.After(10 * time.Millisecond) // polling the file
	}
	if _, err := os.Stat(fw.Path(Hold)); !os.IsNotExist(err) {
		t.Errorf("hold written although only contention was asked for: %v", err)
	}
}

func TestStartFileWriterRejectsBadArguments(t *testing.T) {
	if _, err := StartFileWriter(t.TempDir(), 0); err == nil || !strings.Contains(err.Error(), "interval") {
		t.Errorf("interval 0: %v", err)
	}
	if _, err := StartFileWriter(t.TempDir(), time.Second, FileProfiles("mutex")); err == nil {
		t.Error("unknown profile accepted")
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := StartFileWriter(file, time.Second); err == nil {
		t.Error("a file as directory accepted")
	}
}
