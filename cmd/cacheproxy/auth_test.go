package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
	"github.com/hotcache/hotcache/protocol"
)

// TestAuth runs the proxy with -Y in front of a node with authentication:
// the proxy's clients must authenticate, and the proxy authenticates to
// the node as the file's first user.
func TestAuth(t *testing.T) {
	file := filepath.Join(t.TempDir(), "auth")
	if err := os.WriteFile(file, []byte("alice:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(file)
	a, err := protocol.ReadAuthFile(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	n := nodetest.Standalone(t, node.Config{Name: "solo", Authenticate: a.Check})
	p := startInProcess(t, n.Addr(), "-Y", file)
	m := dialMC(t, p.ln.Addr().String())
	// Before authentication even the "mn" sentinel of do is refused: one
	// line at a time.
	one := func(send string) string {
		m.c.SetDeadline(time.Now().Add(waitTimeout))
		if _, err := io.WriteString(m.c, send); err != nil {
			t.Fatal(err)
		}
		l, err := m.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, send := range []string{"get k\r\n", "mn\r\n", "stats\r\n", "add k 0 0 1\r\nv\r\n"} {
		if got := one(send); got != "CLIENT_ERROR unauthenticated\r\n" {
			t.Fatalf("unauthenticated %q: %q", send, got)
		}
	}
	if got := one(string(protocol.AppendAuth(nil, "alice", "wrong"))); got != "CLIENT_ERROR authentication failure\r\n" {
		t.Fatalf("wrong password: %q", got)
	}
	if got := one(string(protocol.AppendAuth(nil, "alice", "secret"))); got != "STORED\r\n" {
		t.Fatalf("login: %q", got)
	}
	waitFor(t, "a set through the proxy", func() (bool, any) {
		got := m.do("set k 0 0 2\r\nhi\r\n")
		return got == "STORED\r\n", got
	})
	if got := m.do("get k\r\n"); got != "VALUE k 0 2\r\nhi\r\nEND\r\n" {
		t.Fatalf("get: %q", got)
	}
}
