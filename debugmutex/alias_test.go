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
	_, _ = m, rw
	if reflect.TypeOf(debugmutex.Mutex{}) != reflect.TypeOf(sync.Mutex{}) ||
		reflect.TypeOf(debugmutex.RWMutex{}) != reflect.TypeOf(sync.RWMutex{}) {
		t.Fatal("types differ")
	}
	if debugmutex.Enabled() {
		t.Fatal("Enabled() under nolockscope")
	}
}
