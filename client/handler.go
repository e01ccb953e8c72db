package client

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hotcache/hotcache/internal/connpool"
	"github.com/hotcache/hotcache/protocol"
)

// The proxy's protocol.Handler: every memcache request is carried out with
// the Client's own calls, so the proxy routes by the same ring, shares the
// same near cache of hot replicas, and fails the same way as an application
// that embeds the client. Replies are memcached's words for each outcome.
//
// Two cases do not map one to one onto the API. Keys that memcached accepts
// but the API refuses (control bytes inside a key) go straight to their
// owner, never through the near cache; they cannot be replicated anyway,
// since the watch stream cannot carry them. And flush_all with a delay is
// sent to every server by hand, since FlushAll takes none.

// DefaultHandlerVersion is what "version" answers at a Handler whose
// HandlerOptions.Version is empty: memcached's version, which clients probe
// for features, with the edge's own suffix.
const DefaultHandlerVersion = "1.6.18-hotcache-edge"

// HandlerOptions configure a Handler. Every zero value is a sensible
// default, given with the field.
type HandlerOptions struct {
	// Version is the reply to "version" and the version stat. Empty means
	// DefaultHandlerVersion.
	Version string
	// ServerStats are the connection counters of the protocol.Server the
	// Handler serves on (Server.Stats), reported by "stats". Nil reports
	// zeros.
	ServerStats *protocol.ServerStats
	// MaxConns and MaxItemSize are that server's limits, reported by
	// "stats" and "stats settings". Zero means protocol.DefaultMaxConns and
	// protocol.DefaultMaxItemSize.
	MaxConns, MaxItemSize int
	// Timeout bounds each request, on top of the request's ctx: a request
	// that is not answered within it (its owner's pool is saturated, say)
	// gets "SERVER_ERROR timeout" rather than holding its connection. Zero
	// means 2×Config.Timeout + Config.DialTimeout.
	Timeout time.Duration
	// Now tells the time for stats. Nil means time.Now.
	Now func() time.Time
}

// A Handler serves the memcache text protocol with a Client: it is the
// proxy's protocol.Handler (cmd/cacheproxy is a protocol.Server with this
// Handler). It serves every command a node serves except watch and peer,
// which it answers "ERROR". It is safe for concurrent use.
type Handler struct {
	c         *Client
	opts      HandlerOptions
	started   time.Time
	verbosity atomic.Int32
	n         handlerCounters
}

// handlerCounters are the request counters, in memcached's names where it
// has one.
type handlerCounters struct {
	commands [protocol.CmdPeer + 1]atomic.Uint64

	cmdGet, getHits, getMisses, cmdSet, cmdFlush, cmdTouch, touchHits, touchMisses atomic.Uint64
	deleteHits, deleteMisses, incrHits, incrMisses, decrHits, decrMisses           atomic.Uint64
	casHits, casMisses, casBadval, storeTooLarge, ownerErrors, errorReplies        atomic.Uint64
}

// HandlerStats are a Handler's request counters. The memcached-named
// fields count as memcached does: gets per key, gat and gats as touches.
type HandlerStats struct {
	// Commands counts the requests received, by command name ("get",
	// "set", ...; a multi-key get counts once).
	Commands map[string]uint64

	CmdGet, GetHits, GetMisses, CmdSet, CmdFlush, CmdTouch, TouchHits, TouchMisses uint64
	DeleteHits, DeleteMisses, IncrHits, IncrMisses, DecrHits, DecrMisses           uint64
	CasHits, CasMisses, CasBadval, StoreTooLarge                                   uint64
	// OwnerErrors counts calls whose owner could not be reached or did not
	// answer in time: a write answered "SERVER_ERROR owner ... unavailable",
	// or one owner's part of a read answered as misses.
	OwnerErrors uint64
	// ErrorReplies counts error replies relayed from servers.
	ErrorReplies uint64
}

// NewHandler returns a Handler that serves requests with c. c stays the
// caller's: the Handler never closes it.
func NewHandler(c *Client, opts HandlerOptions) *Handler {
	if opts.Version == "" {
		opts.Version = DefaultHandlerVersion
	}
	if opts.ServerStats == nil {
		opts.ServerStats = new(protocol.ServerStats)
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = protocol.DefaultMaxConns
	}
	if opts.MaxItemSize <= 0 {
		opts.MaxItemSize = protocol.DefaultMaxItemSize
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2*c.cfg.Timeout + c.cfg.DialTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Handler{c: c, opts: opts, started: opts.Now()}
}

// Stats returns a snapshot of the Handler's counters.
func (h *Handler) Stats() HandlerStats {
	n := &h.n
	s := HandlerStats{
		Commands: map[string]uint64{},
		CmdGet:   n.cmdGet.Load(), GetHits: n.getHits.Load(), GetMisses: n.getMisses.Load(),
		CmdSet: n.cmdSet.Load(), CmdFlush: n.cmdFlush.Load(),
		CmdTouch: n.cmdTouch.Load(), TouchHits: n.touchHits.Load(), TouchMisses: n.touchMisses.Load(),
		DeleteHits: n.deleteHits.Load(), DeleteMisses: n.deleteMisses.Load(),
		IncrHits: n.incrHits.Load(), IncrMisses: n.incrMisses.Load(),
		DecrHits: n.decrHits.Load(), DecrMisses: n.decrMisses.Load(),
		CasHits: n.casHits.Load(), CasMisses: n.casMisses.Load(), CasBadval: n.casBadval.Load(),
		StoreTooLarge: n.storeTooLarge.Load(), OwnerErrors: n.ownerErrors.Load(), ErrorReplies: n.errorReplies.Load(),
	}
	for cmd := range n.commands {
		if v := n.commands[cmd].Load(); v > 0 {
			s.Commands[protocol.Command(cmd).String()] = v
		}
	}
	return s
}

// Serve answers one request; it makes the Handler a protocol.Handler. A
// noreply request is carried out and answered as any other: the
// ResponseWriter drops the reply.
func (h *Handler) Serve(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request) {
	if int(req.Cmd) < len(h.n.commands) {
		h.n.commands[req.Cmd].Add(1)
	}
	switch req.Cmd {
	case protocol.CmdVersion:
		w.WriteLine("VERSION " + h.opts.Version)
		return
	case protocol.CmdVerbosity:
		h.verbosity.Store(int32(min(req.Delay, 2)))
		w.WriteLine("OK")
		return
	case protocol.CmdMetaNoop:
		w.WriteLine("MN")
		return
	case protocol.CmdStats:
		h.serveStats(w, req)
		return
	case protocol.CmdNone, protocol.CmdQuit, protocol.CmdWatch, protocol.CmdPeer:
		// Not served here: the edge publishes no watch stream and is no
		// peer. quit never reaches a Handler.
		w.WriteError(protocol.ErrUnknownCommand)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	switch req.Cmd {
	case protocol.CmdGet, protocol.CmdGets:
		h.serveGet(ctx, w, req)
	case protocol.CmdGat, protocol.CmdGats:
		h.serveGat(ctx, w, req)
	case protocol.CmdSet, protocol.CmdAdd, protocol.CmdReplace, protocol.CmdAppend, protocol.CmdPrepend, protocol.CmdCas:
		h.serveStore(ctx, w, req)
	case protocol.CmdDelete:
		h.serveDelete(ctx, w, req)
	case protocol.CmdIncr, protocol.CmdDecr:
		h.serveArith(ctx, w, req)
	case protocol.CmdTouch:
		h.serveTouch(ctx, w, req)
	case protocol.CmdFlushAll:
		h.serveFlushAll(ctx, w, req)
	default:
		w.WriteError(protocol.ErrUnknownCommand)
	}
}

// apiKey reports whether key can go through the Client's API; the others
// (control bytes, which memcached accepts) are sent to their owner as is.
func apiKey(key []byte) bool { return legalKey(unsafe.String(unsafe.SliceData(key), len(key))) }

// serveGet answers get and gets: the keys the API takes in one GetMulti
// (one request per owner, hot keys from the near cache), the others one by
// one, then the values in the order asked, a duplicated key as often as it
// was asked, as memcached does. Keys whose owner cannot be reached are
// misses, as at a node.
func (h *Handler) serveGet(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request) {
	var found map[string]*Item
	var err error
	if len(req.Keys) == 1 && apiKey(req.Keys[0]) {
		var it *Item
		if it, err = h.c.Get(ctx, string(req.Keys[0])); err == nil {
			found = map[string]*Item{it.Key: it}
		}
	} else {
		found, err = h.getMulti(ctx, req.Keys)
	}
	if h.readFailed(w, err) {
		return
	}
	h.writeValues(w, req, found, &h.n.cmdGet, &h.n.getHits, &h.n.getMisses)
}

// getMulti reads keys: those the API takes with GetMulti, the others from
// their owners directly. Errors are joined.
func (h *Handler) getMulti(ctx context.Context, keys [][]byte) (map[string]*Item, error) {
	api := make([]string, 0, len(keys))
	var raw []string
	for _, k := range keys {
		if apiKey(k) {
			api = append(api, string(k))
		} else {
			raw = append(raw, string(k))
		}
	}
	found, err := h.c.GetMulti(ctx, api)
	if found == nil {
		found = map[string]*Item{}
	}
	errs := []error{err}
	for _, k := range raw {
		it, err := h.c.rawGet(ctx, "gets ", k)
		if it != nil {
			found[k] = it
		}
		errs = append(errs, err)
	}
	return found, errors.Join(errs...)
}

// serveGat answers gat and gats: each key is a GetAndTouch, a few at once.
func (h *Handler) serveGat(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request) {
	exp := int32(req.Exptime)
	prefix := "gats " + strconv.FormatInt(req.Exptime, 10) + " "
	items := make([]*Item, len(req.Keys))
	errs := make([]error, len(req.Keys))
	one := func(i int) {
		k := string(req.Keys[i])
		if apiKey(req.Keys[i]) {
			items[i], errs[i] = h.c.GetAndTouch(ctx, k, exp)
		} else {
			items[i], errs[i] = h.c.rawGet(ctx, prefix, k)
		}
	}
	if len(req.Keys) == 1 {
		one(0)
	} else {
		sem := make(chan struct{}, h.c.cfg.MaxFanout)
		var wg sync.WaitGroup
		for i := range req.Keys {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				one(i)
			})
		}
		wg.Wait()
	}
	if h.readFailed(w, errors.Join(errs...)) {
		return
	}
	found := make(map[string]*Item, len(items))
	for _, it := range items {
		if it != nil {
			found[it.Key] = it
		}
	}
	h.writeValues(w, req, found, &h.n.cmdTouch, &h.n.touchHits, &h.n.touchMisses)
}

// writeValues writes the retrieval reply: found's items in the order of
// req.Keys, counting each key as a hit or a miss.
func (h *Handler) writeValues(w *protocol.ResponseWriter, req *protocol.Request, found map[string]*Item, total, hits, misses *atomic.Uint64) {
	withCas := req.Cmd == protocol.CmdGets || req.Cmd == protocol.CmdGats
	var nhits uint64
	for _, k := range req.Keys {
		if it := found[unsafe.String(unsafe.SliceData(k), len(k))]; it != nil {
			w.WriteValue(k, it.Flags, it.Value, it.CasID, withCas)
			nhits++
		}
	}
	total.Add(uint64(len(req.Keys)))
	hits.Add(nhits)
	misses.Add(uint64(len(req.Keys)) - nhits)
	w.WriteEnd()
}

// readFailed answers a read that failed as a whole and reports whether it
// did. Misses and unreachable owners are not failures (their keys are
// misses, counted as owner errors); an error reply from a server is relayed
// in place of the whole reply, as memcached answers a bad multi-get; any
// other error (no ring yet, timeout, closing) is a SERVER_ERROR.
func (h *Handler) readFailed(w *protocol.ResponseWriter, err error) bool {
	var fatal error
	for _, e := range flatten(err) {
		var se *ServerError
		var ne *NodeError
		switch {
		case errors.As(e, &se):
			h.writeErr(w, e)
			return true
		case errors.As(e, &ne):
			h.n.ownerErrors.Add(1)
		case errors.Is(e, ErrCacheMiss):
		default:
			fatal = e
		}
	}
	if fatal != nil {
		h.writeErr(w, fatal)
		return true
	}
	return false
}

// flatten lists the errors errors.Join put together (or err itself).
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// serveStore answers set, add, replace, append, prepend and cas.
func (h *Handler) serveStore(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request) {
	switch req.Invalid {
	case nil:
	case protocol.ErrTooLarge:
		h.n.storeTooLarge.Add(1)
		if req.Cmd == protocol.CmdSet {
			// memcached unlinks the key of a set refused as too large, so
			// that the old value does not outlive the failed write.
			if apiKey(req.Key()) {
				h.c.Delete(ctx, string(req.Key()))
			} else {
				h.c.forward(ctx, &protocol.Request{Cmd: protocol.CmdDelete, Keys: req.Keys})
			}
		}
		w.WriteError(req.Invalid)
		return
	default: // a bad data chunk still counts as a set, as in memcached
		h.n.cmdSet.Add(1)
		w.WriteError(req.Invalid)
		return
	}
	h.n.cmdSet.Add(1)
	if !apiKey(req.Key()) {
		h.relay(ctx, w, req)
		return
	}
	it := &Item{Key: string(req.Key()), Value: req.Data(), Flags: req.Flags, Expiration: int32(req.Exptime), CasID: req.Cas}
	var err error
	switch req.Cmd {
	case protocol.CmdSet:
		err = h.c.Set(ctx, it)
	case protocol.CmdAdd:
		err = h.c.Add(ctx, it)
	case protocol.CmdReplace:
		err = h.c.Replace(ctx, it)
	case protocol.CmdAppend:
		err = h.c.Append(ctx, it)
	case protocol.CmdPrepend:
		err = h.c.Prepend(ctx, it)
	case protocol.CmdCas:
		err = h.c.CompareAndSwap(ctx, it)
		switch {
		case err == nil:
			h.n.casHits.Add(1)
		case errors.Is(err, ErrCASConflict):
			h.n.casBadval.Add(1)
		case errors.Is(err, ErrCacheMiss):
			h.n.casMisses.Add(1)
		}
	}
	switch {
	case err == nil:
		w.WriteLine("STORED")
	case errors.Is(err, ErrNotStored):
		w.WriteLine("NOT_STORED")
	case errors.Is(err, ErrCASConflict):
		w.WriteLine("EXISTS")
	case errors.Is(err, ErrCacheMiss):
		w.WriteLine("NOT_FOUND")
	default:
		h.writeErr(w, err)
	}
}

// serveDelete answers delete.
func (h *Handler) serveDelete(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request) {
	if !apiKey(req.Key()) {
		h.relay(ctx, w, req)
		return
	}
	switch err := h.c.Delete(ctx, string(req.Key())); {
	case err == nil:
		h.n.deleteHits.Add(1)
		w.WriteLine("DELETED")
	case errors.Is(err, ErrCacheMiss):
		h.n.deleteMisses.Add(1)
		w.WriteLine("NOT_FOUND")
	default:
		h.writeErr(w, err)
	}
}

// serveArith answers incr and decr.
func (h *Handler) serveArith(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request) {
	if !apiKey(req.Key()) {
		h.relay(ctx, w, req)
		return
	}
	incr := req.Cmd == protocol.CmdIncr
	var v uint64
	var err error
	if incr {
		v, err = h.c.Increment(ctx, string(req.Key()), req.Delta)
	} else {
		v, err = h.c.Decrement(ctx, string(req.Key()), req.Delta)
	}
	hits, misses := &h.n.incrHits, &h.n.incrMisses
	if !incr {
		hits, misses = &h.n.decrHits, &h.n.decrMisses
	}
	switch {
	case err == nil:
		hits.Add(1)
		w.WriteUint(v)
	case errors.Is(err, ErrCacheMiss):
		misses.Add(1)
		w.WriteLine("NOT_FOUND")
	default:
		h.writeErr(w, err)
	}
}

// serveTouch answers touch.
func (h *Handler) serveTouch(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request) {
	h.n.cmdTouch.Add(1)
	if !apiKey(req.Key()) {
		h.relay(ctx, w, req)
		return
	}
	switch err := h.c.Touch(ctx, string(req.Key()), int32(req.Exptime)); {
	case err == nil:
		h.n.touchHits.Add(1)
		w.WriteLine("TOUCHED")
	case errors.Is(err, ErrCacheMiss):
		h.n.touchMisses.Add(1)
		w.WriteLine("NOT_FOUND")
	default:
		h.writeErr(w, err)
	}
}

// serveFlushAll sends flush_all, with its delay, to every server.
func (h *Handler) serveFlushAll(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request) {
	h.n.cmdFlush.Add(1)
	var err error
	if req.Delay == 0 {
		err = h.c.FlushAll(ctx)
	} else {
		err = h.c.each(ctx, "flush_all", "flush_all "+strconv.FormatInt(req.Delay, 10)+"\r\n", okReply)
	}
	if err == nil {
		w.WriteLine("OK")
		return
	}
	errs := flatten(err)
	var se *ServerError
	var ne *NodeError
	switch {
	case errors.As(errs[0], &ne):
		h.n.ownerErrors.Add(1)
		w.WriteError(&protocol.ServerError{Msg: "flush_all reached only part of the cluster: " + ne.Node + ": " + shortReason(ne.Err)})
	case errors.As(errs[0], &se):
		h.n.errorReplies.Add(1)
		w.WriteError(&protocol.ServerError{Msg: "flush_all reached only part of the cluster: " + se.Addr + ": " + se.Reply})
	default:
		h.writeErr(w, errs[0])
	}
}

// relay sends a single-key request whose key the API refuses straight to
// the key's owner and relays the reply line.
func (h *Handler) relay(ctx context.Context, w *protocol.ResponseWriter, req *protocol.Request) {
	line, err := h.c.forward(ctx, req)
	if err != nil {
		h.writeErr(w, err)
		return
	}
	w.WriteLine(line)
}

// writeErr answers a call that failed, in memcached's words: a server's
// error reply is relayed as it came, an unreachable owner is named.
func (h *Handler) writeErr(w *protocol.ResponseWriter, err error) {
	var se *ServerError
	var ne *NodeError
	switch {
	case errors.As(err, &se):
		h.n.errorReplies.Add(1)
		w.WriteLine(se.Reply)
	case errors.As(err, &ne):
		h.n.ownerErrors.Add(1)
		w.WriteError(&protocol.ServerError{Msg: "owner " + ne.Node + " unavailable: " + shortReason(ne.Err)})
	case errors.Is(err, ErrMalformedKey):
		w.WriteError(protocol.ErrBadFormat)
	case errors.Is(err, ErrNoServers):
		w.WriteError(&protocol.ServerError{Msg: "no servers: no ring from the seeds yet, or an empty ring"})
	case errors.Is(err, ErrClosed):
		w.WriteError(&protocol.ServerError{Msg: "proxy shutting down"})
	default:
		w.WriteError(&protocol.ServerError{Msg: shortReason(err)})
	}
}

// shortReason is a few words on why a server could not be reached, for a
// SERVER_ERROR line (the node says the same).
func shortReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, ErrServerDown), errors.Is(err, connpool.ErrBackoff):
		return "reconnecting"
	case errors.Is(err, context.Canceled), errors.Is(err, ErrClosed):
		return "proxy shutting down"
	}
	return "connection failed"
}

// forward sends a single-key request other than a retrieval to its key's
// owner as is, bypassing the API's key check, and returns the reply line
// (without "\r\n"). An error reply comes back as a *ServerError.
func (c *Client) forward(ctx context.Context, req *protocol.Request) (string, error) {
	key := string(req.Key())
	_, s, err := c.route(ctx, key)
	if err != nil {
		return "", err
	}
	var line string
	err = c.lineOpOn(ctx, s, req.Cmd.String(), key, func([]byte) bool { return true },
		func(b []byte) []byte { return protocol.AppendRequest(b, req) },
		func(l []byte) error { line = string(l[:len(l)-2]); return nil })
	return line, err
}

// rawGet reads key from its owner with prefix ("gets " or "gats <exptime>
// "), bypassing the API's key check and the near cache. A miss is
// ErrCacheMiss; an owner that cannot be reached is a *NodeError read as a
// miss.
func (c *Client) rawGet(ctx context.Context, prefix, key string) (*Item, error) {
	_, s, err := c.route(ctx, key)
	if err != nil {
		return nil, err
	}
	it, err := c.getFrom(ctx, s, "get", prefix, key)
	var ne *NodeError
	if errors.As(err, &ne) {
		ne.miss = true
	}
	return it, err
}

// serveStats answers stats and its subcommands.
func (h *Handler) serveStats(w *protocol.ResponseWriter, req *protocol.Request) {
	if len(req.Args) == 0 {
		h.writeGeneralStats(w)
		w.WriteEnd()
		return
	}
	switch string(req.Args[0]) {
	case "settings":
		h.writeSettings(w)
		w.WriteEnd()
	case "reset":
		h.reset()
		w.WriteLine("RESET")
	case "hotkeys":
		h.writeHotkeys(w)
		w.WriteEnd()
	case "cluster":
		h.writeCluster(w)
		w.WriteEnd()
	case "items", "slabs", "sizes", "conns":
		w.WriteEnd() // no store here
	default:
		w.WriteError(protocol.ErrUnknownCommand)
	}
}

func (h *Handler) writeGeneralStats(w *protocol.ResponseWriter) {
	now := h.opts.Now()
	n, ss, e := &h.n, h.opts.ServerStats, h.c.EdgeStats()
	u := w.WriteStatUint
	u("pid", uint64(os.Getpid()))
	u("uptime", uint64(max(now.Sub(h.started)/time.Second, 0)))
	u("time", uint64(now.Unix()))
	w.WriteStat("version", h.opts.Version)
	u("pointer_size", 64)
	u("max_connections", uint64(h.opts.MaxConns))
	u("curr_connections", uint64(max(ss.CurrConnections.Load(), 0)))
	u("total_connections", ss.TotalConnections.Load())
	u("rejected_connections", ss.RejectedConnections.Load())
	u("cmd_get", n.cmdGet.Load())
	u("cmd_set", n.cmdSet.Load())
	u("cmd_flush", n.cmdFlush.Load())
	u("cmd_touch", n.cmdTouch.Load())
	u("get_hits", n.getHits.Load())
	u("get_misses", n.getMisses.Load())
	u("delete_misses", n.deleteMisses.Load())
	u("delete_hits", n.deleteHits.Load())
	u("incr_misses", n.incrMisses.Load())
	u("incr_hits", n.incrHits.Load())
	u("decr_misses", n.decrMisses.Load())
	u("decr_hits", n.decrHits.Load())
	u("cas_misses", n.casMisses.Load())
	u("cas_hits", n.casHits.Load())
	u("cas_badval", n.casBadval.Load())
	u("touch_hits", n.touchHits.Load())
	u("touch_misses", n.touchMisses.Load())
	u("store_too_large", n.storeTooLarge.Load())
	u("bytes_read", ss.BytesRead.Load())
	u("bytes_written", ss.BytesWritten.Load())
	u("threads", uint64(runtime.GOMAXPROCS(0)))
	// Not in memcached: the edge's own.
	u("owner_errors", n.ownerErrors.Load())
	u("error_replies", n.errorReplies.Load())
	members := 0
	if r := h.c.Ring(); r != nil {
		members = r.Len()
	}
	u("ring_members", uint64(members))
	u("edge_replicas", uint64(max(e.Replicas, 0)))
	u("edge_bytes", uint64(max(e.Bytes, 0)))
	u("edge_hits", e.Hits)
	u("edge_pushes", e.Pushes)
	u("edge_renewals", e.Renewals)
	u("edge_invalidations", e.Invalidations)
	u("edge_cools", e.Cools)
	u("edge_refreshes", e.Refreshes)
	u("edge_expired", e.Expired)
	u("edge_dropped", e.Dropped)
	u("edge_refused", e.Refused)
	u("edge_streams", uint64(max(e.Streams, 0)))
}

func (h *Handler) writeSettings(w *protocol.ResponseWriter) {
	u := w.WriteStatUint
	u("maxconns", uint64(h.opts.MaxConns))
	u("verbosity", uint64(h.verbosity.Load()))
	u("num_threads", uint64(runtime.GOMAXPROCS(0)))
	w.WriteStat("cas_enabled", "yes")
	u("item_size_max", uint64(h.opts.MaxItemSize))
	w.WriteStat("flush_enabled", "yes")
	w.WriteStat("binding_protocol", "ascii")
	w.WriteStat("edge_name", h.c.cfg.Name)
	u("request_timeout_ms", uint64(h.opts.Timeout/time.Millisecond))
}

// writeHotkeys lists the replicas the near cache holds, most hits first:
// "STAT hotkey <key> node=<owner> hits=<n> lease_ms=<ms>".
func (h *Handler) writeHotkeys(w *protocol.ResponseWriter) {
	for _, r := range h.c.Replicas() {
		w.WriteStat("hotkey", r.Key+" node="+r.Node+" hits="+strconv.FormatUint(r.Hits, 10)+
			" lease_ms="+strconv.FormatInt(max(int64(r.LeaseLeft/time.Millisecond), 0), 10))
	}
}

// writeCluster is the ring the edge routes by: its identity and one line
// per member, "STAT member <name> <addr> partitions=<n>".
func (h *Handler) writeCluster(w *protocol.ResponseWriter) {
	w.WriteStat("self", h.c.cfg.Name)
	v := h.c.view.Load()
	if v == nil {
		w.WriteStatUint("members", 0)
		return
	}
	w.WriteStat("ring_identity", v.r.Identity())
	w.WriteStatUint("ring_generation", v.gen)
	members := v.r.Members()
	w.WriteStatUint("members", uint64(len(members)))
	counts := v.r.PartitionCounts()
	for _, m := range members {
		w.WriteStat("member", m.Name+" "+m.Addr+" partitions="+strconv.Itoa(counts[m.Name]))
	}
}

// reset zeroes the counters "stats reset" covers, as a node does. The
// per-command totals (HandlerStats.Commands) are kept: they feed monotonic
// metrics.
func (h *Handler) reset() {
	n := &h.n
	for _, c := range []*atomic.Uint64{&n.cmdGet, &n.getHits, &n.getMisses, &n.cmdSet, &n.cmdFlush, &n.cmdTouch,
		&n.touchHits, &n.touchMisses, &n.deleteHits, &n.deleteMisses, &n.incrHits, &n.incrMisses, &n.decrHits,
		&n.decrMisses, &n.casHits, &n.casMisses, &n.casBadval, &n.storeTooLarge, &n.ownerErrors, &n.errorReplies} {
		c.Store(0)
	}
}
