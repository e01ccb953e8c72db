package client

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotcache/hotcache/protocol"
)

// Replica streams: one watch stream (not ring-only) to every member of the
// installed ring, on which that member pushes its hot keys. The ring itself
// comes only from the ring-only stream of watch.go. A replica stream lives
// while its member is in the ring at the same address: it redials after a
// break, and every replica it brought is dropped the moment its reader
// stops, before any redial.
//
// On each stream the client sends PING every Heartbeat (the stamps the node
// echoes in leases), HITS every Heartbeat/10 (hitReportEvery) for the
// replicas that answered reads since the last report, REFRESH for replicas
// read past their lease, and ACK for every INVAL and COOL, after dropping
// the replica.

// hitReportEvery is how many hit reports go out per Heartbeat: every 100ms
// with the default Heartbeat of 1s. Tests shorten the interval by shortening
// Heartbeat.
const hitReportEvery = 10

// refreshQueueLen bounds the REFRESH messages waiting to be written on one
// stream; a read that finds the queue full leaves the refresh to a later
// read.
const refreshQueueLen = 64

// An edgeStream keeps a replica stream open to one ring member.
type edgeStream struct {
	e          *edge
	name, addr string
	ctx        context.Context // cancelled when the member leaves, or by Close
	cancel     context.CancelFunc
}

// A session is one connection of an edgeStream.
type session struct {
	st   *edgeStream
	conn net.Conn
	wmu  sync.Mutex // serializes writes
	// held are the replicas that came on this session, by key; guarded by
	// edge.mu.
	held map[string]*replica
	// pending are the hits of replicas dropped since the last report, by
	// key; guarded by edge.mu.
	pending map[string]uint64
	// stamped is the latest stamp sent (in the watch command or a PING): a
	// node echoes no later one, and a lease is never timed from a later one.
	stamped atomic.Uint64
	refresh chan string // keys to send REFRESH for
}

// reconcile keeps one replica stream per member of v that has an address,
// and drops the replicas whose node no longer owns their key in v. It is
// called after every ring install.
func (e *edge) reconcile(v *view) {
	want := make(map[string]string, v.r.Len())
	for _, m := range v.r.Members() {
		if m.Addr != "" {
			want[m.Name] = m.Addr
		}
	}
	e.smu.Lock()
	for name, st := range e.streams {
		if want[name] != st.addr {
			st.cancel() // its reader stops and drops its replicas
			delete(e.streams, name)
		}
	}
	for name, addr := range want {
		if e.streams[name] != nil {
			continue
		}
		st := &edgeStream{e: e, name: name, addr: addr}
		st.ctx, st.cancel = context.WithCancel(e.c.ctx)
		if !e.c.spawn(st.run) {
			st.cancel()
			break // Close has begun
		}
		e.streams[name] = st
	}
	e.smu.Unlock()
	e.sweep(v)
}

// run keeps the stream open until its member leaves the ring or the client
// closes. A redial waits BackoffBase plus a full-jitter backoff: the ring
// stream, which redials within BackoffBase, learns first whether the member
// has left, and a restarted node sees its ring streams come back before the
// replica streams of the same clients.
func (st *edgeStream) run() {
	c := st.e.c
	attempt := 0
	for {
		got, err := st.once()
		if st.ctx.Err() != nil {
			return
		}
		c.cfg.Logger.Debug("client: replica stream ended", "node", st.name, "addr", st.addr, "err", err)
		if got {
			attempt = 0
		}
		d := c.cfg.BackoffBase + backoff(c.cfg.BackoffBase, c.cfg.BackoffCap, attempt, c.cfg.Rand())
		attempt++
		t := time.NewTimer(d)
		select {
		case <-st.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// once opens one session and follows it until it breaks. It reports whether
// the session delivered any event.
func (st *edgeStream) once() (got bool, err error) {
	e, c := st.e, st.e.c
	select {
	case e.dialSem <- struct{}{}:
	case <-st.ctx.Done():
		return false, st.ctx.Err()
	}
	dctx, cancel := context.WithTimeout(st.ctx, c.cfg.DialTimeout)
	conn, err := c.cfg.Dial(dctx, st.addr)
	cancel()
	<-e.dialSem
	if err != nil {
		return false, err
	}
	stop := context.AfterFunc(st.ctx, func() { conn.Close() })
	s := &session{st: st, conn: conn, held: make(map[string]*replica), pending: make(map[string]uint64), refresh: make(chan string, refreshQueueLen)}
	done := make(chan struct{})
	var wg sync.WaitGroup
	opened := false
	defer func() {
		e.dropSession(s) // first: the stream is over, so are its leases
		close(done)
		stop()
		conn.Close() // before waiting: it unblocks a writer stuck in a write
		wg.Wait()
		if opened {
			e.open.Add(-1)
		}
	}()

	stamp := c.stamp()
	s.stamped.Store(stamp)
	open, err := protocol.AppendWatchOpen(nil, protocol.WatchOpen{Name: c.cfg.Name, Stamp: stamp})
	if err != nil {
		return false, err
	}
	if err := s.send(open); err != nil {
		return false, err
	}
	opened = true
	e.open.Add(1)
	wg.Go(func() { s.write(done) })

	r := bufio.NewReader(conn)
	silent := 3*c.cfg.Heartbeat + c.cfg.Timeout
	// A HOT block as large as the whole near cache is still read (and
	// refused), so that one large hot item cannot break the stream forever.
	maxData := int(min(max(e.limit, protocol.DefaultMaxWatchData), maxValue))
	var seq uint64
	for {
		conn.SetReadDeadline(time.Now().Add(silent))
		ev, err := protocol.ReadWatchEvent(r, maxData)
		if err != nil {
			if osDeadline(err) {
				err = errStreamSilent
			}
			return got, err
		}
		if ev.Seq != seq+1 {
			return got, fmt.Errorf("%w: event %d after %d", protocol.ErrMalformedWatch, ev.Seq, seq)
		}
		seq, got = ev.Seq, true
		switch ev.Kind {
		case protocol.WatchHot:
			e.hot(s, &ev)
		case protocol.WatchRenew:
			e.renew(s, &ev)
		case protocol.WatchInval, protocol.WatchCool:
			if ev.Kind == protocol.WatchInval {
				e.invals.Add(1)
			} else {
				e.cools.Add(1)
			}
			e.forget(ev.Key) // the replica is gone before the node hears so
			ack, _ := protocol.AppendWatchMessage(nil, &protocol.WatchMessage{Kind: protocol.WatchAck, Seq: ev.Seq})
			if err := s.send(ack); err != nil {
				return got, err
			}
		}
		// RING: the rings come from the ring-only stream. PONG: it only
		// shows the stream is alive, which the read deadline already took.
	}
}

// send writes b on the session within Timeout. A failed write closes the
// connection, so that the reader stops at once.
func (s *session) send(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(s.st.e.c.cfg.Timeout))
	_, err := s.conn.Write(b)
	if err != nil {
		s.conn.Close()
	}
	return err
}

// write sends the session's PINGs, hit reports and refreshes until done.
func (s *session) write(done <-chan struct{}) {
	c := s.st.e.c
	ping := time.NewTicker(c.cfg.Heartbeat)
	defer ping.Stop()
	report := time.NewTicker(max(c.cfg.Heartbeat/hitReportEvery, time.Millisecond))
	defer report.Stop()
	var slice uint64
	var buf []byte
	for {
		var err error
		select {
		case <-done:
			return
		case <-ping.C:
			stamp := c.stamp()
			s.stamped.Store(stamp)
			buf, _ = protocol.AppendWatchMessage(buf[:0], &protocol.WatchMessage{Kind: protocol.WatchPing, Stamp: stamp})
			err = s.send(buf)
		case <-report.C:
			slice++
			s.st.e.dropExpired(s)
			if buf = s.appendHits(buf[:0], slice); len(buf) > 0 {
				err = s.send(buf)
			}
		case key := <-s.refresh:
			// A PING first, so that the HOT answering the refresh carries a
			// fresh stamp: a lease from the last heartbeat's stamp may have
			// run out already (a lease shorter than the heartbeat).
			stamp := c.stamp()
			s.stamped.Store(stamp)
			buf, _ = protocol.AppendWatchMessage(buf[:0], &protocol.WatchMessage{Kind: protocol.WatchPing, Stamp: stamp})
			buf, _ = protocol.AppendWatchMessage(buf, &protocol.WatchMessage{Kind: protocol.WatchRefresh, Key: key})
			if err = s.send(buf); err == nil {
				s.st.e.refreshes.Add(1)
			}
		}
		if err != nil {
			return // send closed the connection: the reader ends the session
		}
	}
}

// appendHits appends the HITS messages of slice to b: the reads each
// replica from this session answered since the last report (including
// replicas dropped since), split into lines below MaxWatchLine. Nothing is
// appended when there were none.
func (s *session) appendHits(b []byte, slice uint64) []byte {
	var hits []protocol.KeyHits
	e := s.st.e
	e.mu.RLock()
	for key, r := range s.held {
		// Only this goroutine moves reported while the lock is shared.
		if n, done := r.hits.Load(), r.reported.Load(); n > done {
			r.reported.Store(n)
			hits = append(hits, protocol.KeyHits{Key: key, N: n - done})
		}
	}
	pending := len(s.pending) > 0
	e.mu.RUnlock()
	if pending {
		e.mu.Lock()
		for key, n := range s.pending {
			hits = append(hits, protocol.KeyHits{Key: key, N: n})
		}
		clear(s.pending)
		e.mu.Unlock()
	}
	const head = len("HITS ") + 20 + len("\r\n") // a slice number has at most 20 digits
	for len(hits) > 0 {
		n, size := 0, head
		for n < len(hits) && (n == 0 || size+len(hits[n].Key)+22 <= protocol.MaxWatchLine) {
			size += len(hits[n].Key) + 22 // " <key> <n>", n of at most 20 digits
			n++
		}
		b, _ = protocol.AppendWatchMessage(b, &protocol.WatchMessage{Kind: protocol.WatchHits, Slice: slice, Hits: hits[:n]})
		hits = hits[n:]
	}
	return b
}
