package node

import (
	"context"
	"errors"

	"github.com/hotcache/hotcache/protocol"
)

// Serve answers one memcache request; it makes the Node a protocol.Handler.
func (n *Node) Serve(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request) {
	now := n.now()
	switch req.Cmd {
	case protocol.CmdGet, protocol.CmdGets, protocol.CmdGat, protocol.CmdGats:
		n.serveGet(w, req, now)
	case protocol.CmdSet, protocol.CmdAdd, protocol.CmdReplace, protocol.CmdAppend, protocol.CmdPrepend, protocol.CmdCas:
		n.serveStore(w, req, now)
	case protocol.CmdIncr, protocol.CmdDecr:
		n.serveArith(w, req, now)
	case protocol.CmdDelete:
		n.serveDelete(w, req, now)
	case protocol.CmdTouch:
		n.serveTouch(w, req, now)
	case protocol.CmdFlushAll:
		n.counters.cmdFlush.Add(1)
		deadline := now
		if req.Delay > 0 {
			deadline = absTime(req.Delay, now)
			if req.Delay > maxRelativeExptime && deadline <= n.started.Unix()-processStartSlack {
				deadline = 0 // memcached: a unix time before the server started disables flushing
			}
		}
		n.store.flushAll(deadline, now)
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
	default:
		w.WriteError(protocol.ErrUnknownCommand)
	}
}

func (n *Node) serveGet(w *protocol.ResponseWriter, req *protocol.Request, now int64) {
	touch := req.Cmd == protocol.CmdGat || req.Cmd == protocol.CmdGats
	withCas := req.Cmd == protocol.CmdGets || req.Cmd == protocol.CmdGats
	c := &n.counters
	for _, key := range req.Keys {
		var it *item
		if touch { // memcached counts gat and gats as touches only
			c.cmdTouch.Add(1)
			var err error
			if it, err = n.store.touch(key, req.Exptime, now); err != nil {
				w.WriteError(err)
				return
			}
			if it != nil {
				c.touchHits.Add(1)
			} else {
				c.touchMisses.Add(1)
			}
		} else {
			var res lookup
			c.cmdGet.Add(1)
			it, res = n.store.get(key, now)
			n.countGet(res)
		}
		if it != nil {
			w.WriteValue(it.key(), it.flags, it.data(), it.cas, withCas)
		}
	}
	w.WriteEnd()
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
