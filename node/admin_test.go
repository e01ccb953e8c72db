package node_test

import (
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAdminEndpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := nodetest.Start(t, 3)
	base := "http://" + c.Node(1).AdminAddr()
	if code, _ := httpGet(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := httpGet(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d", code)
	}
	_, body := httpGet(t, base+"/cluster")
	var info node.ClusterInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatalf("/cluster: %v\n%s", err, body)
	}
	total := 0
	for _, m := range info.Members {
		total += m.Partitions
		if m.State != "alive" || m.Addr == "" || m.Admin == "" {
			t.Errorf("/cluster member %+v", m)
		}
	}
	if info.Self != "n1" || len(info.Members) != 3 || total != c.Node(1).Ring().Partitions() || info.Identity != c.Node(0).Ring().Identity() {
		t.Errorf("/cluster: %+v", info)
	}
	d := dial(t, c.Addr(1))
	for i := range 50 {
		d.set(clusterKey(i), "v", 0)
		d.get(clusterKey(i))
	}
	_, metrics := httpGet(t, base+"/metrics")
	for _, want := range []string{`cache_members{node="n1"} 3`, `cache_forwarded_requests_total{node="n1"}`, `cache_requests_total{cmd="get",node="n1",result="hit"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestClusterStopsEverything checks that a cluster's nodes leave no
// goroutines behind once shut down.
func TestClusterStopsEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	before := runtime.NumGoroutine()
	t.Run("cluster", func(t *testing.T) {
		c := nodetest.Start(t, 3)
		d := dial(t, c.Addr(0))
		for i := range 200 {
			d.set(clusterKey(i), "v", 0)
		}
		d.send("get ck:00001 ck:00002 ck:00003 ck:00004\r\n")
	})
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after shutdown:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
