package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotcache/hotcache/protocol"
	"github.com/hotcache/hotcache/ring"
)

// Cluster mode: the client keeps one watch stream open to some node and
// routes by the rings it streams. When the stream breaks it keeps routing
// with the last ring, waits a full-jitter backoff and opens a stream to the
// next candidate: the seeds first, then the members of the last ring, so it
// finds the cluster again even after every seed has gone.

// watchStats are counters of the watch stream, for tests and debugging.
type watchStats struct {
	dials, streams, rings atomic.Uint64
	mu                    sync.Mutex // guards last
	last                  error
}

func (w *watchStats) setErr(err error) {
	w.mu.Lock()
	w.last = err
	w.mu.Unlock()
}

func (w *watchStats) lastErr() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		return "no stream attempted yet"
	}
	return "last stream: " + w.last.Error()
}

// stamp is the client's own monotonic clock in milliseconds, as sent on
// watch streams.
func (c *Client) stamp() uint64 { return uint64(c.cfg.Now().Sub(c.start) / time.Millisecond) }

// runWatch keeps a watch stream open until Close.
func (c *Client) runWatch() {
	attempt, next := 0, int(c.cfg.Rand()*float64(len(c.cfg.Seeds)))
	for {
		cands := c.candidates()
		addr := cands[next%len(cands)]
		next++
		gotRing, err := c.watchOnce(addr)
		if c.ctx.Err() != nil {
			return
		}
		c.watchStats.setErr(fmt.Errorf("%s: %w", addr, err))
		c.cfg.Logger.Debug("client: watch stream ended", "addr", addr, "err", err)
		if gotRing {
			attempt = 0
		}
		d := backoff(c.cfg.BackoffBase, c.cfg.BackoffCap, attempt, c.cfg.Rand())
		attempt++
		t := time.NewTimer(d)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// candidates lists where a stream may be opened: the seeds, then the
// members of the current ring that are not seeds.
func (c *Client) candidates() []string {
	out := append([]string(nil), c.cfg.Seeds...)
	if v := c.view.Load(); v != nil {
		for _, m := range v.r.Members() {
			if m.Addr != "" && !contains(out, m.Addr) {
				out = append(out, m.Addr)
			}
		}
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// errStreamSilent is a stream on which nothing, not even a PONG, arrived for
// three heartbeats plus Timeout.
var errStreamSilent = errors.New("watch stream silent")

// watchOnce opens a stream to addr and follows it until it breaks. It
// reports whether the stream delivered a ring.
func (c *Client) watchOnce(addr string) (gotRing bool, err error) {
	c.watchStats.dials.Add(1)
	dctx, cancel := context.WithTimeout(c.ctx, c.cfg.DialTimeout)
	conn, err := c.cfg.Dial(dctx, addr)
	cancel()
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		conn.Close()
		return false, ErrClosed
	}
	c.stream = conn
	c.mu.Unlock()
	done := make(chan struct{})
	var hb sync.WaitGroup
	defer func() {
		close(done)
		c.mu.Lock()
		c.stream = nil
		c.mu.Unlock()
		conn.Close() // before waiting: it unblocks a heartbeat stuck in a write
		hb.Wait()
	}()

	var wmu sync.Mutex // serializes writes: heartbeats and acknowledgements
	send := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		conn.SetWriteDeadline(time.Now().Add(c.cfg.Timeout))
		_, err := conn.Write(b)
		return err
	}
	open, err := protocol.AppendWatchOpen(nil, protocol.WatchOpen{Name: c.cfg.Name, Stamp: c.stamp(), RingOnly: true})
	if err != nil {
		return false, err
	}
	if err := send(open); err != nil {
		return false, err
	}
	c.watchStats.streams.Add(1)

	hb.Go(func() { c.heartbeat(done, send) })

	r := bufio.NewReader(conn)
	silent := 3*c.cfg.Heartbeat + c.cfg.Timeout
	var seq, gen uint64
	for {
		conn.SetReadDeadline(time.Now().Add(silent))
		ev, err := protocol.ReadWatchEvent(r, 0)
		if err != nil {
			if osDeadline(err) {
				err = errStreamSilent
			}
			return gotRing, err
		}
		if ev.Seq != seq+1 {
			return gotRing, fmt.Errorf("%w: event %d after %d", protocol.ErrMalformedWatch, ev.Seq, seq)
		}
		seq = ev.Seq
		switch ev.Kind {
		case protocol.WatchRing:
			if gotRing && ev.Generation <= gen {
				continue // an older ring than the one installed from this stream
			}
			rg, err := ring.ParseText(ev.Data)
			if err != nil {
				return gotRing, fmt.Errorf("ring %d from %s: %w", ev.Generation, addr, err)
			}
			gotRing, gen = true, ev.Generation
			c.watchStats.rings.Add(1)
			if cur := c.view.Load(); cur == nil || cur.r.Identity() != rg.Identity() {
				c.cfg.Logger.Info("client: ring changed", "from", addr, "generation", gen, "identity", rg.Identity(), "members", rg.Len())
				c.install(rg, gen)
			}
		case protocol.WatchInval, protocol.WatchCool:
			// A ring-only stream brings no replicas (they come on the
			// replica streams of edgestream.go), so a node should send
			// neither; the grammar still wants each one acknowledged.
			ack, _ := protocol.AppendWatchMessage(nil, &protocol.WatchMessage{Kind: protocol.WatchAck, Seq: ev.Seq})
			if err := send(ack); err != nil {
				return gotRing, err
			}
		}
	}
}

// heartbeat sends "PING <stamp>" every Heartbeat until done.
func (c *Client) heartbeat(done <-chan struct{}, send func([]byte) error) {
	t := time.NewTicker(c.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			ping, _ := protocol.AppendWatchMessage(nil, &protocol.WatchMessage{Kind: protocol.WatchPing, Stamp: c.stamp()})
			if send(ping) != nil {
				return // the reader sees the broken stream too
			}
		}
	}
}
