package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hotcache/hotcache/client"
	"github.com/hotcache/hotcache/hotspot"
	"github.com/hotcache/hotcache/internal/tlsconf"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
	"github.com/hotcache/hotcache/protocol"
)

// testTLS issues one certificate from a fresh CA and returns the mutual-TLS
// server configuration and the client configuration that presents the
// certificate and trusts the CA (what -tls-cert, -tls-key and -tls-ca make).
func testTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	ca, err := tlsconf.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("hotcache")
	if err != nil {
		t.Fatal(err)
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	return server, &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: ca.Pool()}
}

// serveTLSProxy runs a proxy in-process as cacheproxy does with -tls-*: a
// protocol.Server on a TLS listener whose handler is c's.
func serveTLSProxy(t testing.TB, c *client.Client, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &protocol.Server{Handler: client.NewHandler(c, client.HandlerOptions{}), Logger: slog.New(slog.DiscardHandler)}
	go srv.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// TestTLS_endToEnd runs client -> proxy -> node with mutual TLS on every
// hop: a two-node cluster forwarding to each other over TLS, a proxy whose
// watch and replica streams run over TLS, and an application client
// talking to the proxy and, in cluster mode, to the nodes.
func TestTLS_endToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	srv, cli := testTLS(t)
	cl := nodetest.Start(t, 2, func(i int, cfg *node.Config) {
		cfg.TLS, cfg.PeerTLS = srv, cli
		cfg.HotKeys = hotspot.Config{MinRate: 20, MinHot: time.Hour, MaxWriteRatio: -1, Unsampled: true}
	})
	edge := newClient(t, client.Config{Seeds: []string{cl.Addr(0)}, Name: "tls-proxy", TLS: cli})
	proxy := serveTLSProxy(t, edge, srv)
	app := newClient(t, client.Config{Servers: []string{proxy}, TLS: cli})
	direct := newClient(t, client.Config{Seeds: []string{cl.Addr(1)}, NearCacheBytes: -1, TLS: cli})

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for i := range 20 {
		key := fmt.Sprintf("tls-e2e-%d", i)
		if err := app.Set(ctx, &client.Item{Key: key, Value: []byte("via-proxy-" + key)}); err != nil {
			t.Fatalf("set %s through the proxy: %v", key, err)
		}
		it, err := direct.Get(ctx, key)
		if err != nil || string(it.Value) != "via-proxy-"+key {
			t.Fatalf("get %s directly: %v, %v", key, it, err)
		}
		if err := direct.Set(ctx, &client.Item{Key: key, Value: []byte("direct-" + key)}); err != nil {
			t.Fatalf("set %s directly: %v", key, err)
		}
		it, err = app.Get(ctx, key)
		if err != nil || string(it.Value) != "direct-"+key {
			t.Fatalf("get %s through the proxy: %v, %v", key, it, err)
		}
	}
	// A hot key is pushed to the proxy over its TLS replica stream (a
	// hijacked TLS connection on the node) and then answered there.
	waitFor(t, "a replica of tls-e2e-0 at the proxy", func() (bool, any) {
		for range 50 {
			if _, err := app.Get(ctx, "tls-e2e-0"); err != nil {
				return false, err
			}
		}
		return edge.EdgeStats().Hits > 0, edge.EdgeStats()
	})
}

// TestTLS_refused checks that TLS is not optional: a plaintext client of a
// TLS node, and a TLS client without a certificate when the node requires
// one, get errors rather than replies.
func TestTLS_refused(t *testing.T) {
	srv, cli := testTLS(t)
	n := nodetest.Standalone(t, node.Config{Name: "solo", TLS: srv})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for name, cfg := range map[string]*tls.Config{
		"plaintext":      nil,
		"no certificate": {RootCAs: cli.RootCAs},
		"untrusted CA":   {Certificates: cli.Certificates},
	} {
		c := newClient(t, client.Config{Servers: []string{n.Addr()}, TLS: cfg, Timeout: 2 * time.Second})
		err := c.Set(ctx, &client.Item{Key: "k", Value: []byte("v")})
		var ne *client.NodeError
		if !errors.As(err, &ne) {
			t.Errorf("%s: set: %v, want a *client.NodeError", name, err)
		}
	}
	good := newClient(t, client.Config{Servers: []string{n.Addr()}, TLS: cli})
	if err := good.Set(ctx, &client.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatalf("client with a certificate: %v", err)
	}
}
