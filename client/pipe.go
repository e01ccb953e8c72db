package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotcache/hotcache/internal/connpool"
)

// The transport: each server has Config.ConnsPerServer pipelined
// connections, taken from the pool (which dials, bounds and backs off). A
// call encodes its request into a connection's write buffer and queues
// itself for the reply; whichever caller finds no write in progress writes
// everything queued so far in one syscall, so concurrent callers share
// writes. Replies come back in order (memcached and our nodes answer
// pipelined requests in order): the caller that found the connection idle
// reads its own reply, as a one-connection-per-call client would, and
// replies queued behind it are read by a background goroutine that lives
// while any are awaited. Calls about one key always take the same
// connection, so they are applied in the order they were made.
//
// Bounds: at most Config.MaxInFlightPerServer requests are queued or in
// flight per server (a call past it waits under its ctx); a reply must
// arrive within Timeout/2 to Timeout of the previous one (or of its request,
// on an idle connection), or the connection is closed and every call on it
// fails; a caller whose ctx ends stops waiting at once, unless its reply has
// begun to arrive (its reply, when it comes, is read and dropped).

// opKind says how the reader parses a reply.
type opKind uint8

const (
	opGet      opKind = iota // one key: a value or nothing, then END
	opGetMulti               // any number of values, then END
	opLine                   // a one-line reply
)

// An op is one queued request.
type op struct {
	kind  opKind
	key   string // opGet: the key asked for
	item  *Item  // opGet: the value, nil for a miss
	items []*Item
	line  []byte // opLine: the reply line with its "\r\n"
	// check, for opLine, tells the replies that make sense from one that
	// shows the stream out of step (the connection is then closed).
	check func(line []byte) bool
	err   error // an error reply (*ServerError), or why the connection broke
	done  chan struct{}
}

var opPool = sync.Pool{New: func() any { return &op{done: make(chan struct{}, 1)} }}

func getOp(kind opKind) *op {
	o := opPool.Get().(*op)
	o.kind = kind
	return o
}

// putOp recycles o; only a caller that received its reply may.
func putOp(o *op) {
	clear(o.items)
	*o = op{done: o.done, line: o.line[:0], items: o.items[:0]}
	opPool.Put(o)
}

// A pipe is one of a server's connection slots; it holds at most one live
// pipeConn and dials a new one when the last broke.
type pipe struct {
	load       atomic.Int32 // calls using the pipe now; see pick
	mu         sync.Mutex   // guards cur and connecting
	cur        *pipeConn
	connecting *dialing // the dial in progress, if any
}

// A dialing is one dial of a pipe's connection, which every call that
// needs the connection waits for (each under its own ctx).
type dialing struct {
	done chan struct{}
	err  error // set before done is closed
}

// A pipeConn is one pipelined connection.
//
// Reading follows a role: the caller that queues a request on an idle
// connection reads its own reply itself (no goroutine handoff, which is what
// one goroutine at a time wants); requests queued while someone reads are
// read by a background goroutine that the reader starts on its way out and
// that exits when nothing is left to read. Writing is combined the same
// way: whoever finds no write in progress writes everything queued.
type pipeConn struct {
	c  *Client
	s  *server
	p  *pipe
	cn *connpool.Conn

	mu       sync.Mutex // guards the fields below, and every deadline change
	buf      []byte     // encoded requests not yet written
	spare    []byte
	flushing bool // a caller is writing
	reading  bool // someone holds the reader role
	// lead numbers the callers that took the reader role; leading is set
	// while the current one may still be interrupted by its ctx. A number,
	// not the op: ops are recycled, and a late ctx callback must never
	// interrupt a later caller's read.
	lead    uint64
	leading bool
	// interrupted is set while a reading caller's ctx has moved the socket
	// deadline into the past to stop its wait; no write starts meanwhile and
	// nobody re-arms the deadline. wantInterrupt is the lead whose stop was
	// asked for during a write, done when the write ends (0: none).
	interrupted   bool
	wantInterrupt uint64
	cond          sync.Cond // signalled when interrupted is cleared
	pending       []*op
	head          int       // pending[head:] await replies, in order
	deadline      time.Time // the socket deadline armed, zero for none
	idleAt        time.Time // when the last reply was read with none left waiting
	err           error     // set once the connection broke
	released      bool      // the socket went back to the pool
}

// idleProbeAfter is how long a connection may sit unused before the next
// request first checks, without waiting, that the server has not closed it
// (a restarted node): a zero-timeout read that must time out.
const idleProbeAfter = time.Second

// errStale is a connection found closed by its server before anything was
// sent on it; the request goes out on a new one.
var errStale = errors.New("connection closed by the server while idle")

// conn returns p's live connection, dialing one (through the pool, with its
// backoff) if there is none. The dial runs on its own goroutine, bounded by
// DialTimeout, and every caller waits for it under its own ctx: a caller's
// short deadline neither aborts the dial for the others nor counts against
// the server.
func (c *Client) conn(ctx context.Context, s *server, p *pipe) (*pipeConn, error) {
	for {
		p.mu.Lock()
		if pc := p.cur; pc != nil {
			p.mu.Unlock()
			return pc, nil
		}
		d := p.connecting
		if d == nil {
			d = &dialing{done: make(chan struct{})}
			if !c.spawn(func() { c.dial(s, p, d) }) {
				p.mu.Unlock()
				return nil, ErrClosed
			}
			p.connecting = d
		}
		p.mu.Unlock()
		select {
		case <-d.done:
			if d.err != nil {
				return nil, d.err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// dial opens p's connection for the calls waiting on d.
func (c *Client) dial(s *server, p *pipe, d *dialing) {
	cn, err := c.pool.Get(c.ctx, s.addr)
	var pc *pipeConn
	if err == nil {
		// A zero idleAt makes the first send probe it: the pool may hand
		// back a connection that sat idle long enough for the server to
		// close it.
		pc = &pipeConn{c: c, s: s, p: p, cn: cn}
		pc.cond.L = &pc.mu
	} else if errors.Is(err, connpool.ErrClosed) || c.ctx.Err() != nil {
		err = ErrClosed
	} else {
		c.account(c.ctx, s, err)
	}
	p.mu.Lock()
	p.cur, p.connecting, d.err = pc, nil, err
	p.mu.Unlock()
	close(d.done)
}

// do sends one request to s, encoded by enc, and waits for its reply. The
// returned op belongs to the caller, who passes it to putOp when done with
// its results. An error means the server could not be reached or the ctx
// ended; the op is then gone.
func (c *Client) do(ctx context.Context, s *server, o *op, enc func([]byte) []byte) (*op, error) {
	return c.doOn(ctx, s, s.pick(o.key), o, enc)
}

func (c *Client) doOn(ctx context.Context, s *server, p *pipe, o *op, enc func([]byte) []byte) (*op, error) {
	defer p.load.Add(-1)
	if s.down.Load() && !s.allow(c.cfg.Now()) {
		putOp(o)
		return nil, ErrServerDown
	}
	select { // the bound on requests in flight
	case s.sem <- struct{}{}:
	default:
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			putOp(o)
			return nil, fmt.Errorf("waiting for one of %d requests in flight: %w", cap(s.sem), ctx.Err())
		}
	}
	if c.closed.Load() {
		<-s.sem
		putOp(o)
		return nil, ErrClosed
	}
	var pc *pipeConn
	var lead bool
	for attempt := 0; ; attempt++ {
		var err error
		if pc, err = c.conn(ctx, s, p); err != nil {
			<-s.sem
			putOp(o)
			return nil, err
		}
		var sent bool
		if lead, sent, err = pc.send(o, enc); sent {
			break
		}
		// Nothing was sent: the connection was found stale, or it broke
		// while idle (the server closed it, e.g. its idle timeout). Trying
		// again is safe; the pool may hold more stale connections, then a
		// fresh dial.
		pc.detach()
		if attempt > 2 {
			<-s.sem
			putOp(o)
			return nil, err
		}
	}
	if lead {
		if err := pc.readOwn(ctx, o); err != nil {
			return nil, err // o is gone: delivered to nobody, or left to the background reader
		}
	} else {
		select {
		case <-o.done:
		case <-ctx.Done():
			return nil, ctx.Err() // the reader drops the reply; o is not reused
		}
	}
	if o.err != nil && !isServerError(o.err) {
		err := o.err
		putOp(o)
		return nil, err
	}
	return o, nil
}

// pick returns the pipe for a call about key and counts the call on it.
// Calls about one key always use the same connection, so the server applies
// them in the order they were made, even one abandoned by its ctx (it is
// still sent) and a later call about the same key. Calls about no key in
// particular take the least busy pipe, the first of equals.
func (s *server) pick(key string) *pipe {
	if key != "" {
		h := uint32(2166136261) // FNV-1a
		for i := 0; i < len(key); i++ {
			h = (h ^ uint32(key[i])) * 16777619
		}
		p := &s.pipes[h%uint32(len(s.pipes))]
		p.load.Add(1)
		return p
	}
	best := &s.pipes[0]
	n := best.load.Load()
	for i := 1; i < len(s.pipes) && n > 0; i++ {
		if m := s.pipes[i].load.Load(); m < n {
			best, n = &s.pipes[i], m
		}
	}
	best.load.Add(1)
	return best
}

// send queues o and writes the queue unless another caller is writing. lead
// reports that the caller holds the reader role and must read o's reply
// itself (readOwn). sent is false, with the reason, if the connection was
// already broken or found closed by the server: nothing was sent.
func (pc *pipeConn) send(o *op, enc func([]byte) []byte) (lead, sent bool, err error) {
	pc.mu.Lock()
	if pc.err != nil {
		err = pc.err
		pc.mu.Unlock()
		return false, false, err
	}
	now := time.Now()
	if !pc.reading {
		if !pc.flushing && now.Sub(pc.idleAt) > idleProbeAfter && !pc.probeLocked() {
			pc.breakLocked(errStale)
			release := pc.releasableLocked()
			pc.mu.Unlock()
			pc.release(release)
			return false, false, errStale
		}
		pc.reading, pc.leading, lead = true, true, true
		pc.lead++
	}
	pc.buf = enc(pc.buf)
	pc.pending = append(pc.pending, o)
	pc.armLocked(now)
	if pc.flushing {
		pc.mu.Unlock()
		return lead, true, nil
	}
	pc.flushing = true
	for pc.interrupted && pc.err == nil {
		pc.cond.Wait() // the reader it stopped is about to clear it
	}
	for len(pc.buf) > 0 && pc.err == nil {
		out := pc.buf
		pc.buf = pc.spare[:0]
		pc.mu.Unlock()
		_, err := pc.cn.W.Write(out)
		if err == nil {
			err = pc.cn.W.Flush()
		}
		pc.mu.Lock()
		if cap(out) <= 64<<10 {
			pc.spare = out[:0]
		} else {
			pc.spare = nil // a large value passed: give the memory back
		}
		if err != nil {
			pc.breakLocked(err)
		}
	}
	pc.flushing = false
	if pc.wantInterrupt != 0 && pc.leading && pc.wantInterrupt == pc.lead {
		pc.interruptLocked()
	}
	pc.wantInterrupt = 0
	release := pc.releasableLocked()
	pc.mu.Unlock()
	pc.release(release)
	return lead, true, nil
}

// probeLocked checks an idle connection without waiting: a pending EOF,
// error or unsolicited byte means the server closed it (e.g. its idle
// timeout) or is out of step. (A read with a deadline already in the past
// cannot tell: Go fails it before it looks at the socket.) pc.mu must be
// held and nobody reading or writing.
func (pc *pipeConn) probeLocked() bool {
	pc.deadline = time.Time{}
	return !pc.cn.PeerClosed()
}

// armLocked makes sure the socket deadline leaves the oldest waiting reply
// at least Timeout/2 (and at most Timeout) from now. Re-arming only when
// half the timeout is used keeps the cost off most requests. pc.mu must be
// held.
func (pc *pipeConn) armLocked(now time.Time) {
	if pc.err != nil || pc.interrupted || pc.head == len(pc.pending) {
		return
	}
	t := pc.c.cfg.Timeout
	if !pc.deadline.IsZero() && pc.deadline.Sub(now) >= t/2 {
		return
	}
	pc.deadline = now.Add(t)
	pc.cn.SetDeadline(context.Background(), t)
}

// interruptLocked moves the socket deadline into the past, so that the
// reading caller's wait returns at once. Only while nothing is being
// written: a write would fail too. pc.mu must be held.
func (pc *pipeConn) interruptLocked() {
	pc.interrupted = true
	pc.cn.SetDeadline(context.Background(), time.Nanosecond)
}

// breakLocked marks the connection broken and wakes whoever is blocked on
// it; the reader fails what is pending. pc.mu must be held.
func (pc *pipeConn) breakLocked(err error) {
	if pc.err == nil {
		pc.err = err
		pc.cn.SetDeadline(context.Background(), time.Nanosecond)
		pc.cond.Broadcast()
	}
}

// releasableLocked reports whether the caller must give the socket back:
// the connection is broken and nobody reads or writes it any more. pc.mu
// must be held.
func (pc *pipeConn) releasableLocked() bool {
	if pc.err == nil || pc.flushing || pc.reading || pc.released {
		return false
	}
	pc.released = true
	return true
}

// release gives a broken connection's socket back to the pool (which closes
// it) when releasableLocked said so, and stops new calls from using it.
func (pc *pipeConn) release(ok bool) {
	if ok {
		pc.detach()
		pc.c.pool.Put(pc.cn, pc.err)
	}
}

// detach makes the pipe dial a new connection next time.
func (pc *pipeConn) detach() {
	pc.p.mu.Lock()
	if pc.p.cur == pc {
		pc.p.cur = nil
	}
	pc.p.mu.Unlock()
}

// readOwn is the reader role of the caller whose request o went out on an
// idle connection: o is the oldest waiting request. While no byte of the
// reply has arrived, ctx ending hands the role to a background reader and
// returns; once the reply has begun it is read to its end (within Timeout).
func (pc *pipeConn) readOwn(ctx context.Context, o *op) error {
	if ctx.Done() != nil {
		pc.mu.Lock()
		lead := pc.lead // ours: nobody else takes the role before we give it up
		pc.mu.Unlock()
		stop := context.AfterFunc(ctx, func() {
			pc.mu.Lock()
			switch {
			case !pc.leading || pc.lead != lead || pc.err != nil:
			case pc.flushing:
				pc.wantInterrupt = lead
			default:
				pc.interruptLocked()
			}
			pc.mu.Unlock()
		})
		defer stop()
	}
	r := pc.cn.R
	_, err := r.Peek(1)
	pc.mu.Lock()
	pc.leading, pc.wantInterrupt = false, 0
	if pc.interrupted {
		pc.interrupted, pc.deadline = false, time.Time{} // armLocked below re-arms it
		pc.cond.Broadcast()
	}
	if err != nil && ctx.Err() != nil && pc.err == nil && isTimeout(err) {
		// Nothing of the reply was read: let a background reader have it.
		pc.armLocked(time.Now())
		if pc.c.spawn(pc.readLoop) {
			pc.mu.Unlock()
			return ctx.Err()
		}
		err = ErrClosed
	}
	pc.armLocked(time.Now())
	pc.mu.Unlock()
	if err == nil {
		err = readReply(r, pc.s.addr, o)
	}
	if err != nil {
		pc.fail(err, o)
		<-pc.s.sem
		putOp(o)
		return err
	}
	pc.popped(o)
	<-pc.s.sem
	return nil
}

// popped removes the reply just read from the queue and passes the reader
// role on: to a background reader if more replies are awaited, else it
// returns it.
func (pc *pipeConn) popped(o *op) {
	pc.mu.Lock()
	pc.pending[pc.head] = nil
	pc.head++
	more := pc.head < len(pc.pending)
	if !more {
		pc.pending, pc.head = pc.pending[:0], 0
		pc.reading = false
		pc.idleAt = time.Now()
	}
	pc.mu.Unlock()
	pc.s.succeeded()
	if more && !pc.c.spawn(pc.readLoop) {
		pc.fail(ErrClosed, nil)
	}
}

// readLoop is the background reader: it reads replies in order and hands
// each to its caller until none is awaited.
func (pc *pipeConn) readLoop() {
	pc.mu.Lock()
	pc.deadline = time.Time{} // re-arm it fresh for the replies left
	pc.armLocked(time.Now())
	pc.mu.Unlock()
	r := pc.cn.R
	for {
		pc.mu.Lock()
		o := pc.pending[pc.head]
		pc.mu.Unlock()
		if err := readReply(r, pc.s.addr, o); err != nil {
			pc.fail(err, nil)
			return
		}
		pc.mu.Lock()
		pc.pending[pc.head] = nil
		pc.head++
		more := pc.head < len(pc.pending)
		if more {
			pc.armLocked(time.Now())
		} else {
			pc.pending, pc.head = pc.pending[:0], 0
			pc.reading = false
			pc.idleAt = time.Now()
		}
		pc.mu.Unlock()
		pc.s.succeeded()
		<-pc.s.sem
		o.done <- struct{}{}
		if !more {
			return
		}
	}
}

// fail ends the connection: every waiting call but skip (the reader's own)
// gets err, the socket goes back to the pool to be closed, and the pipe will
// dial anew.
func (pc *pipeConn) fail(err error, skip *op) {
	pc.mu.Lock()
	if pc.err == nil {
		pc.err = err
	} else {
		err = pc.err
	}
	waiting := pc.pending[pc.head:]
	pc.pending, pc.head = nil, 0
	pc.reading = false
	release := pc.releasableLocked()
	if !release && pc.flushing {
		pc.cn.SetDeadline(context.Background(), time.Nanosecond) // cut the write short; the writer releases
	}
	pc.cond.Broadcast()
	pc.mu.Unlock()
	pc.detach()
	pc.release(release)
	if pc.c.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		pc.s.failed(pc.c.cfg.Now(), &pc.c.cfg)
	}
	for _, o := range waiting {
		if o == skip {
			continue
		}
		o.err = err
		<-pc.s.sem
		o.done <- struct{}{}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readReply reads o's reply. Error replies are complete replies: they go
// into o.err and the connection carries on. The error returned means the
// stream is broken.
func readReply(r *bufio.Reader, addr string, o *op) error {
	switch o.kind {
	case opGet:
		it, err := readOne(r, addr, o.key)
		if isServerError(err) {
			o.err, err = err, nil
		}
		o.item = it
		return err
	case opGetMulti:
		err := readItems(r, addr, func(it *Item) { o.items = append(o.items, it) })
		if isServerError(err) {
			o.err, err = err, nil
		}
		return err
	}
	line, err := readLine(r)
	if err != nil {
		return err
	}
	if errorReply(addr, line) == nil && !o.check(line) {
		return fmt.Errorf("%w: unexpected reply %q from %s", errMalformedReply, line, addr)
	}
	o.line = append(o.line[:0], line...)
	return nil
}

// spawn runs f on a goroutine that Close waits for, unless Close has begun.
func (c *Client) spawn(f func()) bool {
	c.goMu.Lock()
	defer c.goMu.Unlock()
	if c.stopped {
		return false
	}
	c.wg.Go(f)
	return true
}
