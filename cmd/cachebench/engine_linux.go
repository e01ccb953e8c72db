package main

// The epoll engine (-engine epoll): a closed loop driven the way memaslap
// and memcached drive their sockets. One OS thread per CPU owns a share of
// the connections and waits for all of them with one epoll_wait; it reads a
// socket only when epoll says it has data and parses the replies from a
// buffer (parseGet, parseStore), so a request costs one write and about one
// read, where the goroutine engine pays a read that finds nothing, a park
// and a wake-up through the Go scheduler as well.

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

const epollAvailable = true

// econn is one connection of the epoll engine.
type econn struct {
	w     *worker
	idx   int32
	fd    int // -1 while disconnected
	rbuf  []byte
	roff  int // parsed up to here
	rlen  int // read up to here
	next  int // index in w.ops of the next reply
	woff  int // bytes of w.wbuf written
	t0    time.Time
	busy  bool // a batch is in flight
	out   bool // EPOLLOUT is on: the socket was full
	done  bool // no more batches: budget spent or run stopped
	phase int32
	retry time.Time // when to redial, while disconnected
	wait  time.Duration
}

// runEpoll drives r's workers with epoll loops, one per P, and returns when
// all are done.
func (r *run) runEpoll() {
	loops := min(runtime.GOMAXPROCS(0), len(r.workers))
	// Each loop holds its P while it waits in epoll_wait (epollWait), so
	// the scheduler gets one more P per loop for everything else.
	extraPs.add(loops)
	defer extraPs.add(-loops)
	shares := make([][]*econn, loops)
	for i, w := range r.workers {
		c := &econn{w: w, fd: -1, rbuf: make([]byte, 64<<10), phase: r.phase.Load()}
		if err := c.adopt(); err != nil {
			w.noteErr(err)
			c.retry = time.Now()
		}
		shares[i%loops] = append(shares[i%loops], c)
	}
	var wg sync.WaitGroup
	for _, share := range shares {
		wg.Go(func() { r.epollLoop(share) })
	}
	wg.Wait()
}

// extraPs counts the Ps that epoll loops hold, over every run in the
// process (tests run several at once), and keeps GOMAXPROCS at the value it
// had before the first plus that count.
var extraPs pCount

type pCount struct {
	mu   sync.Mutex // guards base, n and the GOMAXPROCS calls
	base int        // GOMAXPROCS when n went from 0 up
	n    int
}

// add changes the count by d and sets GOMAXPROCS to base + n.
func (e *pCount) add(d int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == 0 {
		e.base = runtime.GOMAXPROCS(0)
	}
	e.n += d
	runtime.GOMAXPROCS(e.base + e.n)
}

// adopt takes over the worker's net.Conn as a raw non-blocking socket: a
// duplicate of its descriptor, after which the net.Conn is closed.
func (c *econn) adopt() error {
	w := c.w
	if w.conn == nil {
		return errors.New("not connected")
	}
	defer w.closeConn()
	sc, ok := w.conn.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T has no descriptor", w.conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var fd int
	var derr error
	if err := raw.Control(func(s uintptr) { fd, derr = syscall.Dup(int(s)) }); err != nil {
		return err
	}
	if derr != nil {
		return derr
	}
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return err
	}
	c.fd = fd
	return nil
}

func (r *run) epollLoop(conns []*econn) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		for _, c := range conns {
			c.w.noteErr(err)
			c.w.fail(r.depth)
		}
		return
	}
	defer syscall.Close(ep)
	for i, c := range conns {
		c.idx = int32(i)
		if c.fd >= 0 {
			if err := r.register(ep, c); err != nil {
				r.drop(ep, c, err)
				continue
			}
			r.start(ep, c)
		}
	}
	events := make([]syscall.EpollEvent, len(conns))
	lastScan := time.Now()
	timeout := r.ks.opts.timeout
	for {
		if r.aborted.Load() {
			return
		}
		live := 0
		for _, c := range conns {
			if !c.done {
				live++
			}
		}
		if live == 0 {
			return
		}
		n, err := epollWait(ep, events, 20)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			for _, c := range conns {
				if !c.done {
					r.drop(ep, c, err)
					c.done = true
				}
			}
			return
		}
		for _, e := range events[:max(n, 0)] {
			c := conns[e.Fd]
			if c.fd < 0 {
				continue
			}
			if e.Events&syscall.EPOLLOUT != 0 && c.woff < len(c.w.wbuf) {
				r.flush(ep, c)
			}
			if e.Events&(syscall.EPOLLIN|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 && c.fd >= 0 {
				r.receive(ep, c)
			}
		}
		// Every 20 ms: time out stuck batches, redial, and let connections
		// that finished a batch while the run was stopping see the stop.
		if now := time.Now(); now.Sub(lastScan) >= 20*time.Millisecond || n <= 0 {
			lastScan = now
			for _, c := range conns {
				switch {
				case c.done:
				case c.fd >= 0 && c.busy && now.Sub(c.t0) > timeout:
					r.drop(ep, c, fmt.Errorf("read %s: i/o timeout after %v", c.w.addr(), timeout))
				case c.fd < 0 && !now.Before(c.retry):
					r.redial(ep, c)
				case c.fd >= 0 && !c.busy:
					r.start(ep, c)
				}
			}
		}
	}
}

func (r *run) register(ep int, c *econn) error {
	return syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, c.fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: c.idx})
}

func (c *econn) close() {
	if c.fd >= 0 {
		syscall.Close(c.fd)
		c.fd = -1
	}
}

// start sends the next batch, or marks the connection done.
func (r *run) start(ep int, c *econn) {
	w := c.w
	ph := r.phase.Load()
	if ph == phaseStop {
		c.done = true
		return
	}
	if ph != c.phase {
		c.phase = ph
		w.st.reset()
	}
	n := w.take(ph, r.depth)
	if n == 0 {
		c.done = true
		return
	}
	var at time.Duration
	if w.scen != nil {
		at = time.Since(r.measureAt)
	}
	w.encode(n, at)
	c.next, c.woff, c.busy = 0, 0, true
	c.t0 = time.Now()
	r.flush(ep, c)
}

// flush writes what is left of the batch; if the socket is full it asks
// epoll for EPOLLOUT and returns.
func (r *run) flush(ep int, c *econn) {
	b := c.w.wbuf
	for c.woff < len(b) {
		n, err := syscall.Write(c.fd, b[c.woff:])
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			if !c.out {
				ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT, Fd: c.idx}
				if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
					r.drop(ep, c, err)
					return
				}
				c.out = true
			}
			return
		case err != nil:
			r.drop(ep, c, fmt.Errorf("write %s: %w", c.w.addr(), err))
			return
		}
		c.woff += n
	}
	if c.out {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: c.idx}
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
			r.drop(ep, c, err)
			return
		}
		c.out = false
	}
}

// receive reads what the socket has, parses the replies in it, and sends
// the next batch once the current one is answered.
func (r *run) receive(ep int, c *econn) {
	w := c.w
	for {
		if c.rlen == len(c.rbuf) {
			if c.roff > 0 {
				c.rlen = copy(c.rbuf, c.rbuf[c.roff:c.rlen])
				c.roff = 0
			} else {
				c.rbuf = append(c.rbuf, make([]byte, len(c.rbuf))...) // a value larger than the buffer
			}
		}
		n, err := syscall.Read(c.fd, c.rbuf[c.rlen:])
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return
		case err != nil:
			r.drop(ep, c, fmt.Errorf("read %s: %w", w.addr(), err))
			return
		case n == 0:
			r.drop(ep, c, fmt.Errorf("read %s: connection closed by the server", w.addr()))
			return
		}
		c.rlen += n
		if !c.busy {
			r.drop(ep, c, protocolError("%d bytes from %s with no request in flight", n, w.addr()))
			return
		}
		var bc batchCounts
		for c.next < len(w.ops) {
			op := w.ops[c.next]
			var kind replyKind
			var used int
			var err error
			if op.get {
				kind, used, err = parseGet(c.rbuf[c.roff:c.rlen], w.wbuf[op.kstart:op.kend])
			} else {
				kind, used, err = parseStore(c.rbuf[c.roff:c.rlen])
			}
			if err != nil {
				bc.publish(&w.live)
				r.drop(ep, c, err)
				return
			}
			if used == 0 {
				break
			}
			c.roff += used
			w.tally(op, kind, time.Since(c.t0), &bc)
			c.next++
		}
		bc.publish(&w.live)
		if c.roff == c.rlen {
			c.roff, c.rlen = 0, 0
		}
		if c.next == len(w.ops) {
			c.busy = false
			if c.rlen != 0 {
				r.drop(ep, c, protocolError("%d bytes from %s after the last reply", c.rlen-c.roff, w.addr()))
				return
			}
			r.start(ep, c)
			return
		}
		if c.rlen < len(c.rbuf) {
			return // epoll says when the rest arrives
		}
	}
}

// drop fails the batch in flight, closes the connection and schedules a
// redial.
func (r *run) drop(ep int, c *econn, err error) {
	w := c.w
	if c.busy {
		w.fail(len(w.ops) - c.next)
		c.busy = false
	}
	w.noteErr(err)
	if c.fd >= 0 {
		_ = syscall.EpollCtl(ep, syscall.EPOLL_CTL_DEL, c.fd, nil)
		c.close()
	}
	c.out = false
	c.roff, c.rlen = 0, 0
	if r.phase.Load() == phaseStop {
		c.done = true
		return
	}
	w.st.reconnects++
	c.wait = max(10*time.Millisecond, min(2*c.wait, time.Second))
	c.retry = time.Now().Add(c.wait)
}

// redial connects again (blocking this loop for up to the timeout); a
// failed attempt fails a batch's worth of requests, as the goroutine engine
// does.
func (r *run) redial(ep int, c *econn) {
	w := c.w
	conn, err := net.DialTimeout("tcp", w.addr(), r.ks.opts.timeout)
	if err == nil {
		w.mu.Lock()
		w.conn = conn
		w.mu.Unlock()
		if err = c.adopt(); err == nil {
			if err = r.register(ep, c); err == nil {
				c.wait = 0
				r.start(ep, c)
				return
			}
			c.close()
		}
	}
	w.noteErr(err)
	if r.phase.Load() == phaseStop {
		c.done = true
		return
	}
	w.fail(r.depth)
	c.wait = max(10*time.Millisecond, min(2*c.wait, time.Second))
	c.retry = time.Now().Add(c.wait)
}

// epollWait is syscall.EpollWait without telling the Go scheduler: the
// thread keeps its P while it waits, so a wake-up does not have to win a P
// back (runEpoll gives the scheduler one more P for everything else). The
// wait is at most msec; a preemption signal interrupts it (EINTR), so the
// garbage collector never waits for it. Measured on the 2-core machine
// against memcached: 1.05-1.17 CPU s per 100k requests, against 1.28-1.34
// with syscall.EpollWait.
func epollWait(ep int, events []syscall.EpollEvent, msec int) (int, error) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}
