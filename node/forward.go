package node

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotcache/hotcache/hotspot"
	"github.com/hotcache/hotcache/internal/connpool"
	"github.com/hotcache/hotcache/protocol"
	"github.com/hotcache/hotcache/ring"
)

// forwardCounters count requests this node sent on to a key's owner.
type forwardCounters struct {
	requests atomic.Uint64 // requests (or per-owner parts of a multi-get) forwarded
	errors   atomic.Uint64 // of which failed: owner unreachable, slow or out of step
	missed   atomic.Uint64 // keys answered as a miss because their owner failed
}

// connState is what the node keeps per client connection (in its
// ResponseWriter's ConnValue).
type connState struct {
	// peer is the name of the node that forwards requests on this
	// connection (it opened with "peer <name>"), or "": its requests are
	// served here, never forwarded again.
	peer string
	// rec records the reads this connection's goroutine serves as owner in
	// the node's hot-key analyzer; one per goroutine keeps it cheap.
	rec *hotspot.Recorder
}

// state returns the connection's state, creating it on first use.
func (n *Node) state(w *protocol.ResponseWriter) *connState {
	if cs, ok := w.ConnValue().(*connState); ok {
		return cs
	}
	cs := &connState{rec: n.hot.NewRecorder(rand.Uint64())}
	w.SetConnValue(cs)
	return cs
}

func isPeer(w *protocol.ResponseWriter) bool {
	cs, ok := w.ConnValue().(*connState)
	return ok && cs.peer != ""
}

// forward sends a single-key request to owner and relays its one-line reply.
func (n *Node) forward(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request, owner ring.Member) {
	n.fwd.requests.Add(1)
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ForwardTimeout)
	defer cancel()
	start := time.Now()
	line, err := n.roundTrip(ctx, owner.Addr, req)
	n.latency.forward(time.Since(start))
	if err != nil {
		n.fwd.errors.Add(1)
		n.logs.forwardFailed(owner, err)
		n.cfg.Logger.Debug("forward failed", "owner", owner.Name, "cmd", req.Cmd.String(), "err", err)
		w.WriteError(&protocol.ServerError{Msg: "owner " + owner.Name + " unavailable: " + errText(err)})
		return
	}
	w.WriteLine(line)
}

// errText is a short reason for a client: a timeout or a refused dial.
func errText(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, connpool.ErrBackoff):
		return "reconnecting"
	}
	return "connection failed"
}

// roundTrip sends req to addr and returns the single reply line, error
// replies included as text.
func (n *Node) roundTrip(ctx context.Context, addr string, req *protocol.Request) (string, error) {
	c, err := n.pool.Get(ctx, addr)
	if err != nil {
		return "", err
	}
	c.SetDeadline(ctx, n.cfg.ForwardTimeout)
	line, err := send(c, req, func() (string, error) { return protocol.ReadLine(c.R) })
	if err != nil && protocolError(err) {
		n.pool.Put(c, nil)
		return line, nil
	}
	n.pool.Put(c, err)
	return line, err
}

// protocolError reports whether err is a reply in the protocol's error
// words, after which the connection is still in step.
func protocolError(err error) bool {
	var ce *protocol.ClientError
	var se *protocol.ServerError
	return errors.Is(err, protocol.ErrUnknownCommand) || errors.As(err, &ce) || errors.As(err, &se)
}

func send[T any](c *connpool.Conn, req *protocol.Request, read func() (T, error)) (T, error) {
	var zero T
	if _, err := c.W.Write(protocol.AppendRequest(nil, req)); err != nil {
		return zero, err
	}
	if err := c.W.Flush(); err != nil {
		return zero, err
	}
	return read()
}

// getParts splits a retrieval's keys by owner.
type getPart struct {
	owner ring.Member
	req   protocol.Request
	vals  map[string]protocol.Value
	err   error
}

// serveGetCluster answers a multi-key retrieval: keys this node owns are
// served from its store, the others are asked of their owners in parallel
// (at most ForwardFanout at once), and the values are written in the order
// asked. Keys whose owner fails are misses.
func (n *Node) serveGetCluster(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request, now int64) {
	r := n.view.ring.Load()
	parts := map[string]*getPart{}
	var local [][]byte
	for _, k := range req.Keys {
		m, ok := r.Owner(k)
		if !ok || m.Name == n.cfg.Name {
			local = append(local, k)
			continue
		}
		p := parts[m.Name]
		if p == nil {
			p = &getPart{owner: m, req: protocol.Request{Cmd: req.Cmd, Exptime: req.Exptime}}
			parts[m.Name] = p
		}
		p.req.Keys = append(p.req.Keys, k)
	}
	if len(parts) == 0 {
		n.serveGet(w, req, now)
		return
	}
	n.fetchParts(ctx, parts)
	localReq := *req
	localReq.Keys = local
	found := n.lookupLocal(n.state(w).rec, &localReq, now)
	withCas := req.Cmd == protocol.CmdGets || req.Cmd == protocol.CmdGats
	for _, k := range req.Keys {
		var v protocol.Value
		var ok bool
		if m, _ := r.Owner(k); m.Name != n.cfg.Name && parts[m.Name] != nil {
			v, ok = parts[m.Name].vals[string(k)]
		} else {
			v, ok = found[string(k)]
		}
		if ok {
			w.WriteValue(v.Key, v.Flags, v.Data, v.Cas, withCas)
		}
	}
	w.WriteEnd()
}

// fetchParts asks each owner for its keys, ForwardFanout at a time.
func (n *Node) fetchParts(ctx context.Context, parts map[string]*getPart) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ForwardTimeout)
	defer cancel()
	sem := make(chan struct{}, n.cfg.ForwardFanout)
	var wg sync.WaitGroup
	for _, p := range parts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			n.fwd.requests.Add(1)
			start := time.Now()
			p.vals, p.err = n.fetch(ctx, p)
			n.latency.forward(time.Since(start))
			if p.err != nil {
				n.fwd.errors.Add(1)
				n.fwd.missed.Add(uint64(len(p.req.Keys)))
				n.logs.forwardFailed(p.owner, p.err)
				n.cfg.Logger.Debug("forwarded get failed; answering misses", "owner", p.owner.Name, "keys", len(p.req.Keys), "err", p.err)
			}
		})
	}
	wg.Wait()
}

func (n *Node) fetch(ctx context.Context, p *getPart) (map[string]protocol.Value, error) {
	c, err := n.pool.Get(ctx, p.owner.Addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(ctx, n.cfg.ForwardTimeout)
	vals, err := send(c, &p.req, func() ([]protocol.Value, error) { return protocol.ReadValues(c.R, nil) })
	if err != nil && protocolError(err) {
		n.pool.Put(c, nil)
		return nil, err
	}
	n.pool.Put(c, err)
	if err != nil {
		return nil, err
	}
	out := make(map[string]protocol.Value, len(vals))
	for _, v := range vals {
		out[string(v.Key)] = v
	}
	return out, nil
}

// lookupLocal reads the keys this node owns, counting them as gets.
func (n *Node) lookupLocal(rec *hotspot.Recorder, req *protocol.Request, now int64) map[string]protocol.Value {
	out := make(map[string]protocol.Value, len(req.Keys))
	for _, k := range req.Keys {
		if it := n.getOne(rec, req, k, now); it != nil {
			out[string(k)] = protocol.Value{Key: it.key(), Flags: it.flags, Data: it.data(), Cas: it.cas}
		}
	}
	return out
}

// broadcast sends req to every other member and reports the first failure;
// flush_all uses it so the whole cluster is flushed.
func (n *Node) broadcast(ctx context.Context, req *protocol.Request) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ForwardTimeout)
	defer cancel()
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for _, m := range n.view.ring.Load().Members() {
		if m.Name == n.cfg.Name {
			continue
		}
		wg.Go(func() {
			line, err := n.roundTrip(ctx, m.Addr, req)
			if err == nil && line != "OK" {
				err = errors.New(line)
			}
			if err != nil {
				mu.Lock()
				if first == nil {
					first = errors.New(m.Name + ": " + errText(err))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}
