package memcachedtest_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hotcache/hotcache/internal/memcachedtest"
)

func TestStart_answersAndUsesDefaults(t *testing.T) {
	addr := memcachedtest.Start(t)
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
		t.Fatalf("Start returned %q, want a 127.0.0.1 address", addr)
	}
	settings, err := memcachedtest.Stats(addr, "settings")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"item_size_max": "1048576", "maxbytes": "67108864", "binding_protocol": "ascii", "udpport": "0"} {
		if got := settings[name]; got != want {
			t.Errorf("stats settings %s = %q, want %q", name, got, want)
		}
	}

	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// NB: 0x80 first would switch memcached to the binary protocol without -B ascii.
	if _, err := c.Write([]byte("\x80garbage\r\nset k 0 0 1\r\nx\r\nget k\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var got []string
	for range 5 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, line)
	}
	if want := "ERROR\r\n|STORED\r\n|VALUE k 0 1\r\n|x\r\n|END\r\n"; strings.Join(got, "|") != want {
		t.Errorf("replies = %q, want %q", strings.Join(got, "|"), want)
	}
}

func TestStart_passesArgs(t *testing.T) {
	addr := memcachedtest.Start(t, "-I", "2m")
	settings, err := memcachedtest.Stats(addr, "settings")
	if err != nil {
		t.Fatal(err)
	}
	if got := settings["item_size_max"]; got != "2097152" {
		t.Errorf("item_size_max = %q with -I 2m, want 2097152", got)
	}
}

func TestStart_parallelInstances(t *testing.T) {
	seen := make(map[string]bool)
	for range 3 {
		addr := memcachedtest.Start(t)
		if seen[addr] {
			t.Fatalf("two running instances on %s", addr)
		}
		seen[addr] = true
	}
}
