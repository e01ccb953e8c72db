package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hotcache/hotcache/internal/tlsconf"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

func TestParseFlags_tls(t *testing.T) {
	o, err := parseFlags([]string{"-seeds", "a:1", "-tls-cert", "c.pem", "-tls-key", "k.pem", "-tls-ca", "ca.pem"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.tls != (tlsconf.Files{Cert: "c.pem", Key: "k.pem", CA: "ca.pem"}) {
		t.Errorf("tls files: %+v", o.tls)
	}
	for _, args := range [][]string{
		{"-seeds", "a:1", "-tls-ca", "ca.pem"},
		{"-seeds", "a:1", "-tls-cert", "c.pem"},
		{"-seeds", "a:1", "-tls-key", "k.pem"},
	} {
		var ue usageError
		if _, err := parseFlags(args, io.Discard); !errors.As(err, &ue) {
			t.Errorf("parseFlags(%q) = %v, want a usage error", args, err)
		}
	}
}

// TestTLS runs the proxy with -tls-cert, -tls-key and -tls-ca in front of
// a node with mutual TLS: a client with a certificate from the CA sets and
// gets through it (TLS on both hops); one without a certificate is refused.
func TestTLS(t *testing.T) {
	ca, err := tlsconf.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	nf, err := ca.WriteFiles(dir, "node")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := tlsconf.Server(nf)
	if err != nil {
		t.Fatal(err)
	}
	n := nodetest.Standalone(t, node.Config{Name: "solo", TLS: srv})
	pf, err := ca.WriteFiles(dir, "proxy")
	if err != nil {
		t.Fatal(err)
	}
	p := startInProcess(t, n.Addr(), "-tls-cert", pf.Cert, "-tls-key", pf.Key, "-tls-ca", pf.CA)
	cert, err := ca.Issue("app")
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", p.ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m := &mcConn{t: t, c: c, r: bufio.NewReader(c)}
	waitFor(t, "a set through the TLS proxy", func() (bool, any) {
		got := m.do("set k 0 0 2\r\nhi\r\n")
		return got == "STORED\r\n", got
	})
	if got := m.do("get k\r\n"); got != "VALUE k 0 2\r\nhi\r\nEND\r\n" {
		t.Fatalf("get through the TLS proxy: %q", got)
	}

	anon, err := tls.Dial("tcp", p.ln.Addr().String(), &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		return // refused in the handshake
	}
	defer anon.Close()
	anon.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(anon, "get k\r\n")
	if b, err := io.ReadAll(anon); err == nil || len(b) > 0 {
		t.Fatalf("client without a certificate: read %q, %v; want a TLS error", b, err)
	}
	plain, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(plain, "get k\r\n")
	if b, _ := io.ReadAll(plain); len(b) > 0 && b[0] != 0x15 { // 0x15: a TLS alert record
		t.Fatalf("plaintext client was answered %q", b)
	}
}
