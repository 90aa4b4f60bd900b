package profiler

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Prefix is where Register mounts the handler, following net/http/pprof's
// /debug/pprof/.
const Prefix = "/debug/locks/"

// maxDelta bounds ?seconds=N: a request that long is surely a mistake.
const maxDelta = 24 * time.Hour

// Handler returns the HTTP handler serving the lock profiles, like
// net/http/pprof. Mount it at a path ending in "/" (Register mounts it at
// /debug/locks/); the last element of the request path chooses what is
// served:
//
//	/debug/locks/                     an HTML page: held locks, waiters, worst locks, links
//	/debug/locks/?format=json         the same as JSON: {"time", "held", "waiting", "locks"}
//	/debug/locks/<name>               profile <name> (see Names), gzipped protobuf
//	/debug/locks/<name>?seconds=N     the activity of the next N seconds (not for held)
//	/debug/locks/<name>?debug=1       the profile as text
//
// so that `go tool pprof http://127.0.0.1:6060/debug/locks/contention` works,
// and scrapers (Parca, Pyroscope) can pull deltas with ?seconds=N. Unknown
// parameters and bad values get a 400 with a message; unknown profiles a
// 404.
func Handler() http.Handler { return http.HandlerFunc(serveHTTP) }

// Register mounts Handler at Prefix (/debug/locks/) on mux, or on
// http.DefaultServeMux when mux is nil. It opens no listener.
func Register(mux *http.ServeMux) {
	if mux == nil {
		mux = http.DefaultServeMux
	}
	mux.Handle(Prefix, Handler())
}

// ListenAndServe serves Handler at Prefix on addr, like http.ListenAndServe,
// and returns only on error. An address without a host binds to loopback:
// ":6060" listens on 127.0.0.1:6060, not on every interface. To be reachable
// from other machines, say so with an explicit host (e.g. "0.0.0.0:6060"),
// knowing that the pages show file paths, function names and lock names.
func ListenAndServe(addr string) error {
	a, err := loopbackDefault(addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	Register(mux)
	srv := &http.Server{Addr: a, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}

// loopbackDefault puts 127.0.0.1 in an address without a host.
func loopbackDefault(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("lockscope: listen address %q: %v", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// badRequest is a problem with the request, answered with a 400.
type badRequest string

func (e badRequest) Error() string { return string(e) }

// queryParams checks that the query has only the allowed parameters, each
// once, and returns them.
func queryParams(r *http.Request, allowed ...string) (map[string]string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("bad query: " + err.Error())
	}
	out := map[string]string{}
	for k, vs := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			if len(allowed) == 0 {
				return nil, badRequest(fmt.Sprintf("unknown parameter %q: this page takes none", k))
			}
			return nil, badRequest(fmt.Sprintf("unknown parameter %q (allowed: %s)", k, strings.Join(allowed, ", ")))
		}
		if len(vs) != 1 {
			return nil, badRequest(fmt.Sprintf("parameter %q given %d times", k, len(vs)))
		}
		out[k] = vs[0]
	}
	return out, nil
}

func serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: use GET")
		return
	}
	name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	if name == "" {
		serveIndex(w, r)
		return
	}
	sp := lookupSpec(name)
	if sp == nil {
		httpError(w, http.StatusNotFound, (&UnknownProfileError{Name: name}).Error())
		return
	}
	q, err := queryParams(r, "debug", "seconds")
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if _, ok := q["seconds"]; ok && sp.snapshot {
		httpError(w, http.StatusBadRequest, "profile "+name+" is a snapshot of the locks held now: ?seconds does not apply")
		return
	}
	debug := 0
	if v, ok := q["debug"]; ok {
		debug, err = strconv.Atoi(v)
		if err != nil || debug < 0 || debug > 1 {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("invalid value %q for parameter \"debug\": want 0 (protobuf) or 1 (text)", v))
			return
		}
	}
	var buf bytes.Buffer
	if v, ok := q["seconds"]; ok {
		sec, err := strconv.ParseInt(v, 10, 64)
		if err != nil || sec <= 0 || time.Duration(sec)*time.Second > maxDelta {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("invalid value %q for parameter \"seconds\": want a whole number of seconds from 1 to %d", v, int64(maxDelta/time.Second)))
			return
		}
		d := time.Duration(sec) * time.Second
		if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok && srv.WriteTimeout > 0 && d >= srv.WriteTimeout {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("profile duration %v exceeds the server's WriteTimeout (%v)", d, srv.WriteTimeout))
			return
		}
		p, err := CollectDelta(r.Context(), name, d)
		if err != nil {
			// The client went away, or the server is shutting down.
			httpError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		err = encode(&buf, p, debug)
		if err != nil {
			httpError(w, http.StatusInternalServerError, err.Error())
			return
		}
	} else {
		p, err := Collect(name)
		if err == nil {
			err = encode(&buf, p, debug)
		}
		if err != nil {
			httpError(w, http.StatusInternalServerError, err.Error())
			return
		}
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	if debug == 1 {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	}
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
}

func httpError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Del("Content-Disposition")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}
