package client_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hotcache/hotcache/client"
	"github.com/hotcache/hotcache/hotspot"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
	"github.com/hotcache/hotcache/protocol"
)

func aliceOnly(user, pass []byte) bool { return string(user) == "alice" && string(pass) == "secret" }

// TestAuth_endToEnd runs client -> proxy -> node with ASCII authentication
// on every hop: two nodes that authenticate to each other, a proxy whose
// client authenticates its data connections, watch and replica streams,
// and an application client that authenticates to the proxy. A client
// with a wrong password gets nothing.
func TestAuth_endToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	cl := nodetest.Start(t, 2, func(i int, cfg *node.Config) {
		cfg.Authenticate, cfg.PeerUser, cfg.PeerPassword = aliceOnly, "alice", "secret"
		cfg.HotKeys = hotspot.Config{MinRate: 20, MinHot: time.Hour, MaxWriteRatio: -1, Unsampled: true}
	})
	edge := newClient(t, client.Config{Seeds: []string{cl.Addr(0)}, Name: "auth-proxy", Username: "alice", Password: "secret"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &protocol.Server{Handler: client.NewHandler(edge, client.HandlerOptions{}), Authenticate: aliceOnly, Logger: slog.New(slog.DiscardHandler)}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	app := newClient(t, client.Config{Servers: []string{ln.Addr().String()}, Username: "alice", Password: "secret"})

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := app.Set(ctx, &client.Item{Key: "auth-k", Value: []byte("v")}); err != nil {
		t.Fatalf("set through the proxy: %v", err)
	}
	if it, err := edge.Get(ctx, "auth-k"); err != nil || string(it.Value) != "v" {
		t.Fatalf("get directly: %v, %v", it, err)
	}
	waitFor(t, "a replica of auth-k at the proxy", func() (bool, any) {
		for range 50 {
			if _, err := app.Get(ctx, "auth-k"); err != nil {
				return false, err
			}
		}
		return edge.EdgeStats().Hits > 0, edge.EdgeStats()
	})

	for name, cfg := range map[string]client.Config{
		"wrong password": {Servers: []string{cl.Addr(0)}, Username: "alice", Password: "nope", Timeout: 2 * time.Second},
		"no credentials": {Servers: []string{cl.Addr(0)}, Timeout: 2 * time.Second},
		"proxy, wrong":   {Servers: []string{ln.Addr().String()}, Username: "mallory", Password: "secret", Timeout: 2 * time.Second},
	} {
		c := newClient(t, cfg)
		if err := c.Set(ctx, &client.Item{Key: "auth-k", Value: []byte("evil")}); err == nil {
			t.Errorf("%s: set succeeded", name)
		}
		if it, err := c.Get(ctx, "auth-k"); err == nil {
			t.Errorf("%s: get succeeded: %q", name, it.Value)
		}
	}
	if it, err := edge.Get(ctx, "auth-k"); err != nil || string(it.Value) != "v" {
		t.Fatalf("after the refused clients: %v, %v", it, err)
	}
}

// TestAuth_overTLS checks the two together, as they are meant to be used:
// the client shakes hands first and authenticates inside TLS.
func TestAuth_overTLS(t *testing.T) {
	srv, cli := testTLS(t)
	n := nodetest.Standalone(t, node.Config{Name: "solo", TLS: srv, Authenticate: aliceOnly})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c := newClient(t, client.Config{Servers: []string{n.Addr()}, TLS: cli, Username: "alice", Password: "secret"})
	if err := c.Set(ctx, &client.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatalf("set over TLS with authentication: %v", err)
	}
	if it, err := c.Get(ctx, "k"); err != nil || string(it.Value) != "v" {
		t.Fatalf("get: %v, %v", it, err)
	}
	bad := newClient(t, client.Config{Servers: []string{n.Addr()}, TLS: cli, Username: "alice", Password: "x", Timeout: 2 * time.Second})
	if _, err := bad.Get(ctx, "k"); err == nil {
		t.Fatal("wrong password over TLS: get succeeded")
	}
}
