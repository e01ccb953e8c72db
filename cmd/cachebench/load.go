package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/hotcache/hotcache/internal/workload"
)

// keySpace is what every connection of a run shares, read-only: the key
// distribution, which server owns each key, and the encoded set value.
type keySpace struct {
	opts    *loadOptions
	servers []string
	zipf    *workload.ZipfTable // nil for uniform
	owner   []uint16            // owner[id] is the index of the server of key id; nil for one server
	req     *request
}

// newKeySpace places the keys on servers by xxhash(key) mod len(servers). A
// later issue replaces this with package ring.
func newKeySpace(o *loadOptions, servers []string, zipf *workload.ZipfTable) (*keySpace, error) {
	if len(servers) == 0 || len(servers) > 1<<16 {
		return nil, errors.New("want 1 to 65536 servers")
	}
	for i, a := range servers {
		if slices.Contains(servers[:i], a) {
			return nil, fmt.Errorf("server %s is listed twice", a)
		}
	}
	ks := &keySpace{opts: o, servers: servers, zipf: zipf, req: o.newRequest()}
	if len(servers) == 1 {
		return ks, nil
	}
	ks.owner = make([]uint16, o.keys)
	owned := make([]int, len(servers))
	var buf []byte
	for id := range ks.owner {
		buf = workload.AppendKey(buf[:0], id)
		s := xxhash.Sum64(buf) % uint64(len(servers))
		ks.owner[id] = uint16(s)
		owned[s]++
	}
	for i, n := range owned {
		if n == 0 {
			return nil, fmt.Errorf("server %s owns none of the %d keys: use more keys", servers[i], o.keys)
		}
	}
	return ks, nil
}

// newZipfTable builds the shared Zipf table, or returns nil for uniform keys.
func newZipfTable(o *loadOptions) *workload.ZipfTable {
	if o.dist == "uniform" {
		return nil
	}
	return workload.NewZipfTable(o.keys, o.s)
}

// scenarioRate is the virtual request rate of -dist hotspot and flash: one
// request per virtual nanosecond, so that the draws themselves barely move
// the clock and AdvanceTo(elapsed) drives it by wall time.
const scenarioRate = 1_000_000_000

// stream returns a new key stream; each connection has its own. For
// hotspot and flash every stream shares the hot set (the scenario seed is
// opts.seed) and draws its own keys (DrawSeed is the connection's seed).
func (ks *keySpace) stream(seed uint64) workload.Stream {
	o := ks.opts
	switch {
	case o.scenario():
		cfg := workload.ScenarioConfig{Keys: o.keys, Skew: o.s, Rate: scenarioRate, Seed: o.seed, DrawSeed: seed | 1<<63, Table: ks.zipf}
		if o.dist == "hotspot" {
			cfg.ShiftEvery, cfg.ShiftRanks, cfg.EventRanks = o.shiftEvery, o.shiftRanks, min(10, o.shiftRanks)
		} else {
			cfg.FlashShare, cfg.FlashStart, cfg.FlashEnd = o.flashShare, o.flashAt, o.flashAt+o.flashFor
		}
		return workload.NewScenario(cfg)
	case ks.zipf != nil:
		return ks.zipf.NewStream(seed)
	}
	return workload.NewUniform(o.keys, seed)
}

// Phases of a run. Workers read the phase before each batch.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// run is one measured run of the workload against ks.servers at one
// pipeline depth.
type run struct {
	ks       *keySpace
	depth    int
	phase    atomic.Int32
	budget   *atomic.Int64 // requests left to measure; nil in -duration mode
	stopped  chan struct{} // closed when phase becomes phaseStop
	stopOnce sync.Once
	aborted  atomic.Bool // the run is abandoned: stop at once, do not wait for replies
	workers  []*worker

	// Set before the workers start, read-only after.
	measureAt time.Time     // planned start of the measured window: the clock of -dist hotspot and flash
	interval  time.Duration // open loop: time between two requests of one connection; 0 in a closed loop
	hooks     runHooks

	measured measureStart
	stopAt   time.Time // when phaseStop was set; written by stop, read after the workers are done
	series   []second  // per-second samples of the measured window
	cpu      float64   // CPU seconds of this process in the measured window
	backErr  string    // why the backends' stats are missing, if they are
	nodes    []nodeLoad
}

// runHooks are optional callbacks of a run, for the commands that need
// more than run does.
type runHooks struct {
	// progress gets one line per second of the measured window.
	progress io.Writer
	// backends are memcache addresses whose "stats" are read at the start
	// and end of the measured window, for the requests each served.
	backends []string
	// atMeasure, if set, runs in its own goroutine when the measured
	// window starts, with that time.
	atMeasure func(start time.Time)
}

func (r *run) stop() {
	r.stopOnce.Do(func() {
		r.stopAt = time.Now()
		r.phase.Store(phaseStop)
		close(r.stopped)
	})
}

// op is one request of a batch: its kind and where its key is in wbuf.
type op struct {
	get    bool
	del    bool
	kstart int32
	kend   int32
}

// connStats are counted by one worker and summed after the run.
type connStats struct {
	ops        int64 // requests answered without error
	gets       int64
	sets       int64
	deletes    int64
	hits       int64
	misses     int64
	errors     int64 // requests that failed: error reply, I/O or protocol error
	reconnects int64
	unsent     int64 // open loop: requests scheduled in the window but never sent
	firstErr   string
	hist       histogram // latency of answered requests, in ns
	lag        histogram // open loop: how late the generator sent a request that was due while it was idle, in ns
}

func (s *connStats) reset() { *s = connStats{} }

// liveCounts are a worker's running totals since the run started, read by
// the per-second sampler while the worker adds to them. Each worker has its
// own, padded to a cache line, so that workers never contend.
type liveCounts struct {
	ops, errors, gets, hits atomic.Int64
	_                       [32]byte
}

// worker drives one connection: build a batch, write it, read every reply.
type worker struct {
	r      *run
	server int
	seed   uint64
	stream workload.Stream
	scen   *workload.Scenario // stream, if the keys come from a scenario
	rng    rand.PCG
	mu     sync.Mutex // guards conn against close from run.abort; the worker reads it unlocked
	conn   net.Conn
	rr     replyReader
	wbuf   []byte
	ops    []op
	due    []time.Time // open loop: the scheduled time of each request of the batch
	armed  time.Time   // when the deadline was last pushed out
	st     connStats
	live   liveCounts
	timer  *time.Timer // open loop: sleeps until the next request is due
}

func (w *worker) addr() string { return w.r.ks.servers[w.server] }

// dial reconnects after an error, backing off, for up to opts.timeout. It
// returns false if it failed or the run stopped.
func (w *worker) dial() bool {
	timeout := w.r.ks.opts.timeout
	giveUp := time.Now().Add(timeout)
	backoff := 10 * time.Millisecond
	for {
		c, err := net.DialTimeout("tcp", w.addr(), timeout)
		if err == nil {
			w.mu.Lock()
			w.conn = c
			w.mu.Unlock()
			if w.r.phase.Load() == phaseStop {
				w.closeConn()
				return false
			}
			w.rr.br.Reset(c)
			w.armed = time.Time{}
			return true
		}
		w.noteErr(err)
		if time.Now().Add(backoff).After(giveUp) {
			return false
		}
		select {
		case <-time.After(backoff):
			backoff = min(2*backoff, time.Second)
		case <-w.r.stopped:
			return false
		}
	}
}

// closeConn closes the connection; only the worker itself calls it.
func (w *worker) closeConn() {
	w.mu.Lock()
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
	w.mu.Unlock()
}

// interrupt closes the connection from another goroutine, so that a
// blocked read returns at once; the worker then sees the stopped phase.
func (w *worker) interrupt() {
	w.mu.Lock()
	if w.conn != nil {
		w.conn.Close()
	}
	w.mu.Unlock()
}

func (w *worker) noteErr(err error) {
	if w.st.firstErr == "" {
		w.st.firstErr = err.Error()
	}
}

// fail counts n failed requests.
func (w *worker) fail(n int) {
	w.st.errors += int64(n)
	w.live.errors.Add(int64(n))
}

// nextKey draws key ids until one belongs to this worker's server, so that
// each server sees the key distribution restricted to the keys it owns.
func (w *worker) nextKey() int {
	id := w.stream.Next()
	if owner := w.r.ks.owner; owner != nil {
		for int(owner[id]) != w.server {
			id = w.stream.Next()
		}
	}
	return id
}

// take reserves up to n requests of the measured budget, and returns how
// many it got (n without a budget or outside the measured phase).
func (w *worker) take(ph int32, n int) int {
	if ph != phaseMeasure || w.r.budget == nil {
		return n
	}
	if left := w.r.budget.Add(-int64(n)); left < 0 {
		n += int(left)
	}
	return max(n, 0)
}

// encode fills wbuf and ops with a batch of n requests: the -ratio mix of
// gets, sets and deletes of keys from the worker's stream. at is the
// batch's time on the measured window's clock, for scenario streams.
func (w *worker) encode(n int, at time.Duration) {
	o := w.r.ks.opts
	if w.scen != nil {
		w.scen.AdvanceTo(at)
	}
	gw, sw := uint64(o.getWeight), uint64(o.getWeight+o.setWeight)
	total := sw + uint64(o.delWeight)
	w.wbuf, w.ops = w.wbuf[:0], w.ops[:0]
	for range n {
		id := w.nextKey()
		switch x := w.rng.Uint64() % total; {
		case x < gw:
			var ks, ke int
			w.wbuf, ks, ke = w.r.ks.req.appendGet(w.wbuf, id)
			w.ops = append(w.ops, op{get: true, kstart: int32(ks), kend: int32(ke)})
		case x < sw:
			w.wbuf = w.r.ks.req.appendSet(w.wbuf, id)
			w.ops = append(w.ops, op{})
		default:
			w.wbuf = w.r.ks.req.appendDelete(w.wbuf, id)
			w.ops = append(w.ops, op{del: true})
		}
	}
}

// send runs the batch in wbuf and counts a failure: the requests without a
// reply fail, and the connection is closed, to be redialled.
func (w *worker) send() {
	if done, err := w.roundTrip(); err != nil {
		w.fail(len(w.ops) - done)
		w.noteErr(err)
		w.closeConn()
		if w.r.phase.Load() != phaseStop {
			w.st.reconnects++
		}
	}
}

// loop runs batches until the run stops or the request budget is spent.
func (w *worker) loop() {
	defer w.closeConn()
	phase := w.r.phase.Load()
	for {
		ph := w.r.phase.Load()
		if ph == phaseStop {
			return
		}
		if ph != phase {
			phase = ph
			w.st.reset() // the measured phase starts from zero
		}
		n := w.take(ph, w.r.depth)
		if n == 0 {
			return
		}
		if w.conn == nil && !w.dial() {
			if w.r.phase.Load() == phaseStop {
				return
			}
			w.fail(n) // the server is down: these requests fail
			continue
		}
		var at time.Duration
		if w.scen != nil {
			at = time.Since(w.r.measureAt)
		}
		w.encode(n, at)
		w.send()
	}
}

// loopOpen is loop in an open loop: request k of this connection is due at
// start + k*interval, whatever happened to the earlier ones. When requests
// are due the worker sends up to depth of them as one batch and waits for
// the replies; requests that fall due meanwhile wait for the next batch.
// A request's latency runs from its due time, not from when it was sent, so
// a slow reply delays the requests behind it and they count that delay
// (coordinated omission is measured, not hidden, as in wrk2).
func (w *worker) loopOpen(start time.Time) {
	defer w.closeConn()
	defer w.timer.Stop()
	iv := w.r.interval
	next := start // due time of the next request
	phase := w.r.phase.Load()
	defer func() {
		// Requests that fell due in the window but were never sent.
		if w.r.phase.Load() == phaseStop && phase == phaseMeasure && w.r.budget == nil {
			if late := w.r.stopAt.Sub(next); late > 0 {
				w.st.unsent += int64(late / iv)
			}
		}
	}()
	for {
		ph := w.r.phase.Load()
		if ph == phaseStop {
			return
		}
		if ph != phase {
			phase = ph
			w.st.reset()
		}
		now := time.Now()
		if wait := next.Sub(now); wait > 0 {
			w.timer.Reset(wait)
			select {
			case <-w.timer.C:
			case <-w.r.stopped:
				return
			}
			now = time.Now()
			w.st.lag.record(int64(now.Sub(next)))
			continue // the phase may have changed while asleep
		}
		n := min(w.r.depth, 1+int(now.Sub(next)/iv))
		if n = w.take(ph, n); n == 0 {
			return
		}
		w.due = w.due[:0]
		for i := range n {
			w.due = append(w.due, next.Add(time.Duration(i)*iv))
		}
		next = next.Add(time.Duration(n) * iv)
		if w.conn == nil && !w.dial() {
			if w.r.phase.Load() == phaseStop {
				return
			}
			w.fail(n)
			continue
		}
		w.encode(n, w.due[0].Sub(w.r.measureAt))
		w.send()
	}
}

// roundTrip writes the batch in wbuf and reads a reply for each of ops. It
// returns how many replies it read. A reply's latency runs from the start
// of the write, or in an open loop from the request's due time.
func (w *worker) roundTrip() (int, error) {
	t0 := time.Now()
	if t0.After(w.armed) {
		timeout := w.r.ks.opts.timeout
		if err := w.conn.SetDeadline(t0.Add(timeout)); err != nil {
			return 0, err
		}
		w.armed = t0.Add(timeout / 4)
	}
	if _, err := w.conn.Write(w.wbuf); err != nil {
		return 0, err
	}
	var bc batchCounts
	defer bc.publish(&w.live)
	open := len(w.due) == len(w.ops)
	for i, op := range w.ops {
		var kind replyKind
		var err error
		if op.get {
			kind, err = w.rr.readGet(w.wbuf[op.kstart:op.kend])
		} else {
			kind, err = w.rr.readStore()
		}
		if err != nil {
			return i, err
		}
		from := t0
		if open {
			from = w.due[i]
		}
		w.tally(op, kind, time.Since(from), &bc)
	}
	return len(w.ops), nil
}

// batchCounts are a batch's counts for the worker's running totals, which
// it adds once per batch.
type batchCounts struct{ ops, errs, gets, hits int64 }

func (b *batchCounts) publish(l *liveCounts) {
	l.ops.Add(b.ops)
	l.errors.Add(b.errs)
	l.gets.Add(b.gets)
	l.hits.Add(b.hits)
}

// tally counts one reply of latency lat.
func (w *worker) tally(op op, kind replyKind, lat time.Duration, b *batchCounts) {
	st := &w.st
	st.hist.record(int64(lat))
	switch kind {
	case replyHit:
		st.gets++
		st.hits++
		b.gets++
		b.hits++
	case replyMiss:
		st.gets++
		st.misses++
		b.gets++
	case replyError:
		st.errors++
		b.errs++
		if st.firstErr == "" {
			st.firstErr = "error reply to a request"
		}
		return
	default:
		if op.del {
			st.deletes++
		} else {
			st.sets++
		}
	}
	st.ops++
	b.ops++
}

// runLoad dials opts.conns connections to every server, runs the warmup and
// then the measured phase at the given pipeline depth, and returns what it
// measured.
func runLoad(ctx context.Context, ks *keySpace, depth int) (*result, error) {
	return runLoadHooks(ctx, ks, depth, runHooks{})
}

// runLoadHooks is runLoad with hooks.
func runLoadHooks(ctx context.Context, ks *keySpace, depth int, hooks runHooks) (*result, error) {
	o := ks.opts
	r := &run{ks: ks, depth: depth, stopped: make(chan struct{}), hooks: hooks}
	if o.requests > 0 {
		r.budget = new(atomic.Int64)
		r.budget.Store(o.requests)
	}
	if o.warmup <= 0 {
		r.phase.Store(phaseMeasure)
	}
	if err := r.dial(); err != nil {
		return nil, err
	}
	start := time.Now()
	r.measureAt = start.Add(o.warmup)
	if o.warmup <= 0 {
		r.begin(ctx) // before the first request
	}
	var wg sync.WaitGroup
	if o.rate > 0 {
		r.interval = time.Duration(float64(len(r.workers)) / o.rate * float64(time.Second))
		if r.interval <= 0 {
			r.interval = 1
		}
		for i, w := range r.workers {
			// Spread the connections' schedules over one interval, so that
			// they do not all fire at once.
			first := start.Add(r.interval * time.Duration(i) / time.Duration(len(r.workers)))
			w.timer = time.NewTimer(time.Hour)
			w.timer.Stop()
			w.due = make([]time.Time, 0, depth)
			wg.Go(func() { w.loopOpen(first) })
		}
	} else if o.engine == engineEpoll {
		wg.Go(r.runEpoll)
	} else {
		for _, w := range r.workers {
			wg.Go(w.loop)
		}
	}
	elapsed, err := r.drive(ctx, wg.Wait)
	if err != nil {
		return nil, err
	}
	return r.result(elapsed), nil
}

// dial connects every worker before the run starts, so that connection
// setup is not measured.
func (r *run) dial() error {
	o := r.ks.opts
	for s, addr := range r.ks.servers {
		for c := range o.conns {
			i := uint64(len(r.workers))
			w := &worker{r: r, server: s, seed: o.seed*1_000_003 + i}
			w.stream = r.ks.stream(w.seed)
			w.scen, _ = w.stream.(*workload.Scenario)
			w.rng.Seed(o.seed, i)
			w.wbuf = make([]byte, 0, r.depth*r.ks.req.maxRequest())
			w.ops = make([]op, 0, r.depth)
			conn, err := net.DialTimeout("tcp", addr, o.timeout)
			if err != nil {
				for _, w := range r.workers {
					w.closeConn()
				}
				return fmt.Errorf("connection %d to %s: %w", c, addr, err)
			}
			w.conn = conn
			w.rr.br = bufio.NewReaderSize(conn, 64<<10)
			r.workers = append(r.workers, w)
		}
	}
	return nil
}

// drive moves the running workers through warmup and the measured phase,
// waits for them with wait, and returns the measured time. If ctx ends first
// it stops them, closes their connections and returns its cause. During the
// measured window it samples the workers' counts every second, reads the
// process's CPU time at both ends, and reads the backends' stats.
func (r *run) drive(ctx context.Context, wait func()) (time.Duration, error) {
	o := r.ks.opts
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	abort := func() (time.Duration, error) {
		r.aborted.Store(true)
		r.stop()
		for _, w := range r.workers {
			w.interrupt() // unblocks reads now rather than at the deadline
		}
		<-done
		return 0, context.Cause(ctx)
	}
	if o.warmup > 0 {
		if d := time.Until(r.measureAt); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return abort()
			}
		}
		r.begin(ctx)
		r.phase.Store(phaseMeasure)
	}
	m := &r.measured
	start := m.start
	if r.hooks.atMeasure != nil {
		go r.hooks.atMeasure(start)
	}
	smp := m.smp
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := done // -requests: the workers stop when the budget is spent
	if r.budget == nil {
		end = make(chan struct{})
		t := time.AfterFunc(o.duration, func() { close(end) })
		defer t.Stop()
	}
wait:
	for {
		select {
		case <-end:
			break wait
		case now := <-tick.C:
			smp.sample(now, false)
		case <-ctx.Done():
			return abort()
		}
	}
	elapsed := time.Since(start)
	r.stop()
	select {
	case <-done:
	case <-ctx.Done():
		return abort()
	}
	r.cpu = cpuSeconds() - m.cpu0
	smp.sample(time.Now(), true)
	r.series = smp.out
	if before := m.before; before != nil {
		after, err := backendStats(ctx, r.hooks.backends, o.timeout)
		if err != nil && r.backErr == "" {
			r.backErr = err.Error()
		}
		r.nodes = backendLoads(r.hooks.backends, before, after)
	}
	return elapsed, nil
}

// measureStart is what begin reads at the start of the measured window.
type measureStart struct {
	start  time.Time
	cpu0   float64
	before []map[string]string // the backends' stats
	smp    *sampler
}

// begin reads the counters that the measured window is the growth of: the
// backends' stats, this process's CPU time, the workers' running totals.
func (r *run) begin(ctx context.Context) {
	m := &r.measured
	if len(r.hooks.backends) > 0 {
		var err error
		if m.before, err = backendStats(ctx, r.hooks.backends, r.ks.opts.timeout); err != nil {
			r.backErr = err.Error()
		}
	}
	m.cpu0 = cpuSeconds()
	m.start = time.Now()
	m.smp = r.newSampler(m.start)
}

// second is one sample of the measured window: what the workers counted
// between T-Seconds and T (seconds since the window started).
type second struct {
	T         float64 `json:"t"`
	Seconds   float64 `json:"seconds"`
	Ops       int64   `json:"ops"`
	Errors    int64   `json:"errors"`
	Gets      int64   `json:"gets"`
	Hits      int64   `json:"hits"`
	OpsPerSec float64 `json:"ops_per_sec"`
}

// sampler turns the workers' running totals into per-second samples.
type sampler struct {
	r          *run
	start, at  time.Time
	ops, errs  int64
	gets, hits int64
	out        []second
}

func (r *run) newSampler(start time.Time) *sampler {
	s := &sampler{r: r, start: start, at: start}
	s.ops, s.errs, s.gets, s.hits = r.totals()
	return s
}

// totals sums the workers' running totals.
func (r *run) totals() (ops, errs, gets, hits int64) {
	for _, w := range r.workers {
		ops += w.live.ops.Load()
		errs += w.live.errors.Load()
		gets += w.live.gets.Load()
		hits += w.live.hits.Load()
	}
	return
}

// sample adds the counts since the previous sample. The last sample of a
// run (last) is folded into the one before it if it is shorter than a
// quarter of a second, so that a run of whole seconds does not end in a
// sliver.
func (s *sampler) sample(now time.Time, last bool) {
	secs := now.Sub(s.at).Seconds()
	if secs <= 0 {
		return
	}
	ops, errs, gets, hits := s.r.totals()
	sec := second{
		T: now.Sub(s.start).Seconds(), Seconds: secs, Ops: ops - s.ops, Errors: errs - s.errs,
		Gets: gets - s.gets, Hits: hits - s.hits,
	}
	s.at, s.ops, s.errs, s.gets, s.hits = now, ops, errs, gets, hits
	if last && secs < 0.25 && len(s.out) > 0 {
		p := &s.out[len(s.out)-1]
		p.T, p.Seconds = sec.T, p.Seconds+secs
		p.Ops, p.Errors, p.Gets, p.Hits = p.Ops+sec.Ops, p.Errors+sec.Errors, p.Gets+sec.Gets, p.Hits+sec.Hits
		p.OpsPerSec = float64(p.Ops) / p.Seconds
		return
	}
	sec.OpsPerSec = float64(sec.Ops) / secs
	s.out = append(s.out, sec)
	if w := s.r.hooks.progress; w != nil {
		hit := ""
		if sec.Gets > 0 {
			hit = fmt.Sprintf("  hit %.3f", float64(sec.Hits)/float64(sec.Gets))
		}
		fmt.Fprintf(w, "cachebench: %5.1fs %9s ops/s  errors %d%s\n", sec.T, fmtRate(sec.OpsPerSec), sec.Errors, hit)
	}
}

// backendStats reads the "stats" of every address.
func backendStats(ctx context.Context, addrs []string, timeout time.Duration) ([]map[string]string, error) {
	out := make([]map[string]string, len(addrs))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			st, err := fetchStats(ctx, a, "", timeout)
			if err != nil {
				errs[i] = fmt.Errorf("stats of %s: %w", a, err)
				return
			}
			out[i] = statMap(st)
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// backendLoads is the requests each backend served between two reads of
// their stats. A backend whose stats are missing at either end (it died)
// has Requests 0 and Error set.
func backendLoads(addrs []string, before, after []map[string]string) []nodeLoad {
	var out []nodeLoad
	var total uint64
	for i, a := range addrs {
		n := nodeLoad{Name: fmt.Sprintf("node%d", i+1), Addr: a}
		var err error
		if before[i] == nil || after[i] == nil {
			err = errors.New("no stats")
		} else {
			var b, c requestCounts
			if b, err = nodeRequests(before[i]); err == nil {
				if c, err = nodeRequests(after[i]); err == nil {
					var d requestCounts
					if d, err = c.sub(b); err == nil {
						n.Requests, n.Gets, n.Sets = d.requests, d.gets, d.sets
					}
				}
			}
		}
		if err != nil {
			n.Error = err.Error()
		}
		total += n.Requests
		out = append(out, n)
	}
	for i := range out {
		out[i].Share = ratio(float64(out[i].Requests), float64(total))
	}
	return out
}

// prefill sets every key once, on up to opts.conns connections per server,
// in pipelined batches, so that the gets of the following runs hit.
func prefill(ctx context.Context, ks *keySpace) (stored int64, err error) {
	o := ks.opts
	const batch = 100
	conns := min(o.conns, 16)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // guards firstErr
		firstErr error
		total    atomic.Int64
	)
	for s, addr := range ks.servers {
		for c := range conns {
			wg.Go(func() {
				n, err := prefillConn(ctx, ks, addr, s, c, conns, batch)
				total.Add(n)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("prefill %s: %w", addr, err)
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	return total.Load(), firstErr
}

// prefillConn sets the keys of server s whose rank among that server's keys
// is c modulo conns.
func prefillConn(ctx context.Context, ks *keySpace, addr string, s, c, conns, batch int) (int64, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	rr := replyReader{br: bufio.NewReaderSize(conn, 64<<10)}
	var (
		buf    []byte
		stored int64
		k      int // rank of the key among server s's keys
		queued int
	)
	flush := func() error {
		if queued == 0 {
			return nil
		}
		if err := conn.SetDeadline(time.Now().Add(ks.opts.timeout)); err != nil {
			return err
		}
		if _, err := conn.Write(buf); err != nil {
			return err
		}
		for range queued {
			kind, err := rr.readStore()
			if err != nil {
				return err
			}
			if kind != replyStored {
				return fmt.Errorf("set replied %v", kind)
			}
			stored++
		}
		buf, queued = buf[:0], 0
		return nil
	}
	for id := range ks.opts.keys {
		if ks.owner != nil && int(ks.owner[id]) != s {
			continue
		}
		k++
		if (k-1)%conns != c {
			continue
		}
		buf = ks.req.appendSet(buf, id)
		if queued++; queued == batch {
			if err := flush(); err != nil {
				return stored, errors.Join(err, context.Cause(ctx))
			}
		}
	}
	if err := flush(); err != nil {
		return stored, errors.Join(err, context.Cause(ctx))
	}
	return stored, nil
}
