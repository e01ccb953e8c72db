package protocol

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// A Handler answers one parsed request. Serve writes the reply (or nothing,
// for a request that memcached answers with nothing) to w before returning.
// The request and its slices are only valid during the call, except
// req.Block. ctx is cancelled when the Server shuts down.
type Handler interface {
	Serve(ctx context.Context, w *ResponseWriter, req *Request)
}

// HandlerFunc lets an ordinary function be a Handler.
type HandlerFunc func(ctx context.Context, w *ResponseWriter, req *Request)

// Serve calls f(ctx, w, req).
func (f HandlerFunc) Serve(ctx context.Context, w *ResponseWriter, req *Request) { f(ctx, w, req) }

// DefaultMaxItemSize is memcached's default -I, 1 MiB.
const DefaultMaxItemSize = 1 << 20

// DefaultMaxConns is memcached's default -c.
const DefaultMaxConns = 1024

// DefaultBlockTimeout is Server.BlockTimeout's default.
const DefaultBlockTimeout = time.Minute

// DefaultMaxPendingBytes is Server.MaxPendingBytes's default.
const DefaultMaxPendingBytes = 64 << 20

// tooManyConns is what memcached writes to a connection over its -c limit.
const tooManyConns = "ERROR Too many open connections\r\n"

// A Server serves the memcache text protocol on a listener. Set its fields
// before Serve; they must not change afterwards.
type Server struct {
	// Handler answers the requests. It must be set.
	Handler Handler
	// MaxItemSize is the largest item accepted, as memcached's -I counts it
	// (see ItemSizeOK). Zero means DefaultMaxItemSize.
	MaxItemSize int
	// MaxConns is the number of connections served at once (memcached's -c).
	// A connection over it is told "ERROR Too many open connections" and
	// closed. Zero means DefaultMaxConns.
	MaxConns int
	// IdleTimeout closes a connection that sends nothing for this long. Zero
	// means never, as in memcached.
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to a client that does not read its
	// replies. Zero means 30 seconds.
	WriteTimeout time.Duration
	// BlockTimeout bounds how long a storage command's data block may take
	// to arrive once its command line has: a client that drips a block
	// (slowloris) is cut off. memcached has no such limit. Zero means
	// DefaultBlockTimeout.
	BlockTimeout time.Duration
	// MaxPendingBytes bounds the bytes of data blocks being received at
	// once, over all connections: a block is allocated only when it fits
	// (a block larger than the budget waits until it is alone). A command
	// that cannot get room within BlockTimeout has its block read and
	// thrown away and is answered "SERVER_ERROR out of memory storing
	// object". Zero means DefaultMaxPendingBytes.
	MaxPendingBytes int64
	// Authenticate, if set, turns on memcached's ASCII authentication (its
	// -Y): until a connection authenticates, every request but quit is
	// answered "CLIENT_ERROR unauthenticated" without reaching the Handler.
	// A connection authenticates with a set (of any key) whose data block is
	// "<user> <password>": STORED when Authenticate accepts them, else
	// "CLIENT_ERROR authentication failure" (or "CLIENT_ERROR bad
	// authentication token format" when the block has no space). It must be
	// safe for concurrent use. Nil means no authentication.
	Authenticate func(user, pass []byte) bool
	// Logger receives connection-level errors. Nil means slog.Default().
	Logger *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	closing   atomic.Bool
	wg        sync.WaitGroup

	stats ServerStats

	pendMu   sync.Mutex
	pendCond *sync.Cond // signalled when pending bytes are released
	pending  int64      // bytes of data blocks being received
}

// ServerStats are the connection counters memcached reports in stats.
type ServerStats struct {
	CurrConnections     atomic.Int64
	TotalConnections    atomic.Uint64
	RejectedConnections atomic.Uint64
	BytesRead           atomic.Uint64
	BytesWritten        atomic.Uint64
}

// Stats returns the server's live counters.
func (s *Server) Stats() *ServerStats { return &s.stats }

func (s *Server) init() {
	s.once.Do(func() {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[net.Conn]struct{})
		s.pendCond = sync.NewCond(&s.pendMu)
	})
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) maxConns() int {
	if s.MaxConns > 0 {
		return s.MaxConns
	}
	return DefaultMaxConns
}

func (s *Server) maxItemSize() int {
	if s.MaxItemSize > 0 {
		return s.MaxItemSize
	}
	return DefaultMaxItemSize
}

// Serve accepts connections on ln until Shutdown, serving each on its own
// goroutine. It returns ErrServerClosed after Shutdown, or the accept error.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	if !s.trackListener(ln) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.untrackListener(ln)
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// EMFILE and the like pass; back off instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger().Warn("accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.stats.TotalConnections.Add(1)
		if !s.trackConn(c) {
			continue
		}
		go func() {
			defer s.wg.Done()
			defer s.untrackConn(c)
			s.serveConn(c)
		}()
	}
}

func (s *Server) trackListener(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) untrackListener(ln net.Listener) {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
}

// trackConn registers c, or refuses it when shutting down or over MaxConns.
func (s *Server) trackConn(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		c.Close()
		return false
	}
	if len(s.conns) >= s.maxConns() {
		s.stats.RejectedConnections.Add(1)
		if _, isTLS := c.(*tls.Conn); isTLS {
			// The refusal needs a handshake first, which a client may
			// stall: not on the accept loop.
			s.wg.Go(func() { refuse(c) })
		} else {
			refuse(c)
		}
		return false
	}
	s.conns[c] = struct{}{}
	s.stats.CurrConnections.Add(1)
	s.wg.Add(1) // under mu, so a Shutdown that has begun cannot be Waiting already
	return true
}

// refuse tells a connection over MaxConns so, within a second, and closes it.
func refuse(c net.Conn) {
	c.SetDeadline(time.Now().Add(time.Second))
	io.WriteString(c, tooManyConns)
	c.Close()
}

func (s *Server) untrackConn(c net.Conn) {
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.stats.CurrConnections.Add(-1)
	}
	s.mu.Unlock()
}

// CloseConnections closes every connection being served (not those taken
// over with Hijack); their requests in progress finish or fail, and their
// clients reconnect. The listeners keep accepting.
func (s *Server) CloseConnections() {
	s.init()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}

// release forgets a hijacked connection without closing it.
func (s *Server) release(c net.Conn) { s.untrackConn(c) }

// Shutdown stops accepting, lets each connection finish the request it is
// serving, closes it, and waits for every goroutine the Server started. When
// ctx ends first, the remaining connections are closed at once and ctx's
// error is returned. Shutdown may be called more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.SetReadDeadline(time.Now()) // wakes an idle reader; a busy one finishes first
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// serveConn runs one connection's read-parse-serve loop.
func (s *Server) serveConn(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		// A TLS connection (from a listener made by tls.NewListener)
		// shakes hands first, within BlockTimeout: a client that stalls
		// it is cut off, as one that stalls a data block is.
		ctx, cancel := context.WithTimeout(s.ctx, s.blockTimeout())
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			if !s.closing.Load() {
				s.logger().Debug("TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
			}
			c.Close()
			return
		}
	}
	rd := newReader(c)
	w := newResponseWriter(c, rd, s.writeTimeout())
	req := new(Request)
	authed := s.Authenticate == nil
	defer func() {
		s.unreserve(req.reserved)
		s.countBytes(rd, w)
		if !w.hijacked {
			c.Close()
		} else {
			s.release(c)
		}
	}()
	for {
		if s.IdleTimeout > 0 && rd.buffered() == 0 {
			c.SetReadDeadline(time.Now().Add(s.IdleTimeout))
		} else if req.deadline {
			c.SetReadDeadline(time.Time{}) // the last block's deadline is over
		}
		req.deadline = false
		if s.closing.Load() && rd.buffered() == 0 {
			w.Flush()
			return
		}
		err := s.readRequest(c, rd, req)
		if err != nil {
			if !s.answerError(w, req, err) {
				w.Flush()
				return
			}
		} else if req.Cmd == CmdQuit {
			w.Flush()
			return
		} else if !authed {
			authed = s.authenticate(w, req)
		} else if !s.dispatch(w, req) {
			return
		}
		if w.hijacked {
			return
		}
		if rd.buffered() == 0 || len(w.buf) >= flushThreshold {
			if w.Flush() != nil {
				return
			}
			s.countBytes(rd, w)
		}
	}
}

// authenticate answers a request on a connection that has not
// authenticated yet, as memcached's ASCII authentication does, and reports
// whether it authenticated the connection.
func (s *Server) authenticate(w *ResponseWriter, req *Request) bool {
	w.quiet = req.NoReply
	defer func() { w.quiet = false }()
	if req.Cmd != CmdSet || req.Invalid != nil || req.Block == nil {
		w.WriteLine("CLIENT_ERROR unauthenticated")
		return false
	}
	user, pass, ok := bytes.Cut(req.Data(), []byte(" "))
	if !ok {
		w.WriteLine("CLIENT_ERROR bad authentication token format")
		return false
	}
	if !s.Authenticate(user, pass) {
		w.WriteLine("CLIENT_ERROR authentication failure")
		return false
	}
	w.WriteLine("STORED")
	return true
}

// countBytes moves a connection's byte counts into the server's stats.
func (s *Server) countBytes(rd *reader, w *ResponseWriter) {
	s.stats.BytesRead.Add(uint64(rd.n))
	s.stats.BytesWritten.Add(uint64(w.n))
	rd.n, w.n = 0, 0
}

func (s *Server) blockTimeout() time.Duration {
	if s.BlockTimeout > 0 {
		return s.BlockTimeout
	}
	return DefaultBlockTimeout
}

func (s *Server) maxPending() int64 {
	if s.MaxPendingBytes > 0 {
		return s.MaxPendingBytes
	}
	return DefaultMaxPendingBytes
}

// reserve waits until n more bytes of data blocks fit in MaxPendingBytes,
// or until deadline. A block larger than the whole budget is let through
// when nothing else is pending.
func (s *Server) reserve(n int64, deadline time.Time) bool {
	s.init()
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	var timer *time.Timer
	for s.pending > 0 && s.pending+n > s.maxPending() {
		if !time.Now().Before(deadline) {
			return false
		}
		if timer == nil { // wake every waiter at the deadline to look again
			timer = time.AfterFunc(time.Until(deadline), func() {
				s.pendMu.Lock()
				s.pendCond.Broadcast()
				s.pendMu.Unlock()
			})
			defer timer.Stop()
		}
		s.pendCond.Wait()
	}
	s.pending += n
	return true
}

// unreserve returns n bytes reserved with reserve.
func (s *Server) unreserve(n int64) {
	if n == 0 {
		return
	}
	s.pendMu.Lock()
	s.pending -= n
	s.pendCond.Broadcast()
	s.pendMu.Unlock()
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return 30 * time.Second
}

// readRequest reads and parses the next request, including a storage
// command's data block; c, when not nil, gets the block's read deadline.
func (s *Server) readRequest(c net.Conn, rd *reader, req *Request) error {
	s.unreserve(req.reserved)
	req.reset()
	line, err := rd.readLine()
	if err != nil {
		return err
	}
	dataLen, err := parseLine(trimLine(line), req)
	if err != nil || !req.Cmd.IsStorage() {
		return err
	}
	key := req.Keys[0]
	if !ItemSizeOK(len(key), req.Flags, dataLen, s.maxItemSize()) {
		req.Invalid = ErrTooLarge
		req.Keys[0] = append([]byte(nil), key...) // discard reuses the buffer
		return rd.discard(dataLen + 2)
	}
	// The block must arrive within BlockTimeout, and is allocated only
	// once it fits in MaxPendingBytes.
	deadline := time.Now().Add(s.blockTimeout())
	if c != nil && rd.buffered() < dataLen+2 {
		c.SetReadDeadline(deadline)
		req.deadline = true
	}
	size := int64(len(key) + dataLen + 2)
	if !s.reserve(size, deadline) {
		req.Invalid = ErrOutOfMemory
		req.Keys[0] = append([]byte(nil), key...)
		return rd.discard(dataLen + 2)
	}
	req.reserved = size
	block := make([]byte, len(key)+dataLen+2)
	copy(block, key)
	if err := rd.readFull(block[len(key):]); err != nil {
		return err
	}
	req.Block, req.keyLen = block, len(key)
	req.Keys[0] = block[:len(key):len(key)]
	if block[len(block)-2] != '\r' || block[len(block)-1] != '\n' {
		req.Block = nil
		req.Invalid = ErrBadDataChunk
	}
	return nil
}

// answerError replies to a request that failed to parse. It reports false
// when the connection must close.
func (s *Server) answerError(w *ResponseWriter, req *Request, err error) bool {
	var ce *ClientError
	switch {
	case errors.Is(err, ErrUnknownCommand):
	case errors.As(err, &ce):
	default:
		if !errors.Is(err, errCloseConn) && !isClosedErr(err) && !s.closing.Load() {
			s.logger().Debug("connection read failed", "remote", w.conn.RemoteAddr().String(), "err", err)
		}
		return false
	}
	w.quiet = req.NoReply
	w.WriteError(err)
	w.quiet = false
	return true
}

func isClosedErr(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &ne) && ne.Timeout())
}

// dispatch hands req to the Handler, turning a panic into a SERVER_ERROR and
// a closed connection. It reports false when the connection must close.
func (s *Server) dispatch(w *ResponseWriter, req *Request) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			s.logger().Error("handler panic", "cmd", req.Cmd.String(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !w.hijacked {
				w.quiet = false
				w.WriteLine("SERVER_ERROR internal error")
				w.Flush()
			}
			ok = false
		}
	}()
	w.quiet = req.NoReply
	s.Handler.Serve(s.ctx, w, req)
	w.quiet = false
	return true
}
