package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNutcrackerConfig(t *testing.T) {
	got := nutcrackerConfig("127.0.0.1:22121", []string{"127.0.0.1:11211", "127.0.0.1:11212", "127.0.0.1:11213"}, 2*time.Second)
	want := `hotcache:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  distribution: ketama
  timeout: 2000
  preconnect: true
  auto_eject_hosts: false
  server_connections: 1
  servers:
   - 127.0.0.1:11211:1 mc1
   - 127.0.0.1:11212:1 mc2
   - 127.0.0.1:11213:1 mc3
`
	if got != want {
		t.Fatalf("config:\n%s\nwant:\n%s", got, want)
	}
	// nutcracker -t checks the syntax and exits.
	bin := requireNutcracker(t)
	path := filepath.Join(t.TempDir(), "nutcracker.yml")
	if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-t", "-c", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "syntax is ok") {
		t.Fatalf("nutcracker -t: %v\n%s", err, out)
	}
}

const nutcrackerBin = "/usr/sbin/nutcracker"

func requireNutcracker(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(nutcrackerBin); err != nil {
		if os.Getenv("CACHE_REQUIRE_MEMCACHED") == "1" {
			t.Fatalf("CACHE_REQUIRE_MEMCACHED=1 but %v (apt-get install nutcracker)", err)
		}
		t.Skipf("no nutcracker: %v", err)
	}
	return nutcrackerBin
}

// TestCompare_twemproxy starts twemproxy over 3 memcached and checks that
// the load went through it and that the backends' stats account for it.
func TestCompare_twemproxy(t *testing.T) {
	t.Parallel()
	requireMemcached(t)
	requireNutcracker(t)
	out, stderr, err := runCLI(t, t.Context(), "compare", "-start-twemproxy", "-memcached-threads", "1", "-rounds", "2",
		"-requests", "600", "-conns", "3", "-keys", "300", "-prefill", "-warmup", "0", "-json")
	if err != nil {
		t.Fatalf("compare: %v\n%s", err, stderr)
	}
	assertGone(t, stderr, frontendBackends+1)
	var got struct {
		Depths []depthSummary `json:"depths"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	ts := got.Depths[0].Targets
	if len(ts) != 1 || ts[0].Name != "twemproxy" || ts[0].Errors != 0 || ts[0].HitRatio != 1 {
		t.Fatalf("targets %+v", ts)
	}
	tw := ts[0]
	var sum uint64
	for _, n := range tw.Nodes {
		if n.Requests == 0 || n.Error != "" {
			t.Errorf("backend %+v served nothing: ketama should spread 300 keys over 3", n)
		}
		sum += n.Requests
	}
	if len(tw.Nodes) != frontendBackends || sum != 1200 {
		t.Errorf("backends %+v served %d requests, want the 2 x 600 of the rounds", tw.Nodes, sum)
	}
	if !(tw.NodeMaxOverMean >= 1 && tw.NodeMaxOverMean < 2) || len(tw.Percentiles) == 0 {
		t.Errorf("max/mean %v, %d percentiles", tw.NodeMaxOverMean, len(tw.Percentiles))
	}
}
