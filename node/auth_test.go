package node_test

import (
	"strings"
	"testing"

	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
	"github.com/hotcache/hotcache/protocol"
)

// authCheck accepts alice/secret only.
func authCheck(user, pass []byte) bool { return string(user) == "alice" && string(pass) == "secret" }

// login authenticates c as user.
func (c *conn) login(user, pass string) string {
	c.send(string(protocol.AppendAuth(nil, user, pass)))
	return c.line()
}

// TestAuthCluster runs a two-node cluster with ASCII authentication (-Y):
// an unauthenticated connection can do nothing, a wrong password is
// refused, and authenticated clients are served while the nodes, which
// authenticate to each other, forward both ways.
func TestAuthCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := nodetest.Start(t, 2, func(i int, cfg *node.Config) {
		cfg.Authenticate, cfg.PeerUser, cfg.PeerPassword = authCheck, "alice", "secret"
	})
	anon := dial(t, c.Addr(0))
	for _, cmd := range []string{"get k", "gets k", "add k 0 0 1\r\nv", "delete k", "stats", "version", "mn",
		"watch edge 1", "peer n9", "flush_all", "touch k 0"} {
		if got := anon.cmd(cmd); got != "CLIENT_ERROR unauthenticated" {
			t.Errorf("unauthenticated %q: %q", cmd, got)
		}
	}
	// A set is the authentication exchange, as in memcached: it stores nothing.
	if got := anon.cmd("set k 0 0 1\r\nv"); got != "CLIENT_ERROR bad authentication token format" {
		t.Errorf("unauthenticated set: %q", got)
	}
	if got := anon.login("alice", "wrong"); got != "CLIENT_ERROR authentication failure" {
		t.Errorf("wrong password: %q", got)
	}
	if got := anon.cmd("get k"); got != "CLIENT_ERROR unauthenticated" {
		t.Errorf("after a wrong password: %q", got)
	}

	a, b := dial(t, c.Addr(0)), dial(t, c.Addr(1))
	for _, x := range []*conn{a, b} {
		if got := x.login("alice", "secret"); got != "STORED" {
			t.Fatalf("login: %q", got)
		}
	}
	for _, owner := range []int{0, 1} {
		key := ownedBy(t, c, owner)
		if got := a.set(key, "v-"+key, 0); got != "STORED" {
			t.Fatalf("set %s (owned by n%d) through n0: %q", key, owner, got)
		}
		if v, ok := b.get(key); !ok || v != "v-"+key {
			t.Fatalf("get %s (owned by n%d) through n1: %q, %v", key, owner, v, ok)
		}
	}
}

// TestAuthPeerWithoutCredentials runs an auth cluster in which n1 has no
// peer credentials: its forwards to n0 are refused.
func TestAuthPeerWithoutCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := nodetest.Start(t, 2, func(i int, cfg *node.Config) {
		cfg.Authenticate = authCheck
		if i == 0 {
			cfg.PeerUser, cfg.PeerPassword = "alice", "secret"
		}
	})
	a, b := dial(t, c.Addr(0)), dial(t, c.Addr(1))
	a.login("alice", "secret")
	b.login("alice", "secret")
	if got := a.set(ownedBy(t, c, 1), "v", 0); got != "STORED" {
		t.Fatalf("n0 forwarding with credentials: %q", got)
	}
	if got := b.set(ownedBy(t, c, 0), "v", 0); !strings.HasPrefix(got, "SERVER_ERROR") {
		t.Fatalf("n1 forwarding without credentials: %q, want SERVER_ERROR", got)
	}
}
