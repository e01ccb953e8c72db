package node

import (
	"context"
	"errors"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/hotcache/hotcache/hotspot"

	"github.com/hotcache/hotcache/protocol"
	"github.com/hotcache/hotcache/ring"
)

// Serve answers one memcache request; it makes the Node a protocol.Handler.
// In a cluster, a request for a key another node owns is forwarded to it,
// unless it arrived on a peer connection (it was forwarded here already).
// The time from here until the reply is in the connection's buffer goes to
// cache_request_duration_seconds, for requests from clients: a request a
// peer forwarded here was timed by that peer (its forward included), and
// would be counted twice.
func (n *Node) Serve(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request) {
	start := time.Now()
	now := start.Unix() // one clock read for both (time.Now costs ~75 ns on a VM)
	if n.fakeClock {
		now = n.now()
	}
	n.serve(ctx, w, req, now)
	if !isPeer(w) {
		n.latency.request(req.Cmd, time.Since(start))
	}
}

func (n *Node) serve(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request, now int64) {
	route := n.clustered() && !isPeer(w)
	if n.clustered() {
		if n.checkPaused() {
			if conn, _, err := w.Hijack(); err == nil {
				conn.Close() // this request too may predate the pause
			}
			return
		}
		if cutOffRefuses(req.Cmd) {
			mono := n.view.mono()
			switch {
			case n.view.cutOff.Load() || mono > n.view.liveUntil.Load():
				n.refuseCutOff(w, req, errCutOff)
				return
			case mono < n.view.quietUntil.Load():
				n.refuseCutOff(w, req, errQuiet)
				return
			}
		}
	}
	switch req.Cmd {
	case protocol.CmdGet, protocol.CmdGets, protocol.CmdGat, protocol.CmdGats:
		if route {
			n.serveGetCluster(ctx, w, req, now)
		} else {
			n.serveGet(w, req, now)
		}
	case protocol.CmdSet, protocol.CmdAdd, protocol.CmdReplace, protocol.CmdAppend, protocol.CmdPrepend, protocol.CmdCas,
		protocol.CmdIncr, protocol.CmdDecr, protocol.CmdDelete, protocol.CmdTouch:
		if owner, local := n.view.owner(req.Key()); n.clustered() && !local {
			if route {
				n.forwardWrite(ctx, w, req, owner)
				return
			}
			// A peer forwarded it here by a ring this node does not share
			// (yet, or any more): applying it would acknowledge a write
			// the key's owner never sees.
			w.WriteError(errNotOwner)
			return
		}
		if n.clustered() && req.Invalid == nil {
			if err := n.awaitLease(ctx, req.Key()); err != nil {
				w.WriteError(&protocol.ServerError{Msg: err.Error()})
				return
			}
		}
		if req.Invalid == nil || req.Invalid == protocol.ErrTooLarge {
			done, ok := n.repl.beforeWrite(req.Key())
			if !ok {
				w.WriteError(errDraining)
				return
			}
			defer done.Add(-1)
		}
		n.serveWrite(w, req, now)
	case protocol.CmdFlushAll:
		n.serveFlushAll(ctx, w, req, now, route)
	case protocol.CmdPeer:
		name := ""
		if len(req.Args) > 0 {
			name = string(req.Args[0])
		}
		if name == "" {
			name = "?"
		}
		n.state(w).peer = name
		w.WriteLine("OK")
	case protocol.CmdVersion:
		w.WriteLine("VERSION " + Version)
	case protocol.CmdVerbosity:
		n.verbosity.Store(int32(min(req.Delay, 2)))
		w.WriteLine("OK")
	case protocol.CmdMetaNoop:
		w.WriteLine("MN")
	case protocol.CmdStats:
		n.serveStats(w, req, now)
	case protocol.CmdWatch:
		n.serveWatch(w, req)
	default:
		w.WriteError(protocol.ErrUnknownCommand)
	}
}

// serveWrite carries out a write to a key this node serves, and records it
// in the hot-key analyzer (a write-hot key is not replicated).
func (n *Node) serveWrite(w *protocol.ResponseWriter, req *protocol.Request, now int64) {
	key := req.Key()
	n.state(w).rec.RecordWrite(unsafe.String(unsafe.SliceData(key), len(key)), xxhash.Sum64(key))
	switch req.Cmd {
	case protocol.CmdIncr, protocol.CmdDecr:
		n.serveArith(w, req, now)
	case protocol.CmdDelete:
		n.serveDelete(w, req, now)
	case protocol.CmdTouch:
		n.serveTouch(w, req, now)
	default:
		n.serveStore(w, req, now)
	}
}

// forwardWrite sends a write to its owner. A set refused here as too large
// still unlinks the key at its owner, as memcached would.
func (n *Node) forwardWrite(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request, owner ring.Member) {
	if req.Invalid != nil {
		if req.Invalid == protocol.ErrTooLarge && req.Cmd == protocol.CmdSet {
			del := protocol.Request{Cmd: protocol.CmdDelete, Keys: req.Keys}
			dctx, cancel := context.WithTimeout(ctx, n.cfg.ForwardTimeout)
			n.roundTrip(dctx, owner.Addr, &del)
			cancel()
		}
		w.WriteError(req.Invalid)
		return
	}
	n.forward(ctx, w, req, owner)
}

func (n *Node) serveFlushAll(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request, now int64, broadcast bool) {
	n.counters.cmdFlush.Add(1)
	deadline := now
	if req.Delay > 0 {
		deadline = absTime(req.Delay, now)
		if req.Delay > maxRelativeExptime && deadline <= n.started.Unix()-processStartSlack {
			deadline = 0 // memcached: a unix time before the server started disables flushing
		}
	}
	n.repl.drainAll()
	n.store.flushAll(deadline, now)
	if broadcast {
		if err := n.broadcast(ctx, req); err != nil {
			w.WriteError(&protocol.ServerError{Msg: "flush_all reached only part of the cluster: " + err.Error()})
			return
		}
	}
	w.WriteLine("OK")
}

func (n *Node) serveGet(w *protocol.ResponseWriter, req *protocol.Request, now int64) {
	withCas := req.Cmd == protocol.CmdGets || req.Cmd == protocol.CmdGats
	rec := n.state(w).rec
	for _, key := range req.Keys {
		if n.clustered() {
			if _, local := n.view.owner(key); !local {
				// Forwarded by a peer whose ring differs from ours: what
				// this store holds for a key it does not own may be older
				// than the owner's value, and is not fenced until this
				// node gains the key's partition. A miss is always allowed.
				continue
			}
		}
		if it := n.getOne(rec, req, key, now); it != nil {
			w.WriteValue(it.key(), it.flags, it.data(), it.cas, withCas)
		}
	}
	w.WriteEnd()
}

// cutOffRefuses reports whether a node cut off from most of its cluster
// must not serve cmd: every command that reads or writes items.
func cutOffRefuses(cmd protocol.Command) bool {
	switch cmd {
	case protocol.CmdGet, protocol.CmdGets, protocol.CmdGat, protocol.CmdGats, protocol.CmdSet, protocol.CmdAdd,
		protocol.CmdReplace, protocol.CmdAppend, protocol.CmdPrepend, protocol.CmdCas, protocol.CmdIncr, protocol.CmdDecr,
		protocol.CmdDelete, protocol.CmdTouch, protocol.CmdFlushAll:
		return true
	}
	return false
}

// refuseCutOff answers a request on a node cut off from most of its
// cluster, or quiet after a pause: gets miss (what it holds may be older
// than writes the others acknowledged meanwhile), everything else is
// refused with err.
func (n *Node) refuseCutOff(w *protocol.ResponseWriter, req *protocol.Request, err error) {
	if req.Cmd == protocol.CmdGet || req.Cmd == protocol.CmdGets {
		w.WriteEnd()
		return
	}
	w.WriteError(err)
}

// errCutOff refuses writes on a node cut off from most of its cluster.
var errCutOff = &protocol.ServerError{Msg: "cut off from most of the cluster; retry"}

// errQuiet refuses writes on a node that has just come back from a pause.
var errQuiet = &protocol.ServerError{Msg: "resuming after a pause; retry"}

// errDraining refuses a write to a replicated key whose edges have not all
// dropped their replicas within Config.WriteWait.
var errDraining = &protocol.ServerError{Msg: "replicas of this key are still being invalidated; retry"}

// errNotOwner answers a write a peer forwarded to a node that does not own
// the key in its own ring; the sender's client may retry once the rings
// agree.
var errNotOwner = &protocol.ServerError{Msg: "not the owner of this key in this node's ring; retry"}

// getOne reads (or, for gat and gats, touches) one key, counts it, and
// records the read in the hot-key analyzer.
func (n *Node) getOne(rec *hotspot.Recorder, req *protocol.Request, key []byte, now int64) *item {
	rec.Record(unsafe.String(unsafe.SliceData(key), len(key)), xxhash.Sum64(key)) // Record copies what it keeps
	c := &n.counters
	if req.Cmd == protocol.CmdGet || req.Cmd == protocol.CmdGets {
		c.cmdGet.Add(1)
		it, res := n.store.get(key, now)
		n.countGet(res)
		return it
	}
	c.cmdTouch.Add(1)                   // memcached counts gat and gats as touches only
	done, ok := n.repl.beforeWrite(key) // a touch changes what a replica would say
	if !ok {
		c.touchMisses.Add(1) // its replicas are still being invalidated: a miss, untouched
		return nil
	}
	it, err := n.store.touch(key, req.Exptime, now)
	done.Add(-1)
	if err != nil || it == nil {
		c.touchMisses.Add(1)
		return nil
	}
	c.touchHits.Add(1)
	return it
}

func (n *Node) countGet(res lookup) {
	c := &n.counters
	switch res {
	case hit:
		c.getHits.Add(1)
		return
	case expired:
		c.getExpired.Add(1)
	case flushed:
		c.getFlushed.Add(1)
	}
	c.getMisses.Add(1)
}

func (n *Node) serveStore(w *protocol.ResponseWriter, req *protocol.Request, now int64) {
	switch req.Invalid {
	case nil:
	case protocol.ErrTooLarge:
		n.counters.storeTooLarge.Add(1)
		if req.Cmd == protocol.CmdSet {
			n.store.unlink(req.Key(), now) // never leave the old value behind a failed set
		}
		w.WriteError(req.Invalid)
		return
	default: // a bad data chunk still counts as a set, as in memcached
		n.counters.cmdSet.Add(1)
		w.WriteError(req.Invalid)
		return
	}
	n.counters.cmdSet.Add(1)
	it := newItem(req.Block, len(req.Key()), req.Flags, absTime(req.Exptime, now))
	out, err := n.store.storeCmd(req.Cmd, it, req.Cas, n.cfg.MaxItemSize, now)
	if err != nil {
		n.counters.storeNoMemory.Add(1)
		n.writeStoreError(w, err)
		return
	}
	if req.Cmd == protocol.CmdCas {
		switch out {
		case outStored:
			n.counters.casHits.Add(1)
		case outExists:
			n.counters.casBadval.Add(1)
		case outNotFound:
			n.counters.casMisses.Add(1)
		}
	}
	w.WriteLine(outcomeText[out])
}

func (n *Node) writeStoreError(w *protocol.ResponseWriter, err error) {
	if errors.Is(err, errNoRoom) {
		err = protocol.ErrOutOfMemory
	}
	w.WriteError(err)
}

func (n *Node) serveArith(w *protocol.ResponseWriter, req *protocol.Request, now int64) {
	incr := req.Cmd == protocol.CmdIncr
	v, found, err := n.store.incrDecr(req.Key(), incr, req.Delta, now)
	c := &n.counters
	switch {
	case !found && incr:
		c.incrMisses.Add(1)
	case !found:
		c.decrMisses.Add(1)
	case incr && err == nil:
		c.incrHits.Add(1)
	case err == nil:
		c.decrHits.Add(1)
	}
	switch {
	case err != nil:
		n.writeStoreError(w, err)
	case !found:
		w.WriteLine("NOT_FOUND")
	default:
		w.WriteUint(v)
	}
}

func (n *Node) serveDelete(w *protocol.ResponseWriter, req *protocol.Request, now int64) {
	if n.store.delete(req.Key(), now) {
		n.counters.deleteHits.Add(1)
		w.WriteLine("DELETED")
		return
	}
	n.counters.deleteMisses.Add(1)
	w.WriteLine("NOT_FOUND")
}

func (n *Node) serveTouch(w *protocol.ResponseWriter, req *protocol.Request, now int64) {
	n.counters.cmdTouch.Add(1)
	it, err := n.store.touch(req.Key(), req.Exptime, now)
	switch {
	case err != nil:
		n.writeStoreError(w, err)
	case it == nil:
		n.counters.touchMisses.Add(1)
		w.WriteLine("NOT_FOUND")
	default:
		n.counters.touchHits.Add(1)
		w.WriteLine("TOUCHED")
	}
}
