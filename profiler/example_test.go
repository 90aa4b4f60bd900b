package profiler_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/google/pprof/profile"

	"github.com/lockscope/lockscope/profiler"
)

// Serve the lock profiles next to your other handlers; then
//
//	go tool pprof http://127.0.0.1:6060/debug/locks/contention
//	go tool pprof http://127.0.0.1:6060/debug/locks/hold?seconds=30
//
// or open http://127.0.0.1:6060/debug/locks/ in a browser. To serve them
// on their own, profiler.ListenAndServe(":6060") listens on 127.0.0.1:6060.
func ExampleHandler() {
	mux := http.NewServeMux()
	profiler.Register(mux) // mux.Handle("/debug/locks/", profiler.Handler())

	srv := httptest.NewServer(mux) // in a program: http.ListenAndServe("127.0.0.1:6060", mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/debug/locks/hold")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	p, err := profile.Parse(resp.Body)
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Status, p.SampleType[0].Type, p.SampleType[1].Type)

	resp, err = http.Get(srv.URL + "/debug/locks/hold?seconds=0")
	if err != nil {
		panic(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("%s: %s", resp.Status, msg)
	// Output:
	// 200 OK acquisitions hold
	// 400 Bad Request: invalid value "0" for parameter "seconds": want a whole number of seconds from 1 to 86400
}

// Write a profile to a file for `go tool pprof contention.pb.gz`.
func ExampleWriteFile() {
	dir, err := os.MkdirTemp("", "locks")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	path := filepath.Join(dir, "contention.pb.gz")
	if err := profiler.WriteFile(profiler.Contention, path); err != nil {
		panic(err)
	}

	f, err := os.Open(path)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		panic(err)
	}
	for _, st := range p.SampleType {
		fmt.Println(st.Type + "/" + st.Unit)
	}
	// Output:
	// contentions/count
	// delay/nanoseconds
}

// Keep profiles on disk while the program runs, and write them one last
// time on the way out.
func ExampleStartFileWriter() {
	dir, err := os.MkdirTemp("", "locks")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	fw, err := profiler.StartFileWriter(dir, 10e9) // every 10s
	if err != nil {
		panic(err)
	}
	defer fw.Stop()

	fmt.Println(filepath.Base(fw.Path(profiler.Held)))
	// Output:
	// held.pb.gz
}
