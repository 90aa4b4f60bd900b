package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// versionString describes this binary for lockscope version.
func versionString() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return fmt.Sprintf("lockscope %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
