package node_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hotcache/hotcache/node"
)

func drained(n *node.Node) bool {
	select {
	case <-n.Drained():
		return true
	default:
		return false
	}
}

func post(t *testing.T, url string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDrainEndpoint: POST /drain answers 202 and closes Drained, once;
// other methods and cross-origin browser requests change nothing; the node
// keeps serving until its owner calls Shutdown, as cmd/cached does.
func TestDrainEndpoint(t *testing.T) {
	n := startNode(t, node.Config{Name: "solo", AdminAddr: "127.0.0.1:0"})
	url := "http://" + n.AdminAddr() + "/drain"
	if drained(n) {
		t.Fatal("Drained closed before any request")
	}
	if code, _ := httpGet(t, url); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /drain: %d, want 405", code)
	}
	if code, _ := post(t, url, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}); code != http.StatusForbidden {
		t.Errorf("cross-origin POST /drain: %d, want 403", code)
	}
	if drained(n) {
		t.Fatal("Drained closed by a refused request")
	}
	code, body := post(t, url, nil)
	if code != http.StatusAccepted || body != "draining solo\n" {
		t.Fatalf("POST /drain: %d %q, want 202 \"draining solo\\n\"", code, body)
	}
	if !drained(n) {
		t.Fatal("Drained not closed after POST /drain")
	}
	if code, _ := post(t, url, nil); code != http.StatusAccepted {
		t.Errorf("second POST /drain: %d, want 202", code)
	}
	n.RequestDrain() // idempotent with the endpoint
	// The endpoint only signals: the node still serves.
	c := dial(t, n.Addr())
	c.set("k", "v", 0)
	if !n.Ready() {
		t.Error("node not ready after a drain request; only Shutdown should stop it")
	}
	// What cmd/cached does on <-Drained().
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + n.AdminAddr() + "/healthz"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("admin still answers after Shutdown: %v", err)
	}
}

// TestDrainEndpointWantsCredentials: a node that authenticates its memcache
// clients wants the same credentials for POST /drain, as HTTP Basic
// authentication; without them, or with wrong ones, nothing happens.
func TestDrainEndpointWantsCredentials(t *testing.T) {
	n := startNode(t, node.Config{Name: "solo", AdminAddr: "127.0.0.1:0", Authenticate: authCheck})
	url := "http://" + n.AdminAddr() + "/drain"
	basic := func(user, pass string) map[string]string {
		return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
	}
	for _, h := range []map[string]string{nil, basic("alice", "wrong"), basic("mallory", "secret")} {
		if code, _ := post(t, url, h); code != http.StatusUnauthorized {
			t.Errorf("POST /drain with %v: %d, want 401", h, code)
		}
	}
	if drained(n) {
		t.Fatal("Drained closed by an unauthenticated request")
	}
	if code, body := post(t, url, basic("alice", "secret")); code != http.StatusAccepted {
		t.Fatalf("POST /drain as alice: %d %q, want 202", code, body)
	}
	if !drained(n) {
		t.Fatal("Drained not closed after an authenticated POST /drain")
	}
}

// TestDrainedWithoutAdmin: Drained is usable on a node without an admin
// server, and RequestDrain closes it.
func TestDrainedWithoutAdmin(t *testing.T) {
	n := startNode(t, node.Config{})
	if drained(n) {
		t.Fatal("Drained closed at start")
	}
	n.RequestDrain()
	select {
	case <-n.Drained():
	case <-time.After(5 * time.Second):
		t.Fatal("Drained not closed by RequestDrain")
	}
}
