//go:build chaos

// Package chaos runs the compose cluster of docker-compose.yml (three nodes
// and the proxy) under a steady, self-checking load while a driver injects
// faults one after the other: a node killed with SIGKILL and restarted, a
// node paused (frozen, as by SIGSTOP) past the failure-detection time, and a
// node cut off the network and put back. Every value read is checked against
// what the workload last wrote: a miss is allowed, a stale, torn or foreign
// value never. At the end it reports, per fault, the errors seen during the
// fault window and the time to recover (docs/reliability.md).
//
//	make chaos                          # about 5 minutes
//	CHAOS_SHORT=1 make chaos            # about 2 minutes, for CI
//	go test -tags chaos -v -timeout 20m ./deploy/chaos/
//
// CHAOS_REPORT=<file> also writes the report as JSON; CHAOS_RATE sets the
// operations per second of each load goroutine (default 150); CHAOS_SEED
// fixes the choice of nodes. Without Docker it skips (loudly), unless
// CACHE_REQUIRE_DOCKER=1, when it fails. Standard library only, as
// deploy/compose.
package chaos

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotcache/hotcache/internal/composetest"
)

// The host ports docker-compose.yml publishes, on 127.0.0.1.
var (
	memcachePort = composetest.MemcachePort
	adminPort    = composetest.AdminPort
	allNodes     = composetest.Nodes
)

const (
	numKeys        = 2000
	proxyWorkers   = 16
	nodeWorkers    = 8
	setFraction    = 0.30
	opTimeout      = 3 * time.Second // the proxy answers within 2 x 1 s + 1 s
	convergeLimit  = 120 * time.Second
	ringLimit      = 90 * time.Second // after a fault: detection, re-join every 10 s
	recoverySpan   = 5                // seconds without errors and at baseline throughput
	recoveryMargin = 0.20             // ops/s within 20% of the pre-fault baseline
	baselineSpan   = 5                // seconds before a fault that make its baseline
)

// phases are the durations of the run: the steady period before the first
// fault, each fault, and the recovery window after each.
type phases struct{ steady, fault, recovery time.Duration }

func runPhases() phases {
	if os.Getenv("CHAOS_SHORT") == "1" {
		return phases{steady: 5 * time.Second, fault: 10 * time.Second, recovery: 15 * time.Second}
	}
	return phases{steady: 20 * time.Second, fault: 20 * time.Second, recovery: 30 * time.Second}
}

func TestChaos(t *testing.T) {
	composetest.RequireDocker(t, "the chaos suite")
	ph := runPhases()
	rate := 150
	if s := os.Getenv("CHAOS_RATE"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			rate = n
		}
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("phases: steady %v, each fault %v, recovery %v; %d+%d load goroutines at %d ops/s each; seed %d",
		ph.steady, ph.fault, ph.recovery, proxyWorkers, nodeWorkers, rate, seed)

	c := newCluster(t)
	c.CheckPortsFree()
	c.BuildImage()
	c.Up()
	d := c.waitRing(allNodes, allNodes, convergeLimit)
	if d < 0 {
		t.Fatalf("the three nodes do not agree on a ring %v after compose up", convergeLimit)
	}
	t.Logf("three nodes agree on a 3-member ring %v after compose up", d.Round(time.Millisecond))
	c.waitProxy()
	ids := map[string]string{}
	for _, n := range allNodes {
		ids[n] = c.ContainerID(n)
	}

	w := newWorkload(fmt.Sprintf("chaos%d", os.Getpid()), rate)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range proxyWorkers + nodeWorkers {
		target := "proxy"
		if i >= proxyWorkers {
			target = allNodes[(i-proxyWorkers)%len(allNodes)]
		}
		wg.Go(func() { w.worker(ctx, i, target, seed) })
	}
	stopLoad := sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stopLoad)

	time.Sleep(ph.steady)
	pick := func() string { return allNodes[rng.IntN(len(allNodes))] }
	faults := []*faultRecord{}
	run := func(kind, node, how string, inject, heal func()) {
		f := &faultRecord{Kind: kind, Node: node, How: how}
		f.Start = w.since()
		inject()
		t.Logf("t=%5.1fs %s %s: %s", f.Start, kind, node, how)
		time.Sleep(ph.fault)
		heal()
		f.End = w.since()
		t.Logf("t=%5.1fs %s %s healed", f.End, kind, node)
		healed := time.Now()
		if d := c.waitRing(allNodes, allNodes, ringLimit); d >= 0 {
			f.RingConvergedS = d.Seconds()
			t.Logf("t=%5.1fs one 3-member ring again, %v after the heal", w.since(), d.Round(100*time.Millisecond))
		} else {
			f.RingConvergedS = -1
			t.Errorf("%s %s: the nodes do not agree on a 3-member ring %v after the heal", kind, node, ringLimit)
		}
		time.Sleep(time.Until(healed.Add(ph.recovery)))
		faults = append(faults, f)
	}

	n := pick()
	run("kill", n, "docker kill -s KILL, then docker start", func() {
		c.Docker(time.Minute, "kill", "-s", "KILL", ids[n])
	}, func() {
		c.Docker(time.Minute, "start", ids[n])
	})
	n = pick()
	run("pause", n, "docker pause (cgroup freezer, as SIGSTOP), then docker unpause", func() {
		c.Docker(time.Minute, "pause", ids[n])
		c.paused.Store(ids[n])
	}, func() {
		c.Docker(time.Minute, "unpause", ids[n])
		c.paused.Store("")
	})
	n = pick()
	network, ip := c.NetworkOf(n)
	run("partition", n, "docker network disconnect, then network connect --ip "+ip, func() {
		c.Docker(time.Minute, "network", "disconnect", network, ids[n])
	}, func() {
		c.Docker(time.Minute, "network", "connect", "--ip", ip, network, ids[n])
	})

	stopLoad()
	rep := w.report(faults, ph, rate, seed)
	t.Log("\n" + rep.table())
	if path := os.Getenv("CHAOS_REPORT"); path != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Errorf("writing CHAOS_REPORT: %v", err)
		} else {
			t.Logf("report written to %s", path)
		}
	}
	if rep.Ops == 0 {
		t.Fatal("no operation succeeded")
	}
	if rep.WrongTotal > 0 {
		ex := rep.WrongExamples[:min(30, len(rep.WrongExamples))]
		t.Fatalf("%d WRONG VALUES read (%v) in seconds %v, e.g.:\n\t%s", rep.WrongTotal, rep.Wrong, rep.WrongSeconds, strings.Join(ex, "\n\t"))
	}
}

// ---- the workload ----

// keyState is what the workload did to one key: the highest seq sent and
// the highest seq acknowledged (STORED). Only the key's writer stores them.
type keyState struct {
	sent, acked, ackedAt atomic.Int64 // ackedAt: ns since the load began

	mu     sync.Mutex
	writes []writeRecord // the last few writes, for the examples of wrong values
}

// writeRecord is one write of a key: its seq, the way it went, when it was
// sent (since the load began) and what came back.
type writeRecord struct {
	seq    int64
	target string
	at     time.Duration
	result string
}

// record keeps a write in the key's short history.
func (st *keyState) record(r writeRecord) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.writes) == 6 {
		st.writes = st.writes[1:]
	}
	st.writes = append(st.writes, r)
}

// history describes the key's last writes.
func (st *keyState) history() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var b strings.Builder
	for _, r := range st.writes {
		fmt.Fprintf(&b, "; seq %d via %s at t=%.3fs: %s", r.seq, r.target, r.at.Seconds(), r.result)
	}
	return b.String()
}

type second struct {
	Ops         int64 `json:"ops"`
	Errors      int64 `json:"errors"`
	ProxyErrors int64 `json:"proxy_errors"`
	NodeErrors  int64 `json:"node_errors"`
	Misses      int64 `json:"misses"`
	Wrong       int64 `json:"wrong"`
}

type workload struct {
	run    string
	rate   int
	keys   []string
	writer []int // the one goroutine that writes each key
	owned  [][]int
	state  []keyState
	start  time.Time

	mu       sync.Mutex
	secs     []second
	errKinds map[string]int64
	wrong    map[string]int64
	examples []string
	gets     int64
	sets     int64
}

func newWorkload(run string, rate int) *workload {
	workers := proxyWorkers + nodeWorkers
	w := &workload{
		run: run, rate: rate,
		keys: make([]string, numKeys), writer: make([]int, numKeys),
		owned: make([][]int, workers), state: make([]keyState, numKeys),
		start: time.Now(), errKinds: map[string]int64{}, wrong: map[string]int64{},
	}
	for i := range w.keys {
		w.keys[i] = fmt.Sprintf("%s:%04d", run, i)
		w.writer[i] = i % workers
		w.owned[i%workers] = append(w.owned[i%workers], i)
	}
	return w
}

func (w *workload) since() float64 { return time.Since(w.start).Seconds() }

func (w *workload) bucket() *second {
	s := int(time.Since(w.start) / time.Second)
	for len(w.secs) <= s {
		w.secs = append(w.secs, second{})
	}
	return &w.secs[s]
}

func (w *workload) ok(miss bool) {
	w.mu.Lock()
	b := w.bucket()
	b.Ops++
	if miss {
		b.Misses++
	}
	w.mu.Unlock()
}

var nodeName = regexp.MustCompile(`node[0-9]+`)

func (w *workload) fail(target, kind string) {
	class := "proxy"
	if target != "proxy" {
		class = "node"
	}
	kind = nodeName.ReplaceAllString(kind, "<node>")
	w.mu.Lock()
	b := w.bucket()
	b.Errors++
	if class == "proxy" {
		b.ProxyErrors++
	} else {
		b.NodeErrors++
	}
	w.errKinds["via "+class+": "+kind]++
	w.mu.Unlock()
}

func (w *workload) wrongValue(kind, detail string) {
	w.mu.Lock()
	w.wrong[kind]++
	b := w.bucket()
	b.Wrong++
	if len(w.examples) < 400 && b.Wrong <= 10 { // up to 10 a second: every episode shows
		w.examples = append(w.examples, fmt.Sprintf("t=%.3fs %s: %s", w.since(), kind, detail))
	}
	w.mu.Unlock()
}

// errKind names an I/O error briefly.
func errKind(op string, err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return op + ": timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return op + ": connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return op + ": connection reset"
	case errors.Is(err, syscall.EPIPE):
		return op + ": broken pipe"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return op + ": connection closed (EOF)"
	}
	return op + ": " + err.Error()
}

// value is key's seq-th value from writer: key|writer|seq|len|hash|rest,
// where rest is len filler bytes and hash the first 8 bytes (hex) of the
// SHA-256 of everything before it and rest.
func value(key string, writer int, seq int64) []byte {
	n := 40 + int(uint64(seq)*7919%400)
	rest := make([]byte, n)
	x := uint64(seq)*0x9e3779b97f4a7c15 ^ uint64(writer)
	for i := range rest {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		rest[i] = 'a' + byte(x%26)
	}
	hdr := fmt.Sprintf("%s|%d|%d|%d|", key, writer, seq, n)
	sum := sha256.Sum256(append([]byte(hdr), rest...))
	return []byte(hdr + hex.EncodeToString(sum[:8]) + "|" + string(rest))
}

// check classifies a value read for key k: "" if it is well formed, of k
// and its writer, and its seq is within [lo, hi].
func (w *workload) check(k int, v []byte, lo, hi int64) (kind, detail string) {
	key := w.keys[k]
	p := strings.SplitN(string(v), "|", 6)
	if len(p) != 6 {
		return "torn", fmt.Sprintf("%s: %d fields in %.120q", key, len(p), v)
	}
	if p[0] != key {
		return "foreign", fmt.Sprintf("%s: value of key %q: %.120q", key, p[0], v)
	}
	writer, err1 := strconv.Atoi(p[1])
	seq, err2 := strconv.ParseInt(p[2], 10, 64)
	n, err3 := strconv.Atoi(p[3])
	if err1 != nil || err2 != nil || err3 != nil {
		return "torn", fmt.Sprintf("%s: bad header in %.120q", key, v)
	}
	if writer != w.writer[k] {
		return "foreign", fmt.Sprintf("%s: written by %d, not by its writer %d: %.120q", key, writer, w.writer[k], v)
	}
	hdr := strings.Join(p[:4], "|") + "|"
	sum := sha256.Sum256([]byte(hdr + p[5]))
	if len(p[5]) != n || p[4] != hex.EncodeToString(sum[:8]) {
		return "torn", fmt.Sprintf("%s: length %d (header %d) or hash mismatch: %.120q", key, len(p[5]), n, v)
	}
	if seq < lo {
		return "stale", fmt.Sprintf("%s: seq %d, but seq %d was acknowledged before the read began (highest sent %d)", key, seq, lo, hi)
	}
	if seq > hi {
		return "future", fmt.Sprintf("%s: seq %d, but the highest seq sent is %d", key, seq, hi)
	}
	return "", ""
}

// worker runs one load goroutine against target: paced at w.rate ops/s,
// 30% sets of its own keys, 70% gets of any key.
func (w *workload) worker(ctx context.Context, id int, target string, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, uint64(id)+100))
	own := w.owned[id]
	var mc *mcConn
	defer func() {
		if mc != nil {
			mc.Close()
		}
	}()
	interval := time.Second / time.Duration(w.rate)
	next := time.Now()
	for ctx.Err() == nil {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		} else if d < -interval {
			next = time.Now() // behind (a slow op): do not burst to catch up
		}
		next = next.Add(interval)
		if mc == nil {
			var err error
			if mc, err = dialMC(target); err != nil {
				mc = nil
				if ctx.Err() == nil {
					w.fail(target, errKind("dial", err))
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
		}
		var err error
		if rng.Float64() < setFraction {
			err = w.set(mc, target, own[rng.IntN(len(own))], id)
		} else {
			err = w.get(mc, target, rng.IntN(numKeys))
		}
		if err != nil { // the connection is in an unknown state
			// Reset it, as the client and the proxy do: a write the
			// network holds back must not land long after this one gave
			// up on it and wrote a newer value elsewhere.
			mc.abort()
			mc = nil
			if ctx.Err() == nil {
				w.fail(target, err.Error())
			}
		}
	}
}

// replyError is an error reply: the connection stays usable.
type replyError string

func (e replyError) Error() string { return string(e) }

// set writes the next seq of key k; an error reply is counted here and
// returns nil (the connection is fine), an I/O error is returned.
func (w *workload) set(mc *mcConn, target string, k, writer int) error {
	st := &w.state[k]
	seq := st.sent.Load() + 1
	st.sent.Store(seq)
	v := value(w.keys[k], writer, seq)
	rec := writeRecord{seq: seq, target: target, at: time.Since(w.start)}
	mc.conn.SetDeadline(time.Now().Add(opTimeout))
	fmt.Fprintf(mc.w, "set %s 0 0 %d\r\n", w.keys[k], len(v))
	mc.w.Write(v)
	mc.w.WriteString("\r\n")
	if err := mc.w.Flush(); err != nil {
		rec.result = errKind("set", err)
		st.record(rec)
		return errors.New(errKind("set", err))
	}
	l, err := mc.line()
	if err != nil {
		rec.result = errKind("set", err)
		st.record(rec)
		return errors.New(errKind("set", err))
	}
	rec.result = trimReason(l)
	st.record(rec)
	w.mu.Lock()
	w.sets++
	w.mu.Unlock()
	if l == "STORED" {
		st.ackedAt.Store(int64(time.Since(w.start)))
		st.acked.Store(seq)
		w.ok(false)
		return nil
	}
	if isErrorReply(l) {
		w.fail(target, "set: "+trimReason(l))
		return nil
	}
	return fmt.Errorf("set: unexpected reply %.60q", l)
}

// trimReason keeps an error reply's kind, not its variable details.
func trimReason(l string) string {
	if i := strings.Index(l, "unavailable: "); i >= 0 {
		r := l[i+len("unavailable: "):]
		if j := strings.IndexAny(r, " (:"); j > 0 {
			r = r[:j]
		}
		return l[:i] + "unavailable: " + r
	}
	if len(l) > 80 {
		return l[:80]
	}
	return l
}

func (w *workload) get(mc *mcConn, target string, k int) error {
	st := &w.state[k]
	lo := st.acked.Load()
	loAt := time.Duration(st.ackedAt.Load())
	readAt := time.Since(w.start)
	mc.conn.SetDeadline(time.Now().Add(opTimeout))
	mc.w.WriteString("get " + w.keys[k] + "\r\n")
	if err := mc.w.Flush(); err != nil {
		return errors.New(errKind("get", err))
	}
	l, err := mc.line()
	if err != nil {
		return errors.New(errKind("get", err))
	}
	w.mu.Lock()
	w.gets++
	w.mu.Unlock()
	if l == "END" {
		w.ok(true)
		return nil
	}
	if isErrorReply(l) {
		w.fail(target, "get: "+trimReason(l))
		return nil
	}
	f := strings.Fields(l)
	if len(f) != 4 || f[0] != "VALUE" {
		return fmt.Errorf("get: unexpected reply %.60q", l)
	}
	n, err := strconv.Atoi(f[3])
	if err != nil || n < 0 || n > 1<<20 {
		return fmt.Errorf("get: bad length in %.60q", l)
	}
	data := make([]byte, n+2)
	if _, err := io.ReadFull(mc.r, data); err != nil {
		return errors.New(errKind("get", err))
	}
	end, err := mc.line()
	if err != nil {
		return errors.New(errKind("get", err))
	}
	if !bytes.HasSuffix(data, []byte("\r\n")) || end != "END" {
		w.wrongValue("torn", fmt.Sprintf("%s via %s: reply framing broken: %.120q then %.40q", w.keys[k], target, data, end))
		return errors.New("get: reply framing broken")
	}
	hi := st.sent.Load()
	if f[1] != w.keys[k] {
		w.wrongValue("foreign", fmt.Sprintf("get %s via %s answered VALUE %s", w.keys[k], target, f[1]))
		w.ok(false)
		return nil
	}
	if kind, detail := w.check(k, data[:n], lo, hi); kind != "" {
		w.wrongValue(kind, fmt.Sprintf("via %s: %s (read began t=%.3fs, seq %d acknowledged by t=%.3fs); last writes%s",
			target, detail, readAt.Seconds(), lo, loAt.Seconds(), st.history()))
	}
	w.ok(false)
	return nil
}

// ---- the report ----

type faultRecord struct {
	Kind           string  `json:"kind"`
	Node           string  `json:"node"`
	How            string  `json:"how"`
	Start          float64 `json:"start_s"` // seconds since the load began
	End            float64 `json:"end_s"`
	RingConvergedS float64 `json:"ring_converged_after_heal_s"` // -1: not within ringLimit

	BaselineOps      float64 `json:"baseline_ops_per_s"`
	OpsDuring        int64   `json:"ops_during"`
	ErrorsDuring     int64   `json:"errors_during"`
	ProxyErrDuring   int64   `json:"proxy_errors_during"`
	NodeErrDuring    int64   `json:"node_errors_during"`
	MissRateDuring   float64 `json:"miss_rate_during"`
	WrongDuring      int64   `json:"wrong_values_during"`
	WrongAfter       int64   `json:"wrong_values_after_heal"`
	LastWrongAfterS  float64 `json:"last_wrong_value_after_heal_s"` // -1: none
	ErrorsAfter      int64   `json:"errors_after_heal"`             // from the heal to the next fault (or the end)
	ProxyErrAfter    int64   `json:"proxy_errors_after_heal"`
	LastErrorAfterS  float64 `json:"last_error_after_heal_s"` // -1: none
	RecoveredAfterS  float64 `json:"recovered_after_heal_s"`  // -1: not within the window
	RecoveryWindowS  float64 `json:"recovery_window_s"`
	MissRateRecovery float64 `json:"miss_rate_recovery_window"`
}

type report struct {
	Phases        map[string]float64 `json:"phases_s"`
	Workers       map[string]int     `json:"workers"`
	RatePerWorker int                `json:"ops_per_s_per_worker"`
	Keys          int                `json:"keys"`
	Seed          uint64             `json:"seed"`
	DurationS     float64            `json:"duration_s"`
	Ops           int64              `json:"ops"`
	Gets          int64              `json:"gets_answered"`
	Sets          int64              `json:"sets_answered"`
	Errors        int64              `json:"errors"`
	Misses        int64              `json:"misses"`
	ErrorKinds    map[string]int64   `json:"error_kinds"`
	WrongTotal    int64              `json:"wrong_values"`
	Wrong         map[string]int64   `json:"wrong_by_kind"`
	WrongExamples []string           `json:"wrong_examples,omitempty"`
	WrongSeconds  []string           `json:"wrong_per_second,omitempty"`
	Faults        []*faultRecord     `json:"faults"`
	Series        []second           `json:"per_second"`
}

func (w *workload) report(faults []*faultRecord, ph phases, rate int, seed uint64) *report {
	w.mu.Lock()
	defer w.mu.Unlock()
	secs := slices.Clone(w.secs)
	if len(secs) > 0 {
		secs = secs[:len(secs)-1] // the last second is partial
	}
	r := &report{
		Phases:  map[string]float64{"steady": ph.steady.Seconds(), "fault": ph.fault.Seconds(), "recovery": ph.recovery.Seconds()},
		Workers: map[string]int{"proxy": proxyWorkers, "nodes": nodeWorkers}, RatePerWorker: rate,
		Keys: numKeys, Seed: seed, DurationS: float64(len(secs)),
		Gets: w.gets, Sets: w.sets,
		ErrorKinds: maps(w.errKinds), Wrong: maps(w.wrong), WrongExamples: slices.Clone(w.examples),
		Faults: faults, Series: secs,
	}
	for _, s := range secs {
		r.Ops += s.Ops
		r.Errors += s.Errors
		r.Misses += s.Misses
	}
	for i, s := range secs {
		if s.Wrong > 0 {
			r.WrongSeconds = append(r.WrongSeconds, fmt.Sprintf("t=%d: %d", i, s.Wrong))
		}
	}
	for _, v := range w.wrong {
		r.WrongTotal += v
	}
	for i, f := range faults {
		start, end := int(f.Start), int(f.End+0.999)
		limit := len(secs)
		if i+1 < len(faults) {
			limit = int(faults[i+1].Start)
		}
		var base int64
		nb := 0
		for s := max(0, start-baselineSpan); s < start && s < len(secs); s++ {
			base += secs[s].Ops
			nb++
		}
		if nb > 0 {
			f.BaselineOps = float64(base) / float64(nb)
		}
		var misses int64
		for s := start; s < end && s < len(secs); s++ {
			f.OpsDuring += secs[s].Ops
			f.ErrorsDuring += secs[s].Errors
			f.ProxyErrDuring += secs[s].ProxyErrors
			f.NodeErrDuring += secs[s].NodeErrors
			misses += secs[s].Misses
			f.WrongDuring += secs[s].Wrong
		}
		if f.OpsDuring > 0 {
			f.MissRateDuring = float64(misses) / float64(f.OpsDuring)
		}
		f.LastErrorAfterS, f.LastWrongAfterS = -1, -1
		var ops int64
		misses = 0
		for s := end; s < limit && s < len(secs); s++ {
			f.ErrorsAfter += secs[s].Errors
			f.ProxyErrAfter += secs[s].ProxyErrors
			ops += secs[s].Ops
			misses += secs[s].Misses
			if secs[s].Errors > 0 {
				f.LastErrorAfterS = float64(s+1) - f.End
			}
			f.WrongAfter += secs[s].Wrong
			if secs[s].Wrong > 0 {
				f.LastWrongAfterS = float64(s+1) - f.End
			}
		}
		if ops > 0 {
			f.MissRateRecovery = float64(misses) / float64(ops)
		}
		f.RecoveryWindowS = float64(min(limit, len(secs))) - f.End
		f.RecoveredAfterS = -1
		for s := end; s+recoverySpan <= limit && s+recoverySpan <= len(secs); s++ {
			good := true
			for _, x := range secs[s : s+recoverySpan] {
				if x.Errors > 0 || float64(x.Ops) < (1-recoveryMargin)*f.BaselineOps || float64(x.Ops) > (1+recoveryMargin)*f.BaselineOps {
					good = false
					break
				}
			}
			if good {
				f.RecoveredAfterS = max(0, float64(s)-f.End)
				break
			}
		}
	}
	return r
}

func maps(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (r *report) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos run: %.0f s, %d ops answered (%d gets, %d sets), %d errors, %d misses, WRONG VALUES %d %v\n",
		r.DurationS, r.Ops, r.Gets, r.Sets, r.Errors, r.Misses, r.WrongTotal, r.Wrong)
	fmt.Fprintf(&b, "%-10s %-6s %7s %7s %9s %10s %10s %9s %10s %10s %10s %9s %9s %9s %10s\n",
		"fault", "node", "start", "length", "base op/s", "ops in", "err in", "(proxy)", "miss% in", "err after", "last err", "recovered", "ring", "wrong in", "wrong after")
	for _, f := range r.Faults {
		fmt.Fprintf(&b, "%-10s %-6s %6.1fs %6.1fs %9.0f %10d %10d %9d %9.1f%% %10d %10s %9s %9s %9d %10d\n",
			f.Kind, f.Node, f.Start, f.End-f.Start, f.BaselineOps, f.OpsDuring, f.ErrorsDuring, f.ProxyErrDuring,
			100*f.MissRateDuring, f.ErrorsAfter, secs(f.LastErrorAfterS, "none"), secs(f.RecoveredAfterS, "NOT"), secs(f.RingConvergedS, "NOT"),
			f.WrongDuring, f.WrongAfter)
	}
	b.WriteString("errors by kind:\n")
	kinds := make([]string, 0, len(r.ErrorKinds))
	for k := range r.ErrorKinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(&b, "  %8d  %s\n", r.ErrorKinds[k], k)
	}
	b.WriteString("per second (t: ops errors misses wrong):\n")
	for i, s := range r.Series {
		fmt.Fprintf(&b, "  %3d: %5d %5d %5d %3d", i, s.Ops, s.Errors, s.Misses, s.Wrong)
		if i%4 == 3 {
			b.WriteString("\n")
		}
	}
	b.WriteString("\n")
	return b.String()
}

func secs(v float64, neg string) string {
	if v < 0 {
		return neg
	}
	return fmt.Sprintf("%.1fs", v)
}

// ---- the cluster under test (internal/composetest, as deploy/compose) ----

type cluster struct {
	*composetest.Project
	t      *testing.T
	paused atomic.Value // container id paused by the driver, "" if none
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{Project: composetest.New(t, "the chaos suite", "hotcache-chaos"), t: t}
	c.paused.Store("")
	c.BeforeDown = func() {
		if id, _ := c.paused.Load().(string); id != "" {
			c.Run(time.Minute, "docker", "unpause", id)
		}
	}
	c.Diagnose = func() {
		out, _ := c.Run(time.Minute, c.Args("logs", "--no-color", "-t", "--tail", "200")...)
		fmt.Fprintf(os.Stderr, "==== container logs (last 200 lines each)\n%s\n", out)
	}
	return c
}

// ringView is one node's `stats cluster`: its ring identity and members
// (name -> state).
func ringView(node string) (identity string, members map[string]string, err error) {
	mc, err := dialMC(node)
	if err != nil {
		return "", nil, err
	}
	defer mc.Close()
	lines, err := mc.stats("cluster")
	if err != nil {
		return "", nil, err
	}
	members = map[string]string{}
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) == 3 && f[1] == "ring_identity":
			identity = f[2]
		case len(f) >= 5 && f[1] == "member":
			members[f[2]] = f[4]
		}
	}
	return identity, members, nil
}

// waitRing polls until every node of ask reports exactly want, all alive,
// under one ring identity; it returns how long that took, or -1 after
// timeout.
func (c *cluster) waitRing(ask, want []string, timeout time.Duration) time.Duration {
	start := time.Now()
	var why string
	for time.Since(start) < timeout {
		why = ""
		ids := map[string]bool{}
		for _, n := range ask {
			id, members, err := ringView(n)
			if err != nil {
				why = n + ": " + err.Error()
				break
			}
			var names []string
			for name, st := range members {
				if st == "alive" {
					names = append(names, name)
				}
			}
			sort.Strings(names)
			if !slices.Equal(names, want) || len(members) != len(want) {
				why = fmt.Sprintf("%s sees %v", n, members)
				break
			}
			ids[id] = true
		}
		if why == "" && len(ids) == 1 {
			return time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.t.Logf("ring not agreed after %v: %s", timeout, why)
	return -1
}

// waitProxy waits until the proxy is ready and routes by a 3-member ring.
func (c *cluster) waitProxy() {
	start := time.Now()
	for {
		if _, err := httpGet(adminPort["proxy"], "/readyz"); err == nil {
			if mc, err := dialMC("proxy"); err == nil {
				lines, err := mc.stats("cluster")
				mc.Close()
				if err == nil && slices.Contains(lines, "STAT members 3") {
					c.t.Logf("proxy ready with a 3-member ring after %v", time.Since(start).Round(time.Millisecond))
					return
				}
			}
		}
		if time.Since(start) > convergeLimit {
			c.t.Fatalf("the proxy is not ready with a 3-member ring after %v", convergeLimit)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func httpGet(port int, path string) (string, error) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return string(b), nil
}

// ---- a small memcache text client ----

type mcConn struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

func dialMC(node string) (*mcConn, error) {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(memcachePort[node])), 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &mcConn{conn: conn, r: bufio.NewReaderSize(conn, 16<<10), w: bufio.NewWriterSize(conn, 16<<10)}, nil
}

func (m *mcConn) Close() { m.conn.Close() }

// abort closes the connection with a TCP reset (SO_LINGER 0): what the
// server has not acknowledged is dropped, not retransmitted.
func (m *mcConn) abort() {
	if tc, ok := m.conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	m.conn.Close()
}

func (m *mcConn) line() (string, error) {
	l, err := m.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(l, "\r\n") {
		return "", fmt.Errorf("reply line %.60q does not end in \\r\\n", l)
	}
	return l[:len(l)-2], nil
}

func isErrorReply(l string) bool {
	return l == "ERROR" || strings.HasPrefix(l, "SERVER_ERROR") || strings.HasPrefix(l, "CLIENT_ERROR")
}

func (m *mcConn) stats(arg string) ([]string, error) {
	m.conn.SetDeadline(time.Now().Add(5 * time.Second))
	m.w.WriteString("stats " + arg + "\r\n")
	if err := m.w.Flush(); err != nil {
		return nil, err
	}
	var lines []string
	for {
		l, err := m.line()
		if err != nil {
			return nil, err
		}
		if l == "END" {
			return lines, nil
		}
		if !strings.HasPrefix(l, "STAT ") {
			return nil, fmt.Errorf("stats %s: %.60q", arg, l)
		}
		lines = append(lines, l)
	}
}
