package node

import (
	"net"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/hotcache/hotcache/protocol"
)

func (n *Node) serveStats(w *protocol.ResponseWriter, req *protocol.Request, now int64) {
	if len(req.Args) == 0 {
		n.writeGeneralStats(w, now)
		w.WriteEnd()
		return
	}
	switch string(req.Args[0]) {
	case "settings":
		n.writeSettings(w)
		w.WriteEnd()
	case "reset":
		n.counters.reset()
		w.WriteLine("RESET")
	case "cluster":
		if isPeer(w) {
			n.probedBy(n.state(w).peer)
		}
		n.writeClusterStats(w)
		w.WriteEnd()
	case "hot":
		n.writeHotStats(w)
		w.WriteEnd()
	case "hotkeys":
		n.writeHotKeys(w)
		w.WriteEnd()
	case "items", "slabs", "sizes", "conns":
		w.WriteEnd() // memcached's slab-level detail has no meaning here
	default:
		w.WriteError(protocol.ErrUnknownCommand)
	}
}

func rusage() (user, sys string) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return "0.000000", "0.000000"
	}
	tv := func(t syscall.Timeval) string {
		return strconv.FormatInt(int64(t.Sec), 10) + "." + leftPad(strconv.FormatInt(int64(t.Usec), 10), 6)
	}
	return tv(ru.Utime), tv(ru.Stime)
}

func leftPad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s
}

func (n *Node) writeGeneralStats(w *protocol.ResponseWriter, now int64) {
	c, st, ss := &n.counters, n.store, n.srv.Stats()
	u := func(name string, v uint64) { w.WriteStatUint(name, v) }
	user, sys := rusage()
	u("pid", uint64(os.Getpid()))
	u("uptime", uint64(now-n.started.Unix()))
	u("time", uint64(now))
	w.WriteStat("version", Version)
	u("pointer_size", 64)
	w.WriteStat("rusage_user", user)
	w.WriteStat("rusage_system", sys)
	u("max_connections", uint64(n.cfg.MaxConns))
	u("curr_connections", uint64(ss.CurrConnections.Load()))
	u("total_connections", ss.TotalConnections.Load())
	u("rejected_connections", ss.RejectedConnections.Load())
	u("cmd_get", c.cmdGet.Load())
	u("cmd_set", c.cmdSet.Load())
	u("cmd_flush", c.cmdFlush.Load())
	u("cmd_touch", c.cmdTouch.Load())
	u("get_hits", c.getHits.Load())
	u("get_misses", c.getMisses.Load())
	u("get_expired", c.getExpired.Load())
	u("get_flushed", c.getFlushed.Load())
	u("delete_misses", c.deleteMisses.Load())
	u("delete_hits", c.deleteHits.Load())
	u("incr_misses", c.incrMisses.Load())
	u("incr_hits", c.incrHits.Load())
	u("decr_misses", c.decrMisses.Load())
	u("decr_hits", c.decrHits.Load())
	u("cas_misses", c.casMisses.Load())
	u("cas_hits", c.casHits.Load())
	u("cas_badval", c.casBadval.Load())
	u("touch_hits", c.touchHits.Load())
	u("touch_misses", c.touchMisses.Load())
	u("store_too_large", c.storeTooLarge.Load())
	u("store_no_memory", c.storeNoMemory.Load())
	u("bytes_read", ss.BytesRead.Load())
	u("bytes_written", ss.BytesWritten.Load())
	u("limit_maxbytes", uint64(n.cfg.MemoryMB)<<20)
	u("threads", uint64(runtime.GOMAXPROCS(0)))
	u("bytes", uint64(max(st.bytes.Load(), 0)))
	u("curr_items", uint64(max(st.items.Load(), 0)))
	u("total_items", st.totalItems.Load())
	u("evictions", st.evictions.Load())
	u("reclaimed", st.reclaimed.Load())
	// Not in memcached: ristretto admission refusals (also in evictions), and
	// sets its buffer dropped that were retried.
	u("admission_refusals", st.refused.Load())
	u("set_buffer_retries", st.dropped.Load())
}

func (n *Node) writeSettings(w *protocol.ResponseWriter) {
	u := func(name string, v uint64) { w.WriteStatUint(name, v) }
	port := uint64(0)
	if a, ok := n.ln.Addr().(*net.TCPAddr); ok {
		port = uint64(a.Port)
	}
	u("maxbytes", uint64(n.cfg.MemoryMB)<<20)
	u("maxconns", uint64(n.cfg.MaxConns))
	u("tcpport", port)
	u("udpport", 0)
	u("verbosity", uint64(n.verbosity.Load()))
	u("num_threads", uint64(runtime.GOMAXPROCS(0)))
	w.WriteStat("evictions", "on")
	w.WriteStat("cas_enabled", "yes")
	u("item_size_max", uint64(n.cfg.MaxItemSize))
	w.WriteStat("flush_enabled", "yes")
	u("idle_timeout", uint64(n.cfg.IdleTimeout/time.Second))
	w.WriteStat("binding_protocol", "ascii")
}

// writeClusterStats is /cluster in memcache text: the ring's identity and
// one line per member.
func (n *Node) writeClusterStats(w *protocol.ResponseWriter) {
	info := n.Cluster()
	w.WriteStat("self", info.Self)
	w.WriteStat("ring_identity", info.Identity)
	w.WriteStatUint("ring_generation", info.Generation)
	w.WriteStatUint("members", uint64(len(info.Members)))
	for _, m := range info.Members {
		w.WriteStat("member", m.Name+" "+m.Addr+" "+m.State+" partitions="+strconv.Itoa(m.Partitions))
	}
	w.WriteStatUint("cut_off", b2u(n.view.isCutOff()))
	w.WriteStatUint("write_ready", b2u(n.Writable()))
	w.WriteStatUint("resuming", b2u(n.view.quiet()))
	if r := n.view.ring.Load(); r != nil {
		w.WriteStatUint("handoff_pending", uint64(len(n.view.pending(r))))
	}
	n.handoff.mu.Lock()
	rounds, agreed := n.handoff.rounds, n.handoff.agreed
	n.handoff.mu.Unlock()
	w.WriteStatUint("handoff_rounds", rounds)
	w.WriteStatUint("handoff_agreed", agreed)
	w.WriteStatUint("forwarded", n.fwd.requests.Load())
	w.WriteStatUint("forward_errors", n.fwd.errors.Load())
}

// b2u is 1 for true, 0 for false.
func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
