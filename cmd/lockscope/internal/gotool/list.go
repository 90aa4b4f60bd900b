package gotool

import (
	"slices"
	"strings"
)

// LeftAlone returns, sorted, the packages outside the main module (and
// outside lockscope) that the build of sub with the go command arguments
// rest imports and that import sync, and so keep the real locks. modfile
// and overlay are the build's; env its environment.
func LeftAlone(wd string, env []string, modfile, overlay string, rest []string, sub string) ([]string, error) {
	pkgs := []string{"./..."}
	if sub != "run" {
		var p []string
		for _, a := range rest {
			if !strings.HasPrefix(a, "-") && (strings.HasPrefix(a, ".") || strings.Contains(a, "/")) {
				p = append(p, a)
			}
		}
		if len(p) > 0 {
			pkgs = p
		}
	}
	args := append([]string{"list", "-e", "-deps", "-test", "-mod=mod", "-modfile=" + modfile, "-overlay=" + overlay,
		"-f", `{{if .Module}}{{if not .Module.Main}}{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{end}}{{end}}`}, pkgs...)
	out, err := Output(wd, env, args...)
	if err != nil {
		return nil, err
	}
	var left []string
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) > 1 && slices.Contains(f[1:], "sync") && !strings.HasPrefix(f[0], Module+"/") {
			left = append(left, f[0])
		}
	}
	slices.Sort(left)
	return slices.Compact(left), nil
}
