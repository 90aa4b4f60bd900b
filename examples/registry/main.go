// Command registry is a service registry guarded by a mutex, with the
// classic missing-defer bug: Deregister returns early on an unknown name
// without unlocking the registry. The goroutine that made the call carries
// on, unaware that it still holds the registry's lock, and the program
// deadlocks as soon as another goroutine needs the registry while holding
// something the first one needs:
//
//   - the connection goroutine holds the registry (leaked by Deregister)
//     and wants the api service's lock, to count a request;
//   - the health checker holds the api service's lock and wants the
//     registry, to update the count of healthy services.
//
// lockscope reports the deadlock the moment the second goroutine blocks,
// naming both goroutines, the lock each holds and where it took it, and
// the lock each waits for. (It also reports the lock-order inversion: the
// registry then a service on one side, a service then the registry on the
// other.) main waits for the deadlock report, prints it briefly and exits 0,
// leaving the two goroutines stuck.
//
// Run it with:
//
//	go run ./examples/registry
//
// With -fixed, Deregister unlocks with defer, the same requests complete,
// and lockscope stays silent.
//
// The channels fix the order of the requests so that every run ends the
// same way; in a real server the same interleaving happens by chance.
package main

import (
	"flag"
	"fmt"
	"path/filepath"

	sync "github.com/lockscope/lockscope/debugmutex"
	"github.com/lockscope/lockscope/inspect"
	"github.com/lockscope/lockscope/report"
)

// Service is one registered service.
type Service struct {
	mu      sync.Mutex
	name    string
	healthy bool
	served  int
}

// Serve counts one request served by s.
func (s *Service) Serve() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.served++
	return s.served
}

// Registry maps service names to services. Lock order: a service's mu,
// then the registry's mu, never the other way round.
type Registry struct {
	mu       sync.Mutex
	services map[string]*Service
	healthy  int // how many services are healthy
	fixed    bool
}

// Register adds a healthy service.
func (r *Registry) Register(name string) *Service {
	s := &Service{name: name, healthy: true}
	sync.SetName(&s.mu, "Service["+name+"].mu")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.services[name] = s
	r.healthy++
	return s
}

// Deregister removes the named service and marks it unhealthy.
func (r *Registry) Deregister(name string) error {
	if r.fixed {
		return r.deregisterFixed(name)
	}
	r.mu.Lock()
	s, ok := r.services[name]
	if !ok {
		return fmt.Errorf("%s: not registered", name) // BUG: r.mu is still locked
	}
	delete(r.services, name)
	r.mu.Unlock()
	r.SetHealth(s, false)
	return nil
}

// deregisterFixed is Deregister with the Unlock deferred, in a function of
// its own so that SetHealth is not called with r.mu held.
func (r *Registry) deregisterFixed(name string) error {
	s, err := r.remove(name)
	if err != nil {
		return err
	}
	r.SetHealth(s, false)
	return nil
}

func (r *Registry) remove(name string) (*Service, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.services[name]
	if !ok {
		return nil, fmt.Errorf("%s: not registered", name)
	}
	delete(r.services, name)
	return s, nil
}

// SetHealth records a health check's verdict on s.
func (r *Registry) SetHealth(s *Service, healthy bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.healthy == healthy {
		return
	}
	s.healthy = healthy
	r.mu.Lock()
	if healthy {
		r.healthy++
	} else {
		r.healthy--
	}
	r.mu.Unlock()
}

// request is one request on a connection: "serve" counts a request served
// by the connection's service, "deregister NAME" deregisters a service.
type request struct {
	op, name string
	reply    chan string
}

// connection serves one client's requests, in order, for service svc.
func connection(r *Registry, svc *Service, reqs <-chan request) {
	for req := range reqs {
		switch req.op {
		case "serve":
			n := svc.Serve()
			req.reply <- fmt.Sprintf("served (%d so far)", n)
		case "deregister":
			if err := r.Deregister(req.name); err != nil {
				req.reply <- "error: " + err.Error()
			} else {
				req.reply <- "deregistered"
			}
		}
	}
}

// healthChecker records the verdict of each check it is sent.
func healthChecker(r *Registry, checks <-chan *Service, checked chan<- string) {
	for s := range checks {
		r.SetHealth(s, false) // the check failed
		checked <- s.name + " marked unhealthy"
	}
}

func main() {
	fixed := flag.Bool("fixed", false, "unlock with defer in Deregister")
	flag.Parse()

	r := &Registry{services: map[string]*Service{}, fixed: *fixed}
	sync.SetName(&r.mu, "Registry.mu")
	api := r.Register("api")
	r.Register("auth")

	deadlock := make(chan report.Report, 1)
	inspect.OnReport(func(rep report.Report) {
		if rep.Kind == report.KindDeadlock {
			select {
			case deadlock <- rep:
			default:
			}
		}
	})

	reqs := make(chan request)
	checks := make(chan *Service, 1)
	checked := make(chan string, 1)
	go connection(r, api, reqs)
	go healthChecker(r, checks, checked)

	// call sends one request and waits for its reply, or for lockscope
	// to report the deadlock that means no reply will ever come.
	call := func(op, name string, quiet bool) bool {
		reply := make(chan string, 1)
		reqs <- request{op: op, name: name, reply: reply}
		select {
		case s := <-reply:
			if !quiet {
				fmt.Printf("%-10s %-8s -> %s\n", op, name, s)
			}
			return true
		case rep := <-deadlock:
			fmt.Printf("%-10s %-8s -> no reply\n", op, name)
			explain(rep)
			return false
		}
	}

	call("serve", "", false)
	call("deregister", "billing", false) // not registered: the buggy path
	call("serve", "", false)

	// The health checker finds api unhealthy; requests keep coming while
	// the check runs.
	checks <- api
	for served := 0; ; served++ {
		select {
		case s := <-checked:
			fmt.Printf("%-10s %-8s -> %s (%d requests served meanwhile)\n", "check", "api", s, served)
		default:
			if !call("serve", "", true) {
				return
			}
			continue
		}
		break
	}
	call("serve", "", false)
	r.mu.Lock()
	fmt.Printf("healthy services: %d of %d\n", r.healthy, len(r.services))
	r.mu.Unlock()
	fmt.Printf("reports: %d\n", len(inspect.Reports()))
}

// explain prints the deadlock report in a few lines.
func explain(rep report.Report) {
	fmt.Printf("\nlockscope found a %s: %s\n", rep.Kind, rep.Summary)
	for _, g := range rep.Goroutines {
		fmt.Printf("  goroutine %d %s %s", g.ID, g.Role, g.Lock)
		if len(g.Stack) > 0 {
			f := g.Stack[0]
			fmt.Printf(" at %s (%s:%d)", f.Function, filepath.Base(f.File), f.Line)
		}
		fmt.Println()
	}
}
