package main

import (
	"strings"
	"testing"

	"github.com/hotcache/hotcache/internal/tlsconf"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

// TestTLS runs cachectl against a two-node cluster with mutual TLS: with
// -tls-ca, -tls-cert and -tls-key every command works (members and ring
// over a TLS watch stream, stats, set and get through the client); without
// a certificate, or without TLS, it fails.
func TestTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	t.Parallel()
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
	peer, err := tlsconf.Client(nf)
	if err != nil {
		t.Fatal(err)
	}
	c := nodetest.Start(t, 2, func(i int, cfg *node.Config) { cfg.TLS, cfg.PeerTLS = srv, peer })
	cf, err := ca.WriteFiles(dir, "cachectl")
	if err != nil {
		t.Fatal(err)
	}
	seed := "-seeds=" + c.Addr(0)
	withTLS := []string{seed, "-tls-ca", cf.CA, "-tls-cert", cf.Cert, "-tls-key", cf.Key}
	if out := ok(t, append(withTLS, "members")...); !strings.Contains(out, c.Addr(1)) {
		t.Errorf("members over TLS: %q lacks n1 (%s)", out, c.Addr(1))
	}
	ok(t, append(withTLS, "ring")...)
	ok(t, append(withTLS, "stats")...)
	ok(t, append(withTLS, "set", "tlskey", "tlsvalue")...)
	if out := ok(t, append(withTLS, "get", "tlskey")...); !strings.Contains(out, "tlsvalue") {
		t.Errorf("get over TLS: %q", out)
	}
	for _, args := range [][]string{
		{seed, "-timeout", "2s", "members"},
		{seed, "-timeout", "2s", "-tls-ca", cf.CA, "members"},
	} {
		if r := cachectl(t, args...); r.code != exitFailure {
			t.Errorf("cachectl %q: %v; want exit 1", args, r)
		}
	}
	if r := cachectl(t, seed, "-tls-ca", cf.CA, "-tls-cert", cf.Cert, "members"); r.code != exitUsage {
		t.Errorf("-tls-cert without -tls-key: %v; want exit 2", r)
	}
}
