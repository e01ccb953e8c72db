package main

import (
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestDrainEndpointExitsZero starts cached with an admin port, POSTs
// /drain (what cachectl drain does) and expects the process to shut down
// as on SIGTERM: exit status 0, promptly.
func TestDrainEndpointExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildCached(t)
	port := freePort(t)
	admin := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	cmd := exec.Command(bin, "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-gossip", "", "-admin", admin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("cached did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Post("http://"+admin+"/drain", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /drain: %s, want 202", resp.Status)
	}
	start := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("cached exited with %v after POST /drain; want status 0", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("exit took %v; want under 5 s", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("cached did not exit within 20 s of POST /drain")
	}
}
