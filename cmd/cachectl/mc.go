package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotcache/hotcache/protocol"
	"github.com/hotcache/hotcache/ring"
)

// mcConn is one memcache text connection; every request has its own
// deadline, and ctx ending breaks the one in progress.
type mcConn struct {
	ctx     context.Context
	addr    string
	c       net.Conn
	r       *bufio.Reader
	timeout time.Duration
	stop    func() bool
}

// dialMC connects to addr, over TLS when e has a TLS configuration (the
// handshake within the same timeout).
func dialMC(ctx context.Context, addr string, e *env) (*mcConn, error) {
	timeout := e.timeout
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := e.dial(dctx, addr)
	if err != nil {
		return nil, err
	}
	m := &mcConn{ctx: ctx, addr: addr, c: c, r: bufio.NewReader(c), timeout: timeout}
	m.stop = context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	return m, nil
}

func (m *mcConn) Close() error {
	m.stop()
	return m.c.Close()
}

// send writes line with "\r\n" and arms the deadline for its reply.
func (m *mcConn) send(line string) error {
	if err := m.ctx.Err(); err != nil {
		return err
	}
	m.c.SetDeadline(time.Now().Add(m.timeout))
	_, err := io.WriteString(m.c, line+"\r\n")
	return err
}

// A stat is one "STAT <name> <value>" line; the value may hold spaces.
type stat struct{ name, value string }

// stats sends "stats [sub]" and reads the STAT lines up to END.
func (m *mcConn) stats(sub string) ([]stat, error) {
	cmd := strings.TrimSpace("stats " + sub)
	if err := m.send(cmd); err != nil {
		return nil, err
	}
	var out []stat
	for {
		line, err := protocol.ReadLine(m.r)
		if err != nil {
			if errors.Is(err, protocol.ErrUnknownCommand) {
				return nil, fmt.Errorf("%q answered ERROR (not a hotcache node?)", cmd)
			}
			return nil, err
		}
		if line == "END" {
			return out, nil
		}
		rest, ok := strings.CutPrefix(line, "STAT ")
		if !ok {
			return nil, fmt.Errorf("unexpected reply %.80q to %q", line, cmd)
		}
		name, value, _ := strings.Cut(rest, " ")
		out = append(out, stat{name, value})
	}
}

// statsOnce dials addr, sends "stats [sub]" and hangs up.
func statsOnce(ctx context.Context, addr, sub string, e *env) ([]stat, error) {
	m, err := dialMC(ctx, addr, e)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return m.stats(sub)
}

// reason is the useful end of a network error: "connection refused",
// "timeout", "no such host".
func reason(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		err = op.Err
		var sys *os.SyscallError
		if errors.As(err, &sys) {
			err = sys.Err
		}
	}
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	return err.Error()
}

// unreachable reports whether err means the node could not be talked to
// (as opposed to a reply it gave).
func unreachable(err error) bool {
	var op *net.OpError
	var ne net.Error
	return errors.As(err, &op) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// fromSeeds calls fn with each seed in order until one succeeds and returns
// that seed; if none does, the error names each seed and why.
func (e *env) fromSeeds(ctx context.Context, fn func(addr string) error) (string, error) {
	var fails []string
	for _, s := range e.seeds {
		err := fn(s)
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		fails = append(fails, s+": "+reason(err))
	}
	return "", fmt.Errorf("no seed answered: %s", strings.Join(fails, "; "))
}

// A clusterView is "stats cluster" of one node.
type clusterView struct {
	seed          string // the address asked
	self          string
	identity      string
	generation    uint64
	members       []member
	forwarded     uint64
	forwardErrors uint64
}

// A member is one "STAT member" line of "stats cluster".
type member struct {
	name, addr, state string
	partitions        int
}

func parseCluster(addr string, st []stat) (*clusterView, error) {
	cv := &clusterView{seed: addr}
	for _, s := range st {
		var err error
		switch s.name {
		case "self":
			cv.self = s.value
		case "ring_identity":
			cv.identity = s.value
		case "ring_generation":
			cv.generation, err = strconv.ParseUint(s.value, 10, 64)
		case "forwarded":
			cv.forwarded, err = strconv.ParseUint(s.value, 10, 64)
		case "forward_errors":
			cv.forwardErrors, err = strconv.ParseUint(s.value, 10, 64)
		case "member":
			var m member
			m, err = parseMember(s.value)
			cv.members = append(cv.members, m)
		}
		if err != nil {
			return nil, fmt.Errorf("stats cluster: STAT %s %.80q: %v", s.name, s.value, err)
		}
	}
	if cv.identity == "" {
		return nil, errors.New("stats cluster: no ring_identity (not a hotcache node?)")
	}
	return cv, nil
}

// parseMember parses "<name> <addr> <state> partitions=<n>".
func parseMember(v string) (member, error) {
	f := strings.Split(v, " ")
	if len(f) != 4 {
		return member{}, errors.New(`want "<name> <addr> <state> partitions=<n>"`)
	}
	p, ok := strings.CutPrefix(f[3], "partitions=")
	n, err := strconv.Atoi(p)
	if !ok || err != nil || n < 0 {
		return member{}, errors.New("bad partitions=")
	}
	return member{name: f[0], addr: f[1], state: f[2], partitions: n}, nil
}

// cluster asks the seeds, in order, for "stats cluster".
func (e *env) cluster(ctx context.Context) (*clusterView, error) {
	var cv *clusterView
	_, err := e.fromSeeds(ctx, func(addr string) error {
		st, err := statsOnce(ctx, addr, "cluster", e)
		if err == nil {
			cv, err = parseCluster(addr, st)
		}
		return err
	})
	return cv, err
}

// A ringView is the first RING event of a seed's ring-only watch stream.
type ringView struct {
	seed       string
	generation uint64
	ring       *ring.Ring
	params     map[string]string // the header's fields: partitions, replication, load, hash
}

// fetchRing opens a ring-only watch stream on addr, reads its first event
// (the ring snapshot) and closes the stream.
func fetchRing(ctx context.Context, addr string, e *env) (*ringView, error) {
	m, err := dialMC(ctx, addr, e)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	open, err := protocol.AppendWatchOpen(nil, protocol.WatchOpen{Name: "cachectl", Stamp: 0, RingOnly: true})
	if err != nil {
		return nil, err
	}
	if err := m.send(strings.TrimSuffix(string(open), "\r\n")); err != nil {
		return nil, err
	}
	ev, err := protocol.ReadWatchEvent(m.r, 0)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	if ev.Kind != protocol.WatchRing {
		return nil, fmt.Errorf("watch: first event is not RING")
	}
	r, err := ring.ParseText(ev.Data)
	if err != nil {
		return nil, err
	}
	rv := &ringView{seed: addr, generation: ev.Generation, ring: r, params: map[string]string{}}
	header, _, _ := strings.Cut(string(ev.Data), "\n")
	for _, f := range strings.Fields(header)[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			rv.params[k] = v
		}
	}
	return rv, nil
}

// ring asks the seeds, in order, for their ring.
func (e *env) ring(ctx context.Context) (*ringView, error) {
	var rv *ringView
	_, err := e.fromSeeds(ctx, func(addr string) error {
		var err error
		rv, err = fetchRing(ctx, addr, e)
		return err
	})
	return rv, err
}

// fanout calls fn for every member, a bounded number at once, and returns
// the results in the members' order.
func fanout[T any](members []member, fn func(m member) (T, error)) ([]T, []error) {
	out, errs := make([]T, len(members)), make([]error, len(members))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = fn(m)
		})
	}
	wg.Wait()
	return out, errs
}

// failure is how a per-node error shows in a table cell.
func failure(err error) string {
	if unreachable(err) {
		return "unreachable"
	}
	return "error"
}

// reportFailures writes one line per failed node to stderr.
func (e *env) reportFailures(members []member, errs []error) {
	for i, err := range errs {
		if err != nil {
			fmt.Fprintf(e.stderr, "cachectl: %s (%s): %s\n", members[i].name, members[i].addr, reason(err))
		}
	}
}
