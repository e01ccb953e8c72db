package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// statsFields are the rows of "stats" across members: "stats" fields, then
// "stats cluster" ones.
var statsFields = []string{
	"version", "uptime", "curr_connections", "total_connections",
	"cmd_get", "get_hits", "get_misses", "cmd_set", "curr_items", "bytes",
	"evictions", "forwarded", "forward_errors",
}

// statsCmd prints "stats" of one node, or the main fields of every member.
func statsCmd(ctx context.Context, e *env, args []string) error {
	if len(args) == 1 {
		return e.statsOne(ctx, args[0])
	}
	return e.statsAll(ctx)
}

// nodeStats is one node's "stats" with "stats cluster"'s forwarding
// counters added.
type nodeStats struct {
	Name  string            `json:"name"`
	Addr  string            `json:"addr"`
	Error string            `json:"error,omitempty"`
	Stats map[string]string `json:"stats,omitempty"`
	order []stat            // "stats" as the node sent it
}

// fetchStats asks addr for "stats" and "stats cluster" on one connection.
// A node that does not know "stats cluster" (a plain memcached) still
// answers.
func fetchStats(ctx context.Context, addr string, e *env) (*nodeStats, error) {
	m, err := dialMC(ctx, addr, e)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	st, err := m.stats("")
	if err != nil {
		return nil, err
	}
	ns := &nodeStats{Addr: addr, Stats: map[string]string{}, order: st}
	for _, s := range st {
		ns.Stats[s.name] = s.value
	}
	if cl, err := m.stats("cluster"); err == nil {
		if cv, err := parseCluster(addr, cl); err == nil {
			ns.Name = cv.self
			ns.Stats["forwarded"] = strconv.FormatUint(cv.forwarded, 10)
			ns.Stats["forward_errors"] = strconv.FormatUint(cv.forwardErrors, 10)
		}
	} else if unreachable(err) {
		return nil, err
	}
	return ns, nil
}

// statsOne prints every "stats" line of one node, named by member name or
// memcache address (an address need not be a member: any node or memcached
// answers).
func (e *env) statsOne(ctx context.Context, which string) error {
	addr, err := e.resolve(ctx, which)
	if err != nil {
		return err
	}
	ns, err := fetchStats(ctx, addr, e)
	if err != nil {
		return fmt.Errorf("%s: %s", which, reason(err))
	}
	if e.json() {
		return writeJSON(e.stdout, ns, false)
	}
	t := newTable("STAT", "VALUE")
	for _, s := range ns.order {
		t.add(cell(s.name), cell(s.value))
	}
	if _, ok := ns.Stats["forwarded"]; ok {
		t.add("forwarded", ns.Stats["forwarded"])
		t.add("forward_errors", ns.Stats["forward_errors"])
	}
	return t.write(e.stdout)
}

// resolve finds the memcache address of a member named by name or
// address; a host:port that is no member (or when no seed answers) is
// taken as it is.
func (e *env) resolve(ctx context.Context, which string) (string, error) {
	cv, err := e.cluster(ctx)
	if err == nil {
		m, ferr := findMember(cv.members, which)
		if ferr == nil {
			return m.addr, nil
		}
		err = ferr
	}
	if _, _, serr := net.SplitHostPort(which); serr == nil {
		return which, nil
	}
	return "", err
}

// findMember finds a member by name or memcache address.
func findMember(members []member, which string) (member, error) {
	var names []string
	for _, m := range members {
		if m.name == which || m.addr == which {
			return m, nil
		}
		names = append(names, m.name)
	}
	return member{}, fmt.Errorf("no member %q in the ring (members: %s)", which, strings.Join(names, ", "))
}

// statsAll prints statsFields of every member, a column each.
func (e *env) statsAll(ctx context.Context) error {
	cv, err := e.cluster(ctx)
	if err != nil {
		return err
	}
	all, errs := fanout(cv.members, func(m member) (*nodeStats, error) { return fetchStats(ctx, m.addr, e) })
	if ctx.Err() != nil {
		return ctx.Err()
	}
	e.reportFailures(cv.members, errs)
	nodes := make([]nodeStats, len(cv.members))
	for i, m := range cv.members {
		if errs[i] != nil {
			nodes[i] = nodeStats{Name: m.name, Addr: m.addr, Error: reason(errs[i])}
			continue
		}
		nodes[i] = *all[i]
		nodes[i].Name = m.name
	}
	if e.json() {
		return writeJSON(e.stdout, struct {
			Nodes []nodeStats `json:"nodes"`
		}{nodes}, false)
	}
	header := []string{"FIELD"}
	for _, n := range nodes {
		header = append(header, cell(n.Name))
	}
	t := newTable(header...)
	row := func(field string, value func(i int, n nodeStats) string) {
		cells := []string{field}
		for i, n := range nodes {
			cells = append(cells, cell(value(i, n)))
		}
		t.add(cells...)
	}
	row("addr", func(_ int, n nodeStats) string { return n.Addr })
	row("status", func(i int, n nodeStats) string {
		if errs[i] != nil {
			return failure(errs[i])
		}
		return "ok"
	})
	for _, f := range statsFields {
		row(f, func(_ int, n nodeStats) string { return n.Stats[f] })
	}
	return t.write(e.stdout)
}
