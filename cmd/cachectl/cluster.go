package main

import (
	"context"
	"strconv"
)

// membersCmd prints the members of the ring from "stats cluster" of the
// first seed that answers.
func membersCmd(ctx context.Context, e *env, _ []string) error {
	cv, err := e.cluster(ctx)
	if err != nil {
		return err
	}
	total := 0
	for _, m := range cv.members {
		total += m.partitions
	}
	if e.json() {
		type jsonMember struct {
			Name       string  `json:"name"`
			Addr       string  `json:"addr"`
			State      string  `json:"state"`
			Partitions int     `json:"partitions"`
			SharePct   float64 `json:"share_pct"`
		}
		out := struct {
			Seed       string       `json:"seed"`
			Self       string       `json:"self"`
			Identity   string       `json:"ring_identity"`
			Generation uint64       `json:"ring_generation"`
			Members    []jsonMember `json:"members"`
		}{cv.seed, cv.self, cv.identity, cv.generation, []jsonMember{}}
		for _, m := range cv.members {
			out.Members = append(out.Members, jsonMember{m.name, m.addr, m.state, m.partitions, percent(m.partitions, total)})
		}
		return writeJSON(e.stdout, out, false)
	}
	t := newTable("NAME", "ADDR", "STATE", "PARTITIONS", "SHARE")
	for _, m := range cv.members { // sorted by name by the node
		t.add(cell(m.name), cell(m.addr), cell(m.state), strconv.Itoa(m.partitions), pct(m.partitions, total))
	}
	return t.write(e.stdout)
}

// ringCmd prints the ring of the first seed that answers, from a ring-only
// watch stream: its identity and parameters, and each member's share.
func ringCmd(ctx context.Context, e *env, _ []string) error {
	rv, err := e.ring(ctx)
	if err != nil {
		return err
	}
	r := rv.ring
	counts := r.PartitionCounts()
	top := 0
	for _, c := range counts {
		top = max(top, c)
	}
	if e.json() {
		type jsonMember struct {
			Name       string  `json:"name"`
			Addr       string  `json:"addr"`
			Admin      string  `json:"admin"`
			Partitions int     `json:"partitions"`
			SharePct   float64 `json:"share_pct"`
		}
		out := struct {
			Seed        string       `json:"seed"`
			Identity    string       `json:"identity"`
			Generation  uint64       `json:"generation"`
			Partitions  int          `json:"partitions"`
			Replication int          `json:"replication"`
			Load        float64      `json:"load"`
			Hash        string       `json:"hash"`
			Members     []jsonMember `json:"members"`
		}{Seed: rv.seed, Identity: r.Identity(), Generation: rv.generation, Partitions: r.Partitions(), Hash: rv.params["hash"], Members: []jsonMember{}}
		out.Replication, _ = strconv.Atoi(rv.params["replication"])
		out.Load, _ = strconv.ParseFloat(rv.params["load"], 64)
		for _, m := range r.Members() {
			out.Members = append(out.Members, jsonMember{m.Name, m.Addr, m.Admin, counts[m.Name], percent(counts[m.Name], r.Partitions())})
		}
		return writeJSON(e.stdout, out, false)
	}
	t := newTable("identity", r.Identity())
	t.add("generation", strconv.FormatUint(rv.generation, 10))
	t.add("seed", rv.seed)
	t.add("members", strconv.Itoa(r.Len()))
	t.add("partitions", strconv.Itoa(r.Partitions()))
	t.add("replication", cell(rv.params["replication"]))
	t.add("load", cell(rv.params["load"]))
	t.add("hash", cell(rv.params["hash"]))
	t.blank()
	t.add("NAME", "ADDR", "ADMIN", "PARTITIONS", "SHARE")
	for _, m := range r.Members() { // sorted by name
		c := counts[m.Name]
		t.add(cell(m.Name), cell(m.Addr), cell(m.Admin), strconv.Itoa(c), pct(c, r.Partitions()), bar(c, top, 30))
	}
	return t.write(e.stdout)
}
