package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

// TestAuth runs cachectl against a two-node cluster with ASCII
// authentication: with -Y every command works; without it, or with a
// wrong password, it fails.
func TestAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	t.Parallel()
	check := func(user, pass []byte) bool { return string(user) == "ops" && string(pass) == "s3cret" }
	c := nodetest.Start(t, 2, func(i int, cfg *node.Config) {
		cfg.Authenticate, cfg.PeerUser, cfg.PeerPassword = check, "ops", "s3cret"
	})
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	os.WriteFile(good, []byte("ops:s3cret\n"), 0o600)
	os.WriteFile(bad, []byte("ops:nope\n"), 0o600)
	seed := "-seeds=" + c.Addr(0)
	if out := ok(t, seed, "-Y", good, "members"); !strings.Contains(out, c.Addr(1)) {
		t.Errorf("members with -Y: %q lacks n1", out)
	}
	ok(t, seed, "-Y", good, "stats")
	ok(t, seed, "-Y", good, "set", "authkey", "authvalue")
	if out := ok(t, seed, "-Y", good, "get", "authkey"); !strings.Contains(out, "authvalue") {
		t.Errorf("get with -Y: %q", out)
	}
	// drain sends the -Y credentials to the admin port too (a node with
	// -Y wants them there); nobody shuts n1 down here, so only the
	// request is checked.
	r := cachectl(t, seed, "-Y", good, "drain", "n1", "-timeout", "1s")
	if !strings.Contains(r.stderr, "leave requested on http://"+c.Node(1).AdminAddr()+"/drain") {
		t.Errorf("drain with -Y: %v", r)
	}
	select {
	case <-c.Node(1).Drained():
	default:
		t.Error("drain with -Y: the node's Drained channel is still open")
	}
	for _, args := range [][]string{
		{seed, "-timeout", "2s", "members"},
		{seed, "-timeout", "2s", "-Y", bad, "members"},
		{seed, "-timeout", "2s", "-Y", filepath.Join(dir, "missing"), "members"},
	} {
		if r := cachectl(t, args...); r.code != exitFailure {
			t.Errorf("cachectl %q: %v; want exit 1", args, r)
		}
	}
}
