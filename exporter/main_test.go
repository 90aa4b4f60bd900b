//go:build !nolockscope

package exporter

import (
	"fmt"
	"os"
	"testing"

	"github.com/lockscope/lockscope/inspect"
)

func TestMain(m *testing.M) {
	if !inspect.Enabled() {
		// Every event comes from debugmutex's recording: with it off, these
		// tests cannot pass, and saying why beats a page of failures.
		fmt.Fprintln(os.Stderr, "exporter tests need lockscope's recording on: unset LOCKSCOPE (it is off)")
		os.Exit(1)
	}
	os.Exit(m.Run())
}
