//go:build unix

package connpool

import (
	"crypto/tls"
	"errors"
	"syscall"
)

// peerClosed looks at the socket without waiting: a pending EOF, error or
// unsolicited byte means the connection cannot carry a new request. It
// reports ok false when the connection is not a socket it can look at.
//
// Over TLS it looks at the socket under the TLS layer: nothing to read is
// still the healthy case, but pending bytes may be a record the TLS layer
// consumes by itself (a session ticket, a key update) or a close_notify, so
// then it reports ok false and the caller reads through TLS to tell.
func (c *Conn) peerClosed() (closed, ok bool) {
	nc, isTLS := c.nc.(*tls.Conn)
	if isTLS {
		closed, ok = sockClosed(nc.NetConn())
		if closed {
			return false, false
		}
		return closed, ok
	}
	return sockClosed(c.nc)
}

func sockClosed(c any) (closed, ok bool) {
	sc, isSock := c.(syscall.Conn)
	if !isSock {
		return false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	var n int
	var rerr error
	var b [1]byte
	if err := rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for readiness
	}); err != nil {
		return true, true
	}
	if errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK) {
		return false, true // open, nothing to read: the healthy case
	}
	_ = n // n == 0 is EOF, n > 0 bytes nobody asked for: either way unusable
	return true, true
}
