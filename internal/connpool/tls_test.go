package connpool

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hotcache/hotcache/internal/tlsconf"
	"github.com/hotcache/hotcache/protocol"
)

// startTLSServer serves "mn" over TLS, closing connections idle for idle.
func startTLSServer(t *testing.T, idle time.Duration) (addr string, client *tls.Config) {
	t.Helper()
	ca, err := tlsconf.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("server")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &protocol.Server{IdleTimeout: idle, Logger: slog.New(slog.DiscardHandler),
		Handler: protocol.HandlerFunc(func(_ context.Context, w *protocol.ResponseWriter, req *protocol.Request) {
			w.WriteLine("MN")
		})}
	go srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ln.Addr().String(), &tls.Config{RootCAs: ca.Pool()}
}

// TestDialTLS checks a pool of TLS connections: requests go through, an
// idle healthy connection is not taken for closed (even with the server's
// session tickets unread under TLS), and one the server closed is.
func TestDialTLS(t *testing.T) {
	addr, cfg := startTLSServer(t, 300*time.Millisecond)
	p := newPool(t, Config{Dial: DialTLS(nil, cfg), HealthAfter: -1})
	c := mustGet(t, p, addr)
	if _, ok := c.nc.(*tls.Conn); !ok {
		t.Fatalf("pooled conn is a %T, want *tls.Conn", c.nc)
	}
	if c.PeerClosed() {
		t.Fatal("a fresh TLS connection looks closed")
	}
	if err := mn(c); err != nil {
		t.Fatal(err)
	}
	if c.PeerClosed() {
		t.Fatal("an idle healthy TLS connection looks closed")
	}
	waitFor(t, "the server's idle close to be seen", func() (bool, any) { return c.PeerClosed(), nil })
	p.Put(c, nil)
}

// TestDialTLS_plaintextServer checks that a TLS dial to a plaintext
// memcache server fails in the handshake (here by its timeout: the server
// waits for the end of a "line" that never comes).
func TestDialTLS_plaintextServer(t *testing.T) {
	ts := startServer(t)
	ca, err := tlsconf.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: ca.Pool()}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	nc, err := DialTLS(nil, cfg)(ctx, ts.addr)
	if err == nil {
		nc.Close()
		t.Fatal("TLS dial to a plaintext server succeeded")
	}
}
