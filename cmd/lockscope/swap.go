package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lockscope/lockscope/cmd/lockscope/internal/rewrite"
)

const swapUsage = `usage: lockscope swap [-n] [-v] [-vendor] [-testdata] [path ...]
       lockscope unswap [-n] [-v] [-vendor] [-testdata] [path ...]

swap rewrites, in place, every import of "sync" in the Go files under the
given paths (default ".") to import github.com/lockscope/lockscope/debugmutex
under the same name; unswap puts "sync" back. Only the import lines change,
byte for byte: unswap after swap restores the original files exactly, and
running either twice changes nothing the second time. An import of sync
with a //lockscope:keep comment is never swapped.

Every file is parsed before any is written: if one does not parse, swap
names it and changes nothing. Each file is replaced atomically (a temporary
file in the same directory, renamed over it) and keeps its permissions.
Directories are walked recursively; symbolic links are never followed;
vendor/, testdata/ and directories starting with "." or "_" are skipped.

The module must require lockscope afterwards. lockscope is not published
yet (go get cannot fetch it): point the module at a clone of lockscope,
then let the go command complete the requirements:

    go mod edit -require=github.com/lockscope/lockscope@v0.0.0-00010101000000-000000000000 \
                -replace=github.com/lockscope/lockscope=/path/to/lockscope
    go mod tidy

To debug-build without changing any file, use lockscope test (or build,
run, vet) instead: they need none of this.

Flags:
`

// fileChange is one file that swap or unswap will rewrite.
type fileChange struct {
	path     string
	old, new []byte
	mode     fs.FileMode
	tmp      string // temporary file holding new, in path's directory
}

func cmdSwap(name string, args []string, stdout, stderr io.Writer) int {
	unswap := name == "unswap"
	fl := flag.NewFlagSet("lockscope "+name, flag.ContinueOnError)
	fl.SetOutput(stderr)
	dryRun := fl.Bool("n", false, "print a unified diff of the changes and change nothing")
	verbose := fl.Bool("v", false, "name every file changed and every symbolic link skipped")
	vendor := fl.Bool("vendor", false, "also rewrite files under vendor/ directories")
	testdata := fl.Bool("testdata", false, "also rewrite files under testdata/ directories")
	fl.Usage = func() {
		fmt.Fprint(stderr, swapUsage)
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return flagErr(err)
	}
	paths := fl.Args()
	if len(paths) == 0 {
		paths = []string{"."}
	}
	w := walker{vendor: *vendor, testdata: *testdata}
	if *verbose {
		w.skipped = func(path, why string) { fmt.Fprintf(stderr, "lockscope %s: skipping %s: %s\n", name, path, why) }
	}
	files, err := w.goFiles(paths)
	if err != nil {
		fmt.Fprintf(stderr, "lockscope %s: %v\n", name, err)
		return 1
	}

	// Parse and rewrite everything in memory first: one bad file means
	// no file changes.
	edit := func(path string, src []byte) ([]byte, bool, error) { return rewrite.Swap(path, src, false) }
	if unswap {
		edit = rewrite.Unswap
	}
	var changes []*fileChange
	var errs []string
	for _, path := range files {
		fi, err := os.Lstat(path)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		out, changed, err := edit(path, src)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if changed {
			changes = append(changes, &fileChange{path: path, old: src, new: out, mode: fi.Mode().Perm()})
		}
	}
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintf(stderr, "lockscope %s: %s\n", name, e)
		}
		fmt.Fprintf(stderr, "lockscope %s: no files changed\n", name)
		return 1
	}

	if *dryRun {
		for _, c := range changes {
			io.WriteString(stdout, unifiedDiff(c.path, c.path, c.old, c.new))
		}
		fmt.Fprintf(stderr, "lockscope %s: would change %d of %s (dry run, nothing written)\n", name, len(changes), plural(len(files), "Go file"))
		return 0
	}
	if err := commit(changes); err != nil {
		fmt.Fprintf(stderr, "lockscope %s: %v\n", name, err)
		return 1
	}
	for _, c := range changes {
		if *verbose {
			fmt.Fprintf(stderr, "lockscope %s: rewrote %s\n", name, c.path)
		}
		if !unswap && isGenerated(c.new) {
			fmt.Fprintf(stderr, "lockscope %s: note: %s is generated; regenerating it undoes the swap\n", name, c.path)
		}
	}
	fmt.Fprintf(stderr, "lockscope %s: changed %d of %s\n", name, len(changes), plural(len(files), "Go file"))
	if !unswap && len(changes) > 0 {
		fmt.Fprintf(stderr, "lockscope %s: if the module does not require lockscope yet, see lockscope help swap (a replace line and go mod tidy)\n", name)
	}
	return 0
}

// commit writes every change to a temporary file beside its target, and
// only when all of them are written renames them into place. A failure
// while writing leaves every target untouched.
func commit(changes []*fileChange) error {
	cleanup := func() {
		for _, c := range changes {
			if c.tmp != "" {
				os.Remove(c.tmp)
			}
		}
	}
	for _, c := range changes {
		tmp, err := writeTemp(filepath.Dir(c.path), "."+filepath.Base(c.path)+".lockscope-*", c.new, c.mode)
		if err != nil {
			cleanup()
			return fmt.Errorf("%v; no files changed", err)
		}
		c.tmp = tmp
	}
	for i, c := range changes {
		if err := os.Rename(c.tmp, c.path); err != nil {
			cleanup()
			done := make([]string, 0, i)
			for _, d := range changes[:i] {
				done = append(done, d.path)
			}
			return fmt.Errorf("%v (already rewritten: %s)", err, strings.Join(done, ", "))
		}
		c.tmp = ""
	}
	return nil
}

// writeTemp writes data to a new file in dir with the given permissions,
// flushed to disk, and returns its name.
func writeTemp(dir, pattern string, data []byte, mode fs.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	name := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// isGenerated reports whether src carries the standard "Code generated ...
// DO NOT EDIT." comment (https://go.dev/s/generatedcode) before the package
// clause.
func isGenerated(src []byte) bool {
	for line := range strings.Lines(string(src)) {
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "// Code generated ") && strings.HasSuffix(line, " DO NOT EDIT.") {
			return true
		}
		if strings.HasPrefix(line, "package ") {
			return false
		}
	}
	return false
}

// walker lists the Go files under a set of paths.
type walker struct {
	vendor, testdata bool
	// skipped, if set, is told about every symbolic link not followed.
	skipped func(path, why string)
}

// goFiles returns the .go files named by paths: files as given, directories
// walked recursively ("dir/..." means dir). Symbolic links are never
// followed, so nothing outside the named trees is read or written.
func (w walker) goFiles(paths []string) ([]string, error) {
	var files []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			files = append(files, p)
		}
	}
	for _, root := range paths {
		root = strings.TrimSuffix(root, "/...")
		if root == "..." || root == "" {
			root = "."
		}
		fi, err := os.Lstat(root)
		if err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s is a symbolic link; name its target instead", root)
		}
		if !fi.IsDir() {
			if !strings.HasSuffix(root, ".go") {
				return nil, fmt.Errorf("%s is not a Go file or a directory", root)
			}
			add(filepath.Clean(root))
			continue
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type()&fs.ModeSymlink != 0 {
				if w.skipped != nil {
					w.skipped(path, "symbolic link")
				}
				return nil
			}
			if d.IsDir() {
				if path != root && w.skipDir(d.Name()) {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() && strings.HasSuffix(d.Name(), ".go") && !strings.HasPrefix(d.Name(), ".") {
				add(path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// skipDir reports whether a directory with this name is left out, as the go
// command leaves it out of ./... patterns.
func (w walker) skipDir(name string) bool {
	switch {
	case name == "vendor":
		return !w.vendor
	case name == "testdata":
		return !w.testdata
	case strings.HasPrefix(name, "."), strings.HasPrefix(name, "_"):
		return true
	}
	return false
}

// flagErr turns a flag parsing error into an exit status: 0 for -h, 2 for
// a usage mistake (the flag package has already explained it).
func flagErr(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
