package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

func hotCommand() *command {
	var watch bool
	var interval time.Duration
	var count int
	return &command{
		name: "hot", args: "[-watch] [-interval 1s]",
		summary: "hot keys across the cluster (every member's \"stats hotkeys\"), hottest first",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&watch, "watch", false, "redraw every -interval until interrupted")
			fs.DurationVar(&interval, "interval", time.Second, "time between redraws with -watch")
			fs.IntVar(&count, "count", 0, "with -watch, stop after this many redraws (0: never)")
		},
		hidden: []string{"count"},
		nargs:  exactly(0),
		run: func(ctx context.Context, e *env, _ []string) error {
			if !watch {
				return e.hotOnce(ctx, e.stdout, false)
			}
			if interval <= 0 {
				return usagef("-interval must be positive")
			}
			return e.hotWatch(ctx, interval, count)
		},
	}
}

// A hotKey is one "STAT hotkey" line of a member.
type hotKey struct {
	Key         string  `json:"key"`
	Node        string  `json:"node"`
	ReadsPerSec float64 `json:"reads_per_s"`
	Served      string  `json:"served"`
	EdgeHits    uint64  `json:"edge_hits"`
}

// A hotNode is one member's "stats hotkeys": its counters, or why it could
// not be asked.
type hotNode struct {
	Name     string            `json:"name"`
	Addr     string            `json:"addr"`
	Error    string            `json:"error,omitempty"`
	Counters map[string]uint64 `json:"counters,omitempty"`
	keys     []hotKey
	failure  string // "unreachable" or "error" when Error is set
}

// hotReport is hot keys across the cluster.
type hotReport struct {
	Keys  []hotKey  `json:"keys"`
	Nodes []hotNode `json:"nodes"`
}

// collectHot asks every member of a seed's ring for its hot keys.
func (e *env) collectHot(ctx context.Context) (*hotReport, error) {
	cv, err := e.cluster(ctx)
	if err != nil {
		return nil, err
	}
	nodes, errs := fanout(cv.members, func(m member) (hotNode, error) {
		hn := hotNode{Name: m.name, Addr: m.addr}
		st, err := statsOnce(ctx, m.addr, "hotkeys", e)
		if err != nil {
			return hn, err
		}
		return hn, parseHotKeys(&hn, st)
	})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	e.reportFailures(cv.members, errs)
	rep := &hotReport{Keys: []hotKey{}, Nodes: nodes}
	for i := range nodes {
		if errs[i] != nil {
			nodes[i].Error, nodes[i].failure = reason(errs[i]), failure(errs[i])
		}
		rep.Keys = append(rep.Keys, nodes[i].keys...)
	}
	slices.SortFunc(rep.Keys, func(a, b hotKey) int {
		return cmp.Or(cmp.Compare(b.ReadsPerSec, a.ReadsPerSec), strings.Compare(a.Key, b.Key), strings.Compare(a.Node, b.Node))
	})
	return rep, nil
}

// parseHotKeys fills hn from "stats hotkeys": counters, and lines
// "hotkey <key> reads_per_s=N served=S edge_hits=N".
func parseHotKeys(hn *hotNode, st []stat) error {
	hn.Counters = map[string]uint64{}
	for _, s := range st {
		if s.name != "hotkey" {
			if v, err := strconv.ParseUint(s.value, 10, 64); err == nil {
				hn.Counters[s.name] = v
			}
			continue
		}
		f := strings.Split(s.value, " ")
		if len(f) < 2 {
			return fmt.Errorf("stats hotkeys: STAT hotkey %.80q", s.value)
		}
		k := hotKey{Key: f[0], Node: hn.Name}
		for _, kv := range f[1:] {
			name, v, _ := strings.Cut(kv, "=")
			switch name {
			case "reads_per_s":
				k.ReadsPerSec, _ = strconv.ParseFloat(v, 64)
			case "served":
				k.Served = v
			case "edge_hits":
				k.EdgeHits, _ = strconv.ParseUint(v, 10, 64)
			}
		}
		hn.keys = append(hn.keys, k)
	}
	return nil
}

// writeHot writes rep as a table: one row per hot key, then one per member
// that could not be asked.
func writeHot(w io.Writer, rep *hotReport) error {
	t := newTable("KEY", "NODE", "READS/S", "SERVED", "EDGE_HITS")
	for _, k := range rep.Keys {
		t.add(cell(k.Key), cell(k.Node), strconv.FormatFloat(k.ReadsPerSec, 'f', 0, 64), cell(k.Served), strconv.FormatUint(k.EdgeHits, 10))
	}
	failed := 0
	for _, n := range rep.Nodes { // in name order
		if n.Error != "" {
			failed++
			t.add("-", cell(n.Name), "-", n.failure, "-")
		}
	}
	if len(rep.Keys) == 0 && failed == 0 {
		t.add("(no hot keys)")
	}
	return t.write(w)
}

func (e *env) hotOnce(ctx context.Context, w io.Writer, compact bool) error {
	rep, err := e.collectHot(ctx)
	if err != nil {
		return err
	}
	if e.json() {
		return writeJSON(w, rep, compact)
	}
	return writeHot(w, rep)
}

// hotWatch redraws the hot keys every interval until ctx ends or count
// redraws are done. On a terminal it clears the screen each time;
// otherwise tables follow one another, separated by a blank line (JSON:
// one object per line). A redraw that fails is reported and the next one
// tried; the exit status is that of the last.
func (e *env) hotWatch(ctx context.Context, interval time.Duration, count int) error {
	tty := isTerminal(e.stdout)
	var err error
	for i := 0; count == 0 || i < count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(interval):
			}
		}
		var buf strings.Builder
		if err = e.hotOnce(ctx, &buf, true); errors.Is(err, ctx.Err()) && ctx.Err() != nil {
			return nil
		}
		switch {
		case tty && !e.json():
			io.WriteString(e.stdout, clearScreen)
			fmt.Fprintf(e.stdout, "cachectl hot: every %v, Ctrl-C to stop\n\n", interval)
		case i > 0 && !e.json():
			io.WriteString(e.stdout, "\n")
		}
		if err != nil {
			fmt.Fprintln(e.stderr, "cachectl:", err)
			continue
		}
		io.WriteString(e.stdout, buf.String())
	}
	if err != nil {
		return &exitError{code: exitFailure} // already reported
	}
	return nil
}
