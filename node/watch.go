package node

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hotcache/hotcache/protocol"
	"github.com/hotcache/hotcache/ring"
)

// The watch publisher: a connection that sends "watch <edge-name> <stamp>"
// is taken over (hijacked) and becomes a stream of numbered events, starting
// with a snapshot of the ring and then every ring change, plus a PONG for
// every PING the edge sends. The grammar is in protocol/watch.go and
// docs/protocol.md. Hot-item events (HOT, RENEW, INVAL, COOL) are defined
// there but not produced yet.
//
// Each stream has a bounded queue, a writer goroutine and a reader
// goroutine. Publishing never blocks: a watcher whose queue is full, or whose
// socket does not take a write within watchWriteTimeout, is cut off and
// resyncs from a fresh snapshot when it reconnects.

const (
	// watchQueueLen bounds the events waiting for one watcher.
	watchQueueLen = 64
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

	wg sync.WaitGroup // every watcher goroutine
}

// A watchEvent is an event queued for one watcher, before it is numbered.
type watchEvent struct {
	kind  protocol.WatchEventKind
	gen   uint64 // RING
	text  []byte // RING: shared by all watchers, never modified
	stamp uint64 // PONG
}

// A watcher is one open stream.
type watcher struct {
	name   string
	conn   net.Conn
	events chan watchEvent
	done   chan struct{}
	once   sync.Once
	cause  error // set once, before done is closed
}

// stop ends the stream for cause; the writer says why and closes the socket.
func (w *watcher) stop(cause error) {
	w.once.Do(func() {
		w.cause = cause
		close(w.done)
	})
}

// push queues ev without blocking, cutting the watcher off when it is full.
func (w *watcher) push(ev watchEvent) {
	select {
	case w.events <- ev:
	default:
		w.stop(errSlowWatcher)
	}
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
		w.push(watchEvent{kind: protocol.WatchRing, gen: gen, text: text})
	}
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

// serveWatch answers "watch <edge-name> <stamp>": it takes the connection
// over and streams events on it until either side ends the stream.
func (n *Node) serveWatch(w *protocol.ResponseWriter, req *protocol.Request) {
	open, err := protocol.ParseWatchOpen(req.Args)
	name := open.Name
	if err != nil {
		w.WriteError(err)
		return
	}
	conn, buffered, err := w.Hijack()
	if err != nil {
		return
	}
	wt := &watcher{name: name, conn: conn, events: make(chan watchEvent, watchQueueLen), done: make(chan struct{})}
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
	wt.push(watchEvent{kind: protocol.WatchRing, gen: ws.gen, text: ws.ring})
	ws.wg.Add(2)
	ws.mu.Unlock()
	n.cfg.Logger.Debug("watch stream opened", "edge", name, "remote", conn.RemoteAddr().String())

	go func() {
		defer ws.wg.Done()
		wt.read(io.MultiReader(bytes.NewReader(buffered), conn))
	}()
	go func() {
		defer ws.wg.Done()
		wt.write()
		ws.mu.Lock()
		delete(ws.set, wt)
		ws.mu.Unlock()
		n.cfg.Logger.Debug("watch stream closed", "edge", name, "cause", wt.cause)
	}()
}

// read handles the edge's messages: PING is answered with PONG in stream
// order; ACK, HITS and REFRESH are accepted and not acted on yet.
func (w *watcher) read(src io.Reader) {
	r := bufio.NewReader(src)
	for {
		w.conn.SetReadDeadline(time.Now().Add(watchIdleTimeout))
		m, err := protocol.ReadWatchMessage(r)
		if err != nil {
			w.stop(err)
			return
		}
		if m.Kind == protocol.WatchPing {
			w.push(watchEvent{kind: protocol.WatchPong, stamp: m.Stamp})
		}
	}
}

// write numbers and sends the queued events, one flush per batch, until the
// stream is stopped; then it tells the edge why and closes the socket.
func (w *watcher) write() {
	defer w.conn.Close()
	bw := bufio.NewWriter(w.conn)
	var seq uint64
	var buf []byte
	for {
		select {
		case <-w.done:
			w.goodbye(bw)
			return
		case ev := <-w.events:
			for more := true; more; {
				seq++
				var err error
				buf, err = protocol.AppendWatchEvent(buf[:0], &protocol.WatchEvent{
					Kind: ev.kind, Seq: seq, Generation: ev.gen, Data: ev.text, Stamp: ev.stamp})
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
