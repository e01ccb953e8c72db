package node_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hotcache/hotcache/internal/tlsconf"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

// tlsConfigs issues a certificate from a fresh CA and returns the server
// configuration (mutual TLS when mutual) and the client configuration that
// presents the same certificate and trusts the CA, as cached builds them
// from -tls-cert, -tls-key and -tls-ca.
func tlsConfigs(t testing.TB, mutual bool) (server, client *tls.Config) {
	t.Helper()
	ca, err := tlsconf.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("node")
	if err != nil {
		t.Fatal(err)
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}}
	if mutual {
		server.ClientCAs, server.ClientAuth = ca.Pool(), tls.RequireAndVerifyClientCert
	}
	return server, &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: ca.Pool()}
}

// dialTLS is dial over TLS.
func dialTLS(t testing.TB, addr string, cfg *tls.Config) *conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return &conn{t: t, c: c, r: bufio.NewReader(c)}
}

// ownedBy returns a key that node i of c owns.
func ownedBy(t *testing.T, c *nodetest.Cluster, i int) string {
	t.Helper()
	for k := range 10_000 {
		key := fmt.Sprintf("tls:%d", k)
		if o, ok := c.Node(0).Ring().Owner([]byte(key)); ok && o.Name == c.Node(i).Name() {
			return key
		}
	}
	t.Fatalf("no key owned by n%d", i)
	return ""
}

// TestTLSClusterForwards runs a two-node cluster with mutual TLS on the
// memcache ports: clients with a certificate are served, and each node
// forwards to the other over TLS.
func TestTLSClusterForwards(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	srv, cli := tlsConfigs(t, true)
	c := nodetest.Start(t, 2, func(i int, cfg *node.Config) { cfg.TLS, cfg.PeerTLS = srv, cli })
	a, b := dialTLS(t, c.Addr(0), cli), dialTLS(t, c.Addr(1), cli)
	for _, owner := range []int{0, 1} {
		key := ownedBy(t, c, owner)
		if got := a.set(key, "v-"+key, 0); got != "STORED" {
			t.Fatalf("set %s (owned by n%d) through n0: %q", key, owner, got)
		}
		if v, ok := b.get(key); !ok || v != "v-"+key {
			t.Fatalf("get %s (owned by n%d) through n1: %q, %v", key, owner, v, ok)
		}
	}
	if got := a.cmd("version"); !strings.HasPrefix(got, "VERSION ") {
		t.Fatalf("version over TLS: %q", got)
	}
}

// TestTLSNodeRefusesPlaintext checks that a TLS node speaks nothing but
// TLS: a plaintext client gets no reply, only a TLS alert or a close.
func TestTLSNodeRefusesPlaintext(t *testing.T) {
	srv, _ := tlsConfigs(t, false)
	n := startNode(t, node.Config{TLS: srv})
	c := dial(t, n.Addr())
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	c.send("version\r\n")
	b, err := io.ReadAll(c.r)
	if strings.Contains(string(b), "VERSION") {
		t.Fatalf("plaintext client was answered: %q", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("want an alert and a close, got %v (read %q)", err, b)
	}
}

// TestTLSPeerWithoutTLSCannotForward runs a TLS cluster in which n1 lacks
// PeerTLS: it is served over TLS, but its forwards to n0 fail, while n0's
// forwards to it work.
func TestTLSPeerWithoutTLSCannotForward(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	srv, cli := tlsConfigs(t, false)
	c := nodetest.Start(t, 2, func(i int, cfg *node.Config) {
		cfg.TLS = srv
		if i == 0 {
			cfg.PeerTLS = cli
		}
	})
	a, b := dialTLS(t, c.Addr(0), cli), dialTLS(t, c.Addr(1), cli)
	k0, k1 := ownedBy(t, c, 0), ownedBy(t, c, 1)
	if got := a.set(k1, "v", 0); got != "STORED" {
		t.Fatalf("n0 forwarding to n1 over TLS: %q", got)
	}
	if got := b.set(k0, "v", 0); !strings.HasPrefix(got, "SERVER_ERROR") {
		t.Fatalf("n1 forwarding to TLS n0 in plaintext: %q, want SERVER_ERROR", got)
	}
	if v, ok := a.get(k0); ok {
		t.Fatalf("the refused forward stored %s = %q", k0, v)
	}
}

// TestTLSMutualRefusesClientWithoutCert checks -tls-ca: a client that
// trusts the node but has no certificate gets nothing served.
func TestTLSMutualRefusesClientWithoutCert(t *testing.T) {
	srv, cli := tlsConfigs(t, true)
	n := startNode(t, node.Config{TLS: srv})
	anon := &tls.Config{RootCAs: cli.RootCAs}
	tc, err := tls.Dial("tcp", n.Addr(), anon)
	if err != nil {
		return // refused during the handshake (TLS 1.2)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	// With TLS 1.3 the client finishes first; the refusal comes on read.
	io.WriteString(tc, "version\r\n")
	b, err := io.ReadAll(tc)
	if err == nil || strings.Contains(string(b), "VERSION") {
		t.Fatalf("client without a certificate: read %q, %v; want a TLS error", b, err)
	}
	// The same node serves a client with a certificate.
	if got := dialTLS(t, n.Addr(), cli).cmd("version"); !strings.HasPrefix(got, "VERSION ") {
		t.Fatalf("client with a certificate: %q", got)
	}
}
