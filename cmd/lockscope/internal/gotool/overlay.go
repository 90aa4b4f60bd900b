package gotool

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ReadOverlay reads a go command overlay file; relative paths in it are
// relative to dir, as for the go command. It returns its Replace map with
// absolute paths ("" still meaning deleted).
func ReadOverlay(file, dir string) (map[string]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var ov struct{ Replace map[string]string }
	if err := json.Unmarshal(data, &ov); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	out := make(map[string]string, len(ov.Replace))
	for k, v := range ov.Replace {
		if v != "" {
			v = AbsIn(dir, v)
		}
		out[AbsIn(dir, k)] = v
	}
	return out, nil
}

// WriteOverlay writes file, a go command overlay file whose Replace map is
// replace.
func WriteOverlay(file string, replace map[string]string) error {
	data, err := json.MarshalIndent(struct{ Replace map[string]string }{replace}, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o666)
}

// An Overlayer writes the rewritten copies of a module's Go files.
type Overlayer struct {
	Root     string            // module root
	Tmp      string            // where the copies go
	User     map[string]string // the user's overlay, absolute paths
	ModCache string            // GOMODCACHE: never replaced
	Exclude  []string          // directories to leave alone
	// Rewrite returns the copy of the Go file path, whose content (as the
	// build sees it) is src, and whether there is one: a file it returns
	// false for keeps its content.
	Rewrite func(path string, src []byte) ([]byte, bool)
	// Tests, filled by Run, lists the _test.go files of each directory.
	Tests map[string][]string
}

// Run walks the module (skipping nested modules, vendor, testdata and
// directories the go command ignores) and returns the overlay entries of
// the files Rewrite made copies of. Every Go file is handed to Rewrite,
// generated and cgo files included: types must agree across the files of a
// package. Files that exist only in the user's overlay are handed to it
// too; files the user's overlay deletes are not.
func (o *Overlayer) Run() (map[string]string, error) {
	out := map[string]string{}
	seen := map[string]bool{}
	o.Tests = map[string][]string{}
	do := func(path string) error {
		seen[path] = true
		if strings.HasSuffix(path, "_test.go") {
			if _, deleted := o.User[path]; !deleted || o.User[path] != "" {
				o.Tests[filepath.Dir(path)] = append(o.Tests[filepath.Dir(path)], path)
			}
		}
		var src []byte
		var err error
		if backing, ok := o.User[path]; ok {
			if backing == "" {
				return nil // deleted by the user's overlay
			}
			src, err = os.ReadFile(backing)
		} else {
			src, err = os.ReadFile(path)
		}
		if err != nil {
			return err
		}
		newSrc, ok := o.Rewrite(path, src)
		if !ok {
			return nil
		}
		rel, err := filepath.Rel(o.Root, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(o.Tmp, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
			return err
		}
		if err := os.WriteFile(dst, newSrc, 0o666); err != nil {
			return err
		}
		out[path] = dst
		return nil
	}
	err := filepath.WalkDir(o.Root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == o.Root {
				return nil
			}
			name := d.Name()
			if name == "vendor" || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
				o.excluded(path) || path == o.ModCache {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_") {
			return nil
		}
		if !d.Type().IsRegular() && d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		return do(path)
	})
	if err != nil {
		return nil, err
	}
	// Go files that exist only in the user's overlay.
	for _, path := range slices.Sorted(maps.Keys(o.User)) {
		if !seen[path] && strings.HasSuffix(path, ".go") && within(o.Root, path) && !o.excluded(path) {
			if err := do(path); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func (o *Overlayer) excluded(path string) bool {
	for _, e := range o.Exclude {
		if within(e, path) {
			return true
		}
	}
	return false
}
