package connpool

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hotcache/hotcache/protocol"
)

// DialTLS returns a Dial func that opens a connection with dial (nil means
// a net.Dialer on "tcp"), wraps it with tls.Client(cfg) and completes the
// handshake under the same ctx, so that a dial timeout bounds both. When
// cfg has no ServerName, the host of addr is used (an IP address is then
// verified against the certificate's IP SANs). cfg must not change after
// the call.
func DialTLS(dial func(ctx context.Context, addr string) (net.Conn, error), cfg *tls.Config) func(ctx context.Context, addr string) (net.Conn, error) {
	if dial == nil {
		var d net.Dialer
		dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		nc, err := dial(ctx, addr)
		if err != nil {
			return nil, err
		}
		c := cfg
		if c.ServerName == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				host = addr
			}
			c = cfg.Clone()
			c.ServerName = host
		}
		tc := tls.Client(nc, c)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		return tc, nil
	}
}

// DialAuth returns a Dial func that opens a connection with dial (nil means
// a net.Dialer on "tcp") and authenticates it as user, as memcached's ASCII
// authentication does (protocol.AppendAuth), under the same ctx. Wrap it
// around DialTLS, not inside it, so that the password travels encrypted.
func DialAuth(dial func(ctx context.Context, addr string) (net.Conn, error), user, pass string) func(ctx context.Context, addr string) (net.Conn, error) {
	if dial == nil {
		var d net.Dialer
		dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	req := protocol.AppendAuth(nil, user, pass)
	return func(ctx context.Context, addr string) (net.Conn, error) {
		nc, err := dial(ctx, addr)
		if err != nil {
			return nil, err
		}
		if err := authenticate(ctx, nc, req); err != nil {
			nc.Close()
			return nil, err
		}
		return nc, nil
	}
}

// authenticate sends req and reads its one-line reply byte by byte, so
// that nothing after it is consumed.
func authenticate(ctx context.Context, nc net.Conn, req []byte) error {
	nc.SetDeadline(deadline(time.Now(), ctx, 0))
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(aLongTimeAgo) })
	defer stop()
	if _, err := nc.Write(req); err != nil {
		return fmt.Errorf("authenticate: %w", err)
	}
	var line []byte
	var b [1]byte
	for len(line) < 256 && (len(line) == 0 || line[len(line)-1] != '\n') {
		if _, err := io.ReadFull(nc, b[:]); err != nil {
			return fmt.Errorf("authenticate: %w", err)
		}
		line = append(line, b[0])
	}
	if !protocol.IsAuthOK(line) {
		return fmt.Errorf("authentication refused: %q", bytes.TrimRight(line, "\r\n"))
	}
	if !stop() {
		return ctx.Err()
	}
	return nc.SetDeadline(time.Time{})
}
