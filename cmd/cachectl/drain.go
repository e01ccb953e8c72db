package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hotcache/hotcache/ring"
)

// drainWait is how long drain waits for the node to leave, unless -timeout
// says otherwise.
const drainWait = 30 * time.Second

// drainPoll is how often drain asks whether the node has left.
const drainPoll = 200 * time.Millisecond

func drainCommand() *command {
	var admin string
	return &command{
		name: "drain", args: "NODE [-admin HOST:PORT]",
		summary: "make NODE (member name or address) leave the cluster and stop, as on SIGTERM (POST /drain on its admin port), and wait until it is out of the ring (-timeout, default 30s)",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&admin, "admin", "", "admin HTTP address to POST /drain to, instead of the one NODE advertises in the ring")
		},
		nargs: exactly(1),
		run: func(ctx context.Context, e *env, args []string) error {
			return e.drain(ctx, args[0], admin)
		},
	}
}

func (e *env) drain(ctx context.Context, which, adminAddr string) error {
	wait := drainWait
	if e.timeoutSet {
		wait = e.timeout
	}
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	rv, err := e.ring(dctx)
	if err != nil {
		return err
	}
	m, err := findRingMember(rv.ring, which)
	if err != nil {
		return err
	}
	if adminAddr == "" {
		adminAddr = m.Admin
	}
	if adminAddr == "" {
		return fmt.Errorf("drain %s: it has no admin address (it runs with -admin ''); give one with -admin", m.Name)
	}
	if err := postDrain(dctx, adminAddr, e.timeout, e.user, e.pass); err != nil {
		return fmt.Errorf("drain %s: %w", m.Name, err)
	}
	fmt.Fprintf(e.stderr, "cachectl: draining %s (%s): leave requested on http://%s/drain; waiting up to %v for it to leave the ring\n",
		m.Name, m.Addr, adminAddr, wait)

	// Watch from any other node: the seeds first, then the ring's members.
	var observers []string
	for _, a := range append(slices.Clone(e.seeds), memberAddrs(rv.ring)...) {
		if a != m.Addr && !slices.Contains(observers, a) {
			observers = append(observers, a)
		}
	}
	var last string
	for {
		st := e.drainState(dctx, observers, m)
		if st.left {
			elapsed := time.Since(start).Round(100 * time.Millisecond)
			if e.json() {
				return writeJSON(e.stdout, struct {
					Node      string `json:"node"`
					Addr      string `json:"addr"`
					Left      bool   `json:"left"`
					Observer  string `json:"observer,omitempty"`
					Members   int    `json:"members"`
					ElapsedMS int64  `json:"elapsed_ms"`
				}{m.Name, m.Addr, true, st.observer, st.members, elapsed.Milliseconds()}, false)
			}
			if st.observer == "" {
				_, err := fmt.Fprintf(e.stdout, "%s stopped after %v (it was the only member)\n", m.Name, elapsed)
				return err
			}
			_, err := fmt.Fprintf(e.stdout, "%s left the ring after %v; %s sees %s\n", m.Name, elapsed, st.observer, plural(st.members, "member"))
			return err
		}
		if dctx.Err() == nil && st.desc != last { // a request the deadline cut short tells nothing
			fmt.Fprintf(e.stderr, "cachectl: %s\n", st.desc)
			last = st.desc
		}
		select {
		case <-dctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("drain %s: not out of the ring after %v (%s); is its process watching for the drain (cmd/cached does)?", m.Name, wait, last)
		case <-time.After(drainPoll):
		}
	}
}

// plural is "1 member", "2 members".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// findRingMember finds a member by name, memcache address or admin
// address.
func findRingMember(r *ring.Ring, which string) (ring.Member, error) {
	var names []string
	for _, m := range r.Members() {
		if m.Name == which || m.Addr == which || m.Admin == which {
			return m, nil
		}
		names = append(names, m.Name)
	}
	return ring.Member{}, fmt.Errorf("no member %q in the ring (members: %s)", which, strings.Join(names, ", "))
}

func memberAddrs(r *ring.Ring) []string {
	var out []string
	for _, m := range r.Members() {
		out = append(out, m.Addr)
	}
	return out
}

// postDrain asks the node at adminAddr to drain; it answers 202.
func postDrain(ctx context.Context, adminAddr string, timeout time.Duration, user, pass string) error {
	url := "http://" + adminAddr + "/drain"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	if user != "" {
		req.SetBasicAuth(user, pass) // a node started with -Y wants them
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %s (the admin port binds to loopback by default: run cachectl on the node's host, or give a reachable address with -admin)",
			url, reason(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// drainState is what drain sees of the node while it waits.
type drainState struct {
	left     bool
	observer string // the member that saw it ("" if the node was alone)
	members  int    // how many members the observer sees
	desc     string // progress, while not left
}

// drainState asks the first observer that answers whether m is still in
// its ring. With no other node to ask, m has left when it stops answering.
func (e *env) drainState(ctx context.Context, observers []string, m ring.Member) drainState {
	var fails []string
	for _, addr := range observers {
		st, err := statsOnce(ctx, addr, "cluster", e)
		var cv *clusterView
		if err == nil {
			cv, err = parseCluster(addr, st)
		}
		if err != nil {
			fails = append(fails, addr+": "+reason(err))
			continue
		}
		if cv.self == m.Name {
			continue // the node itself, under another address
		}
		for _, mb := range cv.members {
			if mb.name == m.Name {
				return drainState{desc: fmt.Sprintf("%s is still in %s's ring (%s)", m.Name, cv.self, mb.state)}
			}
		}
		return drainState{left: true, observer: cv.self, members: len(cv.members)}
	}
	if len(observers) == 0 {
		_, err := statsOnce(ctx, m.Addr, "cluster", e)
		if err != nil && unreachable(err) && !errors.Is(err, context.DeadlineExceeded) {
			return drainState{left: true}
		}
		return drainState{desc: fmt.Sprintf("%s is still answering (no other member to ask)", m.Name)}
	}
	return drainState{desc: "no other node answered: " + strings.Join(fails, "; ")}
}
