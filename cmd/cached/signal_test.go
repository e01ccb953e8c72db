package main

import (
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMDrainsAndExitsZero starts cached with an idle client
// connection and one mid-request, sends SIGTERM, and expects exit status 0
// within 5 s.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildCached(t)
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-gossip", "", "-admin", "")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	var idle, busy *mc
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		if idle, err = dialMC(addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cached did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, err := idle.set("k", "v"); got != "STORED" {
		t.Fatalf("set: %q %v", got, err)
	}
	busy, _ = dialMC(addr)
	busy.c.Write([]byte("set half 0 0 10\r\nabc")) // stops mid-block
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("cached exited with %v after SIGTERM; want status 0", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("exit took %v; want under 5 s", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("cached did not exit within 20 s of SIGTERM")
	}
}
