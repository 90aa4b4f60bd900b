package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/lockscope/lockscope/report"
)

const topUsage = `usage: lockscope top [-interval 1s] [-n 20] [-sort wait|hold|contentions|acquisitions] [-once] URL

Polls the lockscope HTTP endpoint of a running program (package profiler,
e.g. http://127.0.0.1:6060/debug/locks/) and shows its worst locks and the
locks held and awaited right now, refreshing every interval until
interrupted. A URL without a path gets /debug/locks/; one without a scheme
gets http://.

Flags:
`

// topData is what the endpoint serves at URL?format=json.
type topData = report.Overview

// clearScreen moves the cursor home and clears the terminal.
const clearScreen = "\x1b[H\x1b[2J"

func cmdTop(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("lockscope top", flag.ContinueOnError)
	fl.SetOutput(stderr)
	interval := fl.Duration("interval", time.Second, "time between refreshes")
	n := fl.Int("n", 20, "show at most `N` rows per table")
	sortBy := fl.String("sort", "wait", "order locks by wait, hold, contentions or acquisitions")
	once := fl.Bool("once", false, "print one screen without clearing and exit")
	fl.Usage = func() {
		fmt.Fprint(stderr, topUsage)
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return flagErr(err)
	}
	if fl.NArg() != 1 {
		fmt.Fprintln(stderr, "lockscope top: want exactly one URL")
		fl.Usage()
		return 2
	}
	if *interval <= 0 || *n <= 0 {
		fmt.Fprintln(stderr, "lockscope top: -interval and -n must be positive")
		return 2
	}
	if !slices.Contains([]string{"wait", "hold", "contentions", "acquisitions"}, *sortBy) {
		fmt.Fprintf(stderr, "lockscope top: -sort %q: want wait, hold, contentions or acquisitions\n", *sortBy)
		return 2
	}
	u, err := endpointURL(fl.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "lockscope top: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	client := &http.Client{Timeout: max(*interval, 5*time.Second)}
	if *once {
		d, err := fetchTop(ctx, client, u)
		if err != nil {
			fmt.Fprintf(stderr, "lockscope top: %v\n", err)
			return 1
		}
		io.WriteString(stdout, renderTop(u, d, *n, *sortBy))
		return 0
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		d, err := fetchTop(ctx, client, u)
		if ctx.Err() != nil {
			return 0
		}
		screen := clearScreen
		if err != nil {
			// The program may be restarting: say so and keep polling.
			screen += fmt.Sprintf("lockscope top %s  %s\n\n%v\n", u, time.Now().Format(time.TimeOnly), err)
		} else {
			screen += renderTop(u, d, *n, *sortBy)
		}
		io.WriteString(stdout, screen)
		select {
		case <-ctx.Done():
			return 0
		case <-tick.C:
		}
	}
}

// endpointURL completes a URL as typed and asks for the JSON form.
func endpointURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%s: want an http or https URL", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s: no host", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/debug/locks/"
	}
	q := u.Query()
	q.Set("format", "json")
	u.RawQuery = q.Encode()
	return u, nil
}

func fetchTop(ctx context.Context, client *http.Client, u *url.URL) (*topData, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	var d topData
	dec := json.NewDecoder(io.LimitReader(resp.Body, 256<<20))
	if err := dec.Decode(&d); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("GET %s: not lockscope JSON (is this the lockscope endpoint?): %v", u, err)
		}
		return nil, fmt.Errorf("GET %s: %v", u, err)
	}
	return &d, nil
}

// renderTop formats one screen.
func renderTop(u *url.URL, d *topData, n int, sortBy string) string {
	var b strings.Builder
	shown := *u
	shown.RawQuery = ""
	at := d.Time
	if at.IsZero() {
		at = time.Now()
	}
	fmt.Fprintf(&b, "lockscope top %s  %s  %d locks, %d held, %d waiting\n",
		&shown, at.Format("15:04:05"), len(d.Locks), len(d.Held), len(d.Waiting))

	locks := slices.Clone(d.Locks)
	key := func(s report.LockStat) int64 {
		switch sortBy {
		case "hold":
			return int64(s.HoldTime)
		case "contentions":
			return s.Contentions
		case "acquisitions":
			return s.Acquisitions
		}
		return int64(s.WaitTime)
	}
	slices.SortStableFunc(locks, func(a, b report.LockStat) int {
		ka, kb := key(a), key(b)
		switch {
		case ka > kb:
			return -1
		case ka < kb:
			return 1
		}
		return strings.Compare(a.Lock, b.Lock)
	})
	fmt.Fprintf(&b, "\nWORST LOCKS (by %s)\n", sortBy)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "WAIT\tCONTENDED\tHOLD\tACQUIRED\tTRY-FAIL\t \tLOCK\n")
	for _, s := range locks[:min(n, len(locks))] {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t \t%s (%s)\n",
			report.ShortDuration(s.WaitTime), s.Contentions, report.ShortDuration(s.HoldTime), s.Acquisitions, s.TryLockFailures, s.Lock, s.Type)
	}
	tw.Flush()
	none(&b, len(locks), "no lock activity recorded yet")
	more(&b, len(locks), n)

	held := slices.Clone(d.Held)
	slices.SortStableFunc(held, func(a, b report.Holding) int { return cmpDur(b.For, a.For) })
	fmt.Fprintf(&b, "\nHELD NOW (longest first)\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "GOROUTINE\tFOR\tMODE\tLOCK\tACQUIRED AT\n")
	for _, h := range held[:min(n, len(held))] {
		f := report.ShortDuration(h.For)
		if !h.Exact {
			f = ">" + f
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", h.Goroutine, f, h.Mode, h.Lock.Name, site(h.Site))
	}
	tw.Flush()
	none(&b, len(held), "no lock is held")
	more(&b, len(held), n)

	waiting := slices.Clone(d.Waiting)
	slices.SortStableFunc(waiting, func(a, b report.Waiting) int { return cmpDur(b.For, a.For) })
	fmt.Fprintf(&b, "\nWAITING NOW (longest first)\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "GOROUTINE\tFOR\tMODE\tLOCK\tHELD BY\tWAITING AT\n")
	for _, w := range waiting[:min(n, len(waiting))] {
		holder := "-"
		if w.Holder != 0 {
			holder = fmt.Sprint(w.Holder)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", w.Goroutine, report.ShortDuration(w.For), w.Mode, w.Lock.Name, holder, site(w.Site))
	}
	tw.Flush()
	none(&b, len(waiting), "no goroutine is waiting for a lock")
	more(&b, len(waiting), n)
	return b.String()
}

func none(b *strings.Builder, total int, msg string) {
	if total == 0 {
		fmt.Fprintf(b, "  (%s)\n", msg)
	}
}

func more(b *strings.Builder, total, shown int) {
	if total > shown {
		fmt.Fprintf(b, "... and %d more\n", total-shown)
	}
}

func cmpDur(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func site(f report.Frame) string {
	if f.Function == "" && f.File == "" {
		return "?"
	}
	return f.Site()
}
