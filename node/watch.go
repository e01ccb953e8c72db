package node

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotcache/hotcache/protocol"
	"github.com/hotcache/hotcache/ring"
)

// The watch publisher: a connection that sends "watch <edge-name> <stamp>
// [ring]" is taken over (hijacked) and becomes a stream of numbered events:
// a snapshot of the ring, then every ring change and a PONG for every PING
// the edge sends; unless the stream is ring-only, also the hot items this
// node replicates (HOT, then RENEW on every PING, INVAL before a write, COOL
// when the key cools; see repl.go). The grammar is in protocol/watch.go and
// docs/protocol.md.
//
// Each stream has a bounded queue, a writer goroutine and a reader
// goroutine. Events are numbered when they are queued, under the watcher's
// lock, so queue order is stream order and a write path knows the number of
// the INVAL it waits to see acknowledged. Publishing never blocks: a watcher
// whose queue is full, or whose socket does not take a write within
// watchWriteTimeout, is cut off and resyncs from a fresh snapshot when it
// reconnects; its replicas die with their leases.

const (
	// watchQueueLen bounds the events waiting for one watcher: room for a
	// snapshot of the largest hot set plus a round of renewals.
	watchQueueLen = 1024
	// watchWriteTimeout bounds one write to a watcher that does not read.
	watchWriteTimeout = 5 * time.Second
	// watchIdleTimeout closes a stream on which the edge sent nothing (not
	// even a PING; edges ping every second by default) for this long.
	watchIdleTimeout = 30 * time.Second
)

var (
	errSlowWatcher  = errors.New("slow watcher: event queue full")
	errWatchStopped = errors.New("node shutting down")
)

// watchers is the node's set of open watch streams. Its zero value is ready.
type watchers struct {
	mu     sync.Mutex // guards the fields below
	set    map[*watcher]struct{}
	ring   []byte // the last published ring's text
	gen    uint64 // and its generation
	closed bool
	// gone are replica streams that have ended while a lease they granted
	// may still run at their edge (which may not know yet that the stream
	// broke): writes keep waiting those leases out.
	gone []*watcher

	wg sync.WaitGroup // every watcher goroutine
}

// A watchEvent is an event queued for one watcher, numbered.
type watchEvent struct {
	kind  protocol.WatchEventKind
	seq   uint64
	gen   uint64 // RING
	text  []byte // RING: shared by all watchers, never modified
	stamp uint64 // PONG, HOT, RENEW
	key   string // HOT, RENEW, INVAL, COOL
	it    *item  // HOT: immutable, shared by all watchers
	cas   uint64 // RENEW
	lease time.Duration
	ttl   int64 // HOT: remaining seconds, 0 for none
}

// A watcher is one open stream.
type watcher struct {
	name     string
	ringOnly bool
	conn     net.Conn
	events   chan watchEvent
	done     chan struct{}
	once     sync.Once
	cause    error // set once, before done is closed

	mu      sync.Mutex // guards seq, stamp, stampAt and stopped; events are sent under it
	seq     uint64     // number of the last event queued
	stamp   uint64     // the edge's latest stamp
	stampAt int64      // when it was read, node monotonic nanoseconds
	stopped bool

	// leaseEnd is the latest moment (node monotonic nanoseconds) at which
	// a lease granted on this stream can still be running at the edge.
	leaseEnd atomic.Int64
	// acked is the highest INVAL or COOL the edge has acknowledged; ackMu
	// guards ackCh, closed and replaced at every ACK to wake waiters.
	acked atomic.Uint64
	ackMu sync.Mutex
	ackCh chan struct{}
}

// stop ends the stream for cause; the writer says why and closes the socket.
func (w *watcher) stop(cause error) {
	w.once.Do(func() {
		w.cause = cause
		close(w.done)
	})
}

// enqueue numbers ev and queues it without blocking, cutting the watcher
// off when its queue is full. For HOT and RENEW it stamps the lease with
// the edge's latest stamp and extends leaseEnd to cover it (margin is the
// allowance for the two clocks' rates). It returns ev's number, 0 when the
// stream has ended.
func (w *watcher) enqueue(ev watchEvent, margin time.Duration) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return 0
	}
	if ev.kind == protocol.WatchHot || ev.kind == protocol.WatchRenew {
		ev.stamp = w.stamp
		if end := w.stampAt + int64(ev.lease+margin); end > w.leaseEnd.Load() {
			w.leaseEnd.Store(end)
		}
	}
	w.seq++
	ev.seq = w.seq
	select {
	case w.events <- ev:
	default:
		w.stopped = true
		w.stop(errSlowWatcher)
	}
	return ev.seq
}

// setStamp records the edge's latest stamp, read at node time at.
func (w *watcher) setStamp(stamp uint64, at int64) {
	w.mu.Lock()
	w.stamp, w.stampAt = stamp, at
	w.mu.Unlock()
}

// ack records the edge's acknowledgement of event seq and wakes waiters.
func (w *watcher) ack(seq uint64) {
	w.ackMu.Lock()
	if seq > w.acked.Load() {
		w.acked.Store(seq)
	}
	if w.ackCh != nil {
		close(w.ackCh)
		w.ackCh = nil
	}
	w.ackMu.Unlock()
}

// ackSignal returns a channel closed at the next ACK.
func (w *watcher) ackSignal() <-chan struct{} {
	w.ackMu.Lock()
	defer w.ackMu.Unlock()
	if w.ackCh == nil {
		w.ackCh = make(chan struct{})
	}
	return w.ackCh
}

// publishRing sends r, the ring of generation gen, to every watcher and
// keeps it as the snapshot for streams that open later.
func (ws *watchers) publishRing(r *ring.Ring, gen uint64) {
	text, err := r.MarshalText()
	if err != nil {
		return // only a test Hasher's ring cannot be written; it is never streamed
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.ring, ws.gen = text, gen
	for w := range ws.set {
		w.enqueue(watchEvent{kind: protocol.WatchRing, gen: gen, text: text}, 0)
	}
}

// replicaWatchers returns the streams that take hot items, and the ended
// ones whose leases may still run; now is node monotonic nanoseconds.
func (ws *watchers) replicaWatchers(now int64) []*watcher {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	out := make([]*watcher, 0, len(ws.set)+len(ws.gone))
	for w := range ws.set {
		if !w.ringOnly {
			out = append(out, w)
		}
	}
	kept := ws.gone[:0]
	for _, w := range ws.gone {
		if w.leaseEnd.Load() > now {
			kept = append(kept, w)
			out = append(out, w)
		}
	}
	clear(ws.gone[len(kept):])
	ws.gone = kept
	return out
}

// close stops every stream and waits for their goroutines; later watch
// requests are refused.
func (ws *watchers) close() {
	ws.mu.Lock()
	ws.closed = true
	for w := range ws.set {
		w.stop(errWatchStopped)
	}
	ws.mu.Unlock()
	ws.wg.Wait()
}

// serveWatch answers "watch <edge-name> <stamp> [ring]": it takes the
// connection over and streams events on it until either side ends the
// stream.
func (n *Node) serveWatch(w *protocol.ResponseWriter, req *protocol.Request) {
	open, err := protocol.ParseWatchOpen(req.Args)
	if err != nil {
		w.WriteError(err)
		return
	}
	conn, buffered, err := w.Hijack()
	if err != nil {
		return
	}
	wt := &watcher{name: open.Name, ringOnly: open.RingOnly, conn: conn,
		events: make(chan watchEvent, watchQueueLen), done: make(chan struct{}),
		stamp: open.Stamp, stampAt: n.view.mono()}
	ws := &n.watchers
	ws.mu.Lock()
	if ws.closed {
		ws.mu.Unlock()
		conn.Close()
		return
	}
	if ws.set == nil {
		ws.set = make(map[*watcher]struct{})
	}
	ws.set[wt] = struct{}{}
	if ws.ring == nil { // not published yet: Start always builds one first
		if r := n.view.ring.Load(); r != nil {
			ws.ring, _ = r.MarshalText()
			ws.gen = n.view.generation.Load()
		}
	}
	wt.enqueue(watchEvent{kind: protocol.WatchRing, gen: ws.gen, text: ws.ring}, 0)
	ws.wg.Add(2)
	ws.mu.Unlock()
	if !wt.ringOnly {
		n.repl.snapshot(wt) // after joining the set: see replicator.snapshot
	}
	n.cfg.Logger.Debug("watch stream opened", "edge", open.Name, "ring_only", open.RingOnly, "remote", conn.RemoteAddr().String())

	go func() {
		defer ws.wg.Done()
		n.readWatch(wt, io.MultiReader(bytes.NewReader(buffered), conn))
	}()
	go func() {
		defer ws.wg.Done()
		wt.write()
		wt.mu.Lock()
		wt.stopped = true
		wt.mu.Unlock()
		ws.mu.Lock()
		delete(ws.set, wt)
		if !wt.ringOnly && wt.leaseEnd.Load() > n.view.mono() {
			ws.gone = append(ws.gone, wt)
		}
		ws.mu.Unlock()
		if cutOff(wt.cause) {
			n.logs.watch.log(time.Now(), "watch stream cut off", "edge", open.Name,
				"remote", conn.RemoteAddr().String(), "cause", wt.cause)
		} else {
			n.cfg.Logger.Debug("watch stream closed", "edge", open.Name, "cause", wt.cause)
		}
	}()
}

// cutOff reports whether the node ended a stream because its edge did not
// keep up (its queue filled, or a write to it timed out) or went silent:
// the edge loses its replicas and resyncs, which an operator should see.
func cutOff(cause error) bool {
	return errors.Is(cause, errSlowWatcher) || errors.Is(cause, os.ErrDeadlineExceeded)
}

// readWatch handles the edge's messages: a PING is answered with a PONG
// and, on a replica stream, renews every replica's lease from its stamp;
// ACK wakes the writes waiting for it; HITS are counted as reads; REFRESH
// sends the replica again.
func (n *Node) readWatch(w *watcher, src io.Reader) {
	r := bufio.NewReader(src)
	for {
		w.conn.SetReadDeadline(time.Now().Add(watchIdleTimeout))
		m, err := protocol.ReadWatchMessage(r)
		if err != nil {
			w.stop(err)
			return
		}
		switch m.Kind {
		case protocol.WatchPing:
			w.setStamp(m.Stamp, n.view.mono())
			w.enqueue(watchEvent{kind: protocol.WatchPong, stamp: m.Stamp}, 0)
			if !w.ringOnly {
				n.repl.renew(w)
			}
		case protocol.WatchAck:
			w.ack(m.Seq)
		case protocol.WatchHits:
			n.repl.hits(n, m.Hits)
		case protocol.WatchRefresh:
			if !w.ringOnly {
				n.repl.refresh(w, m.Key)
			}
		}
	}
}

// write sends the queued events, one flush per batch, until the stream is
// stopped; then it tells the edge why and closes the socket.
func (w *watcher) write() {
	defer w.conn.Close()
	bw := bufio.NewWriter(w.conn)
	var buf []byte
	for {
		select {
		case <-w.done:
			w.goodbye(bw)
			return
		case ev := <-w.events:
			for more := true; more; {
				var err error
				buf, err = protocol.AppendWatchEvent(buf[:0], ev.wire())
				if err == nil {
					bw.Write(buf)
				}
				select {
				case ev = <-w.events:
				default:
					more = false
				}
			}
			w.conn.SetWriteDeadline(time.Now().Add(watchWriteTimeout))
			if err := bw.Flush(); err != nil {
				w.stop(err)
			}
		}
	}
}

// wire returns ev in the protocol's form.
func (ev *watchEvent) wire() *protocol.WatchEvent {
	out := &protocol.WatchEvent{Kind: ev.kind, Seq: ev.seq, Generation: ev.gen, Data: ev.text,
		Stamp: ev.stamp, Key: ev.key, Cas: ev.cas, LeaseMS: uint64(ev.lease / time.Millisecond)}
	if ev.kind == protocol.WatchHot {
		out.Flags, out.Exptime, out.Cas, out.Data = ev.it.flags, ev.ttl, ev.it.cas, ev.it.data()
	}
	return out
}

// goodbye writes "SERVER_ERROR <cause>" when the node ends the stream, so a
// person watching in telnet sees why. It never waits long.
func (w *watcher) goodbye(bw *bufio.Writer) {
	if !errors.Is(w.cause, errSlowWatcher) && !errors.Is(w.cause, errWatchStopped) &&
		!errors.Is(w.cause, protocol.ErrMalformedWatch) && !errors.Is(w.cause, os.ErrDeadlineExceeded) {
		return // the edge went away or the socket failed: nobody to tell
	}
	w.conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	bw.Reset(w.conn)
	bw.WriteString((&protocol.ServerError{Msg: w.cause.Error()}).Error() + "\r\n")
	bw.Flush()
}
