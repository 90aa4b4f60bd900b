//go:build nolockscope

package debugmutex_test

import (
	"reflect"
	"sync"
	"testing"

	"github.com/lockscope/lockscope/debugmutex"
)

// Under the nolockscope tag the types are sync's own: identical types, so
// zero cost. (Compiled only with -tags nolockscope; tools_test.go runs it.)
func TestAliasIdentity(t *testing.T) {
	var m *sync.Mutex = new(debugmutex.Mutex) // compiles only if identical
	var rw *sync.RWMutex = new(debugmutex.RWMutex)
	var o *sync.Once = new(debugmutex.Once)
	_, _, _ = m, rw, o
	if reflect.TypeOf(debugmutex.Mutex{}) != reflect.TypeOf(sync.Mutex{}) ||
		reflect.TypeOf(debugmutex.RWMutex{}) != reflect.TypeOf(sync.RWMutex{}) ||
		reflect.TypeOf(debugmutex.Once{}) != reflect.TypeOf(sync.Once{}) {
		t.Fatal("types differ")
	}
	// OnceValue is sync's.
	calls := 0
	f := debugmutex.OnceValue(func() int { calls++; return calls })
	if f() != 1 || f() != 1 || calls != 1 {
		t.Fatal("OnceValue")
	}
	if debugmutex.Enabled() {
		t.Fatal("Enabled() under nolockscope")
	}
}
