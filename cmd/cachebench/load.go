package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
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
	ks := &keySpace{opts: o, servers: servers, zipf: zipf, req: newRequest(o.valueSize)}
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
	if o.dist != "zipf" {
		return nil
	}
	return workload.NewZipfTable(o.keys, o.s)
}

// stream returns a new key stream; each connection has its own.
func (ks *keySpace) stream(seed uint64) workload.Stream {
	if ks.zipf != nil {
		return ks.zipf.NewStream(seed)
	}
	return workload.NewUniform(ks.opts.keys, seed)
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
	workers  []*worker
}

func (r *run) stop() {
	r.stopOnce.Do(func() {
		r.phase.Store(phaseStop)
		close(r.stopped)
	})
}

// op is one request of a batch: its kind and where its key is in wbuf.
type op struct {
	get    bool
	kstart int32
	kend   int32
}

// connStats are counted by one worker and summed after the run.
type connStats struct {
	ops        int64 // requests answered without error
	gets       int64
	sets       int64
	hits       int64
	misses     int64
	errors     int64 // requests that failed: error reply, I/O or protocol error
	reconnects int64
	firstErr   string
	hist       histogram // latency of answered requests, in ns
}

func (s *connStats) reset() { *s = connStats{} }

// worker drives one connection: build a batch, write it, read every reply.
type worker struct {
	r      *run
	server int
	seed   uint64
	stream workload.Stream
	rng    rand.PCG
	mu     sync.Mutex // guards conn against close from run.abort; the worker reads it unlocked
	conn   net.Conn
	rr     replyReader
	wbuf   []byte
	ops    []op
	armed  time.Time // when the deadline was last pushed out
	st     connStats
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

// loop runs batches until the run stops or the request budget is spent.
func (w *worker) loop() {
	defer w.closeConn()
	o := w.r.ks.opts
	total := uint64(o.getWeight + o.setWeight)
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
		n := w.r.depth
		if ph == phaseMeasure && w.r.budget != nil {
			if left := w.r.budget.Add(-int64(n)); left < 0 {
				n += int(left)
				if n <= 0 {
					return
				}
			}
		}
		if w.conn == nil && !w.dial() {
			if w.r.phase.Load() == phaseStop {
				return
			}
			w.st.errors += int64(n) // the server is down: these requests fail
			continue
		}
		w.wbuf, w.ops = w.wbuf[:0], w.ops[:0]
		for range n {
			id := w.nextKey()
			if w.rng.Uint64()%total < uint64(o.getWeight) {
				var ks, ke int
				w.wbuf, ks, ke = w.r.ks.req.appendGet(w.wbuf, id)
				w.ops = append(w.ops, op{get: true, kstart: int32(ks), kend: int32(ke)})
			} else {
				w.wbuf = w.r.ks.req.appendSet(w.wbuf, id)
				w.ops = append(w.ops, op{})
			}
		}
		if done, err := w.roundTrip(); err != nil {
			w.st.errors += int64(len(w.ops) - done)
			w.noteErr(err)
			w.closeConn()
			if w.r.phase.Load() != phaseStop {
				w.st.reconnects++
			}
		}
	}
}

// roundTrip writes the batch in wbuf and reads a reply for each of ops. It
// returns how many replies it read.
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
	st := &w.st
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
		st.hist.record(int64(time.Since(t0)))
		switch kind {
		case replyHit:
			st.gets++
			st.hits++
		case replyMiss:
			st.gets++
			st.misses++
		case replyError:
			st.errors++
			if st.firstErr == "" {
				st.firstErr = "error reply to a request"
			}
			continue
		default:
			st.sets++
		}
		st.ops++
	}
	return len(w.ops), nil
}

// runLoad dials opts.conns connections to every server, runs the warmup and
// then the measured phase at the given pipeline depth, and returns what it
// measured.
func runLoad(ctx context.Context, ks *keySpace, depth int) (*result, error) {
	r := &run{ks: ks, depth: depth, stopped: make(chan struct{})}
	if ks.opts.requests > 0 {
		r.budget = new(atomic.Int64)
		r.budget.Store(ks.opts.requests)
	}
	if ks.opts.warmup <= 0 {
		r.phase.Store(phaseMeasure)
	}
	if err := r.dial(); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(w.loop)
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
			w.rng.Seed(o.seed, i)
			w.wbuf = make([]byte, 0, r.depth*(64+len(r.ks.req.setTail)))
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
// it stops them, closes their connections and returns its cause.
func (r *run) drive(ctx context.Context, wait func()) (time.Duration, error) {
	o := r.ks.opts
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	abort := func() (time.Duration, error) {
		r.stop()
		for _, w := range r.workers {
			w.interrupt() // unblocks reads now rather than at the deadline
		}
		<-done
		return 0, context.Cause(ctx)
	}
	if o.warmup > 0 {
		select {
		case <-time.After(o.warmup):
		case <-ctx.Done():
			return abort()
		}
	}
	start := time.Now()
	r.phase.Store(phaseMeasure)
	end := done // -requests: the workers stop when the budget is spent
	if r.budget == nil {
		end = make(chan struct{})
		time.AfterFunc(o.duration, func() { close(end) })
	}
	select {
	case <-end:
	case <-ctx.Done():
		return abort()
	}
	elapsed := time.Since(start)
	r.stop()
	select {
	case <-done:
		return elapsed, nil
	case <-ctx.Done():
		return abort()
	}
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
