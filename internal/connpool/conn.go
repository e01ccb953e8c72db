package connpool

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// aLongTimeAgo is a deadline in the past: it wakes a blocked Read or Write.
var aLongTimeAgo = time.Unix(1, 0)

// A Conn is one pooled connection, owned by the goroutine that got it from
// Get until it gives it back with Put. Arm a deadline with SetDeadline before
// each request, write it to W, Flush, and read the reply from R.
type Conn struct {
	// R buffers the replies read from the server.
	R *bufio.Reader
	// W buffers the requests written to the server; Flush sends them.
	W *bufio.Writer

	nc net.Conn
	a  *addrPool

	// stop unregisters the ctx watcher armed by SetDeadline, and fired is
	// done when that watcher can no longer run; both owned by the holder.
	stop  func() bool
	fired sync.WaitGroup

	idleSince time.Time // guarded by a.mu; when the Conn was last Put
	returned  bool      // guarded by a.mu; set by Put, cleared by Get
	abort     bool      // owned by the holder; set by Put after an I/O failure
}

// abortClose closes nc with a TCP reset rather than a FIN (SO_LINGER 0), so
// that the kernel drops what the server has not yet acknowledged instead of
// retransmitting it. A request that timed out while the network was cut
// must not reach the server when the network heals, long after its caller
// gave up on it and perhaps wrote a newer value through another node.
func abortClose(nc net.Conn) error {
	raw := nc
	for {
		u, ok := raw.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		raw = u.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	return nc.Close()
}

func newConn(nc net.Conn, a *addrPool) *Conn {
	return &Conn{R: bufio.NewReader(nc), W: bufio.NewWriter(nc), nc: nc, a: a}
}

// Addr returns the address the connection was dialed to, as passed to Get.
func (c *Conn) Addr() string { return c.a.addr }

// SetDeadline arms the connection's read and write deadline for one request:
// ioTimeout from now or ctx's deadline, whichever is sooner (neither means
// none). If ctx is cancelled while armed, the deadline is moved to the past so
// that blocked I/O returns at once with a timeout, which Put does not reuse.
// Call it before every request, as gomemcache does; the next call or Put
// disarms it. It returns ctx's error, arming nothing, when ctx has ended.
func (c *Conn) SetDeadline(ctx context.Context, ioTimeout time.Duration) error {
	c.disarm()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.nc.SetDeadline(deadline(time.Now(), ctx, ioTimeout)); err != nil {
		return err
	}
	if ctx.Done() != nil {
		// NB: armed after the deadline is set, so a cancellation in between
		// still wins.
		c.fired.Add(1)
		c.stop = context.AfterFunc(ctx, func() {
			defer c.fired.Done()
			c.nc.SetDeadline(aLongTimeAgo)
		})
	}
	return nil
}

// disarm unregisters the ctx watcher of SetDeadline. If it already fired, it
// waits for it to finish, so that it cannot move the deadline of the next
// request.
func (c *Conn) disarm() {
	if c.stop == nil {
		return
	}
	if c.stop() {
		c.fired.Done()
	} else {
		c.fired.Wait()
	}
	c.stop = nil
}

// deadline is now+timeout or ctx's deadline, whichever is sooner; zero when
// there is neither.
func deadline(now time.Time, ctx context.Context, timeout time.Duration) time.Time {
	var dl time.Time
	if timeout > 0 {
		dl = now.Add(timeout)
	}
	if d, ok := ctx.Deadline(); ok && (dl.IsZero() || d.Before(dl)) {
		dl = d
	}
	return dl
}

// settle disarms the ctx watcher and reports whether the connection is clean:
// no bytes are left unread or unsent.
func (c *Conn) settle() bool {
	c.disarm()
	return c.R.Buffered() == 0 && c.W.Buffered() == 0
}

// roundTrip writes req and reads one line back within ctx and timeout.
func (c *Conn) roundTrip(ctx context.Context, timeout time.Duration, req []byte) ([]byte, error) {
	if err := c.nc.SetDeadline(deadline(time.Now(), ctx, timeout)); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(aLongTimeAgo) })
	c.W.Write(req)
	err := c.W.Flush()
	var line []byte
	if err == nil {
		line, err = c.R.ReadSlice('\n')
	}
	if !stop() && err == nil {
		err = ctx.Err() // the watcher fired: the deadline is unusable
	}
	if err == nil {
		err = c.nc.SetDeadline(time.Time{})
	}
	return line, err
}

// hello sends the handshake line and checks the one-line reply.
func (c *Conn) hello(ctx context.Context, hello []byte) error {
	if len(hello) == 0 {
		return nil
	}
	line, err := c.roundTrip(ctx, 0, hello)
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	for _, p := range [][]byte{[]byte("ERROR"), []byte("CLIENT_ERROR"), []byte("SERVER_ERROR")} {
		if bytes.HasPrefix(line, p) {
			return fmt.Errorf("hello refused: %q", bytes.TrimRight(line, "\r\n"))
		}
	}
	return nil
}

// PeerClosed reports, without waiting, whether an idle connection can no
// longer carry a request: the server has closed it (e.g. its idle timeout),
// it failed, or bytes nobody asked for are waiting. On a connection whose
// socket it cannot inspect (not a unix socket) it reads with a 1 ms
// deadline instead. Call it only while nobody else reads the connection; it
// clears the connection's deadline.
func (c *Conn) PeerClosed() bool {
	if c.R.Buffered() > 0 {
		return true
	}
	if closed, ok := c.peerClosed(); ok {
		return closed
	}
	c.nc.SetReadDeadline(time.Now().Add(time.Millisecond))
	_, err := c.R.Peek(1)
	c.nc.SetReadDeadline(time.Time{})
	var ne net.Error
	return !(err != nil && errors.As(err, &ne) && ne.Timeout())
}

// check is the health check: "mn" must be answered "MN" within timeout.
func (c *Conn) check(ctx context.Context, timeout time.Duration) error {
	if c.R.Buffered() > 0 {
		return errors.New("connpool: health check: unsolicited bytes on an idle connection")
	}
	line, err := c.roundTrip(ctx, timeout, []byte("mn\r\n"))
	if err != nil {
		return fmt.Errorf("connpool: health check: %w", err)
	}
	if string(line) != "MN\r\n" {
		return fmt.Errorf("connpool: health check: got %q, want \"MN\"", line)
	}
	return nil
}
