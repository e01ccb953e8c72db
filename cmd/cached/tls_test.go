package main

import (
	"bufio"
	"crypto/tls"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotcache/hotcache/internal/tlsconf"
)

func TestTLSFlags(t *testing.T) {
	ca, err := tlsconf.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.WriteFiles(t.TempDir(), "node")
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags([]string{"-tls-cert", f.Cert, "-tls-key", f.Key, "-tls-ca", f.CA})
	if err != nil {
		t.Fatal(err)
	}
	server, peer, err := tlsConfigs(o.tls)
	if err != nil {
		t.Fatal(err)
	}
	if len(server.Certificates) != 1 || server.ClientAuth != tls.RequireAndVerifyClientCert || server.ClientCAs == nil {
		t.Errorf("server config with -tls-ca: %d certificates, ClientAuth %v, ClientCAs %v; want mutual TLS", len(server.Certificates), server.ClientAuth, server.ClientCAs)
	}
	if len(peer.Certificates) != 1 || peer.RootCAs == nil {
		t.Errorf("peer config: %d certificates, RootCAs %v; want the node's certificate and -tls-ca", len(peer.Certificates), peer.RootCAs)
	}

	o, err = parseFlags([]string{"-tls-cert", f.Cert, "-tls-key", f.Key})
	if err != nil {
		t.Fatal(err)
	}
	if server, _, err = tlsConfigs(o.tls); err != nil || server.ClientAuth != tls.NoClientCert {
		t.Errorf("without -tls-ca: ClientAuth %v, %v; want no client certificates", server.ClientAuth, err)
	}
	if o, _ = parseFlags(nil); o.tls.Enabled() {
		t.Error("TLS enabled without flags")
	}
	for _, args := range [][]string{
		{"-tls-ca", f.CA},
		{"-tls-cert", f.Cert},
		{"-tls-key", f.Key, "-tls-ca", f.CA},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	o, _ = parseFlags([]string{"-tls-cert", f.Cert, "-tls-key", f.Cert})
	if _, _, err := tlsConfigs(o.tls); err == nil {
		t.Error("a certificate as its own key: no error")
	}
}

// TestTLSServes runs cached with -tls-cert, -tls-key and -tls-ca: a client
// with a certificate from the CA is served, one without is not.
func TestTLSServes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	ca, err := tlsconf.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.WriteFiles(t.TempDir(), "node")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("client")
	if err != nil {
		t.Fatal(err)
	}
	bin := buildCached(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "-l", host, "-p", port, "-gossip", "", "-admin", "",
		"-tls-cert", f.Cert, "-tls-key", f.Key, "-tls-ca", f.CA)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	version := func(cfg *tls.Config) (string, error) {
		d := &net.Dialer{Timeout: time.Second}
		c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("version\r\n")); err != nil {
			return "", err
		}
		return bufio.NewReader(c).ReadString('\n')
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := version(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cert}})
		if err == nil {
			if !strings.HasPrefix(l, "VERSION ") {
				t.Fatalf("version over TLS: %q", l)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cached never served TLS: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if l, err := version(&tls.Config{RootCAs: ca.Pool()}); err == nil {
		t.Fatalf("a client without a certificate was answered %q", l)
	}
}
