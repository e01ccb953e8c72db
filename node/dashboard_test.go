package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotcache/hotcache/hotspot"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

// TestDashboard_overview checks /api/overview and /api/counters: every
// member is listed, a member whose admin address is unknown or that is down
// is marked so, and the answer is still a 200.
func TestDashboard_overview(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := nodetest.Start(t, 3, func(i int, cfg *node.Config) {
		if i == 2 {
			cfg.AdminAddr = "" // n2 serves no admin HTTP: its address is unknown
		}
	})
	base := "http://" + c.Node(0).AdminAddr()

	d := dial(t, c.Addr(0))
	const keys = 30
	for i := range keys {
		if got := d.set(clusterKey(i), "value", 0); got != "STORED" {
			t.Fatalf("set: %q", got)
		}
		d.get(clusterKey(i))
	}

	ov := getOverview(t, base)
	if len(ov.Members) != 3 || ov.Self != "n0" || ov.Identity != c.Node(0).Ring().Identity() || ov.Partitions != c.Node(0).Ring().Partitions() {
		t.Fatalf("overview: %+v", ov)
	}
	var sets, gets, items uint64
	total := 0
	for i, m := range ov.Members {
		total += m.Partitions
		if want := fmt.Sprintf("n%d", i); m.Name != want || m.State != "alive" {
			t.Errorf("member %d: %+v, want %s alive", i, m.MemberInfo, want)
		}
		if m.Name == "n2" {
			if m.Reachable || m.Counters != nil || m.HotKeys != nil || m.Error != "admin address unknown" {
				t.Errorf("n2 without an admin address: %+v", m)
			}
			continue
		}
		if !m.Reachable || m.Error != "" || m.Counters == nil || m.HotKeys == nil || m.Counters.Node != m.Name || m.HotKeys.Node != m.Name {
			t.Fatalf("%s: %+v", m.Name, m)
		}
	}
	if total != ov.Partitions {
		t.Errorf("member partitions add up to %d, want %d", total, ov.Partitions)
	}
	// Every request is counted once, at the key's owner.
	for i := range 3 {
		cs := c.Node(i).Counters()
		if i < 2 {
			_, body := httpGet(t, "http://"+c.Node(i).AdminAddr()+"/api/counters")
			if err := json.Unmarshal([]byte(body), &cs); err != nil {
				t.Fatalf("/api/counters: %v\n%s", err, body)
			}
		}
		if cs.Node != fmt.Sprintf("n%d", i) || cs.Requests < cs.Gets+cs.Sets || cs.Hits > cs.Gets || cs.TimeMS == 0 {
			t.Errorf("counters of n%d: %+v", i, cs)
		}
		sets, gets, items = sets+cs.Sets, gets+cs.Gets, items+cs.Items
	}
	if sets != keys || gets != keys || items != keys {
		t.Errorf("cluster counted %d sets, %d gets, %d items; want %d each", sets, gets, items, keys)
	}
	if cs := c.Node(0).Counters(); cs.Forwarded == 0 {
		t.Errorf("n0 forwarded nothing: %+v", cs)
	}

	// A member that is down: right after a crash it is still in the ring
	// (failure detection takes seconds), and its admin port refuses.
	c.Kill(1)
	start := time.Now()
	ov = getOverview(t, base)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("overview with a member down took %v", took)
	}
	found := false
	for _, m := range ov.Members {
		if m.Name != "n1" {
			continue
		}
		found = true
		if m.Reachable || m.Error == "" || m.Counters != nil || m.HotKeys != nil {
			t.Errorf("n1 is down but: %+v", m)
		}
		t.Logf("n1 down, after %v: %s", time.Since(start).Round(time.Millisecond), m.Error)
	}
	if !found && c.Node(0).Ring().Len() == 3 {
		t.Errorf("n1 missing from the overview: %+v", ov)
	}

	// The page and its files come with a policy that allows only them.
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") || !bytes.Contains(page, []byte("dashboard/app.js")) {
		t.Errorf("GET /: %d %v\n%s", resp.StatusCode, resp.Header, page)
	}
	for _, f := range []string{"app.js", "style.css"} {
		if code, body := httpGet(t, base+"/dashboard/"+f); code != 200 || len(body) < 100 {
			t.Errorf("GET /dashboard/%s: %d", f, code)
		}
	}
}

func getOverview(t *testing.T, base string) node.Overview {
	t.Helper()
	code, body := httpGet(t, base+"/api/overview")
	if code != 200 {
		t.Fatalf("/api/overview: %d\n%s", code, body)
	}
	var ov node.Overview
	if err := json.Unmarshal([]byte(body), &ov); err != nil {
		t.Fatalf("/api/overview: %v\n%s", err, body)
	}
	return ov
}

// TestDashboard_browser renders the dashboard in headless Chromium against
// a 3-node cluster with hot keys on every member, and checks that the page
// (its script, since the static HTML holds none of them) shows the members
// and the hot keys, escaped. It writes a screenshot, copied to
// docs/dashboard.png when UPDATE_SCREENSHOT=1.
func TestDashboard_browser(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster and browser test")
	}
	chromium := findChromium(t)
	c := nodetest.Start(t, 3, func(i int, cfg *node.Config) {
		cfg.HotKeys = hotspot.Config{MinRate: 20, Unsampled: true, MinHot: time.Minute}
	})

	// One hot key per member, each read at its own pace through n0 (so two
	// of them are forwarded: the owner records the reads it serves). One
	// key is markup, which the page must show as text. The last one has no
	// value, so its owner serves it (misses) rather than pushing it.
	r := c.Node(0).Ring()
	templates := []string{"celebrity:profile:%d", "flash-sale:<b>%d</b>", "config:feature-flags:%d"}
	var hot []string
	owners := map[string]string{} // owner -> key
	for _, tmpl := range templates {
		for j := 0; ; j++ {
			k := fmt.Sprintf(tmpl, j)
			if m, _ := r.Owner([]byte(k)); owners[m.Name] == "" {
				owners[m.Name] = k
				hot = append(hot, k)
				break
			}
		}
	}
	d := dial(t, c.Addr(0))
	for i, k := range hot[:2] {
		if got := d.set(k, strings.Repeat("v", 100<<i), 0); got != "STORED" {
			t.Fatalf("set %s: %q", k, got)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	for i, k := range hot {
		wg.Go(func() { readLoop(t, c.Addr(0), k, time.Duration(4<<i)*time.Millisecond, stop) })
	}
	// An edge watches every node, as the proxy and the Go client do, takes
	// the replicas pushed to it and reports hits on them.
	for i := range c.Len() {
		wg.Go(func() { fakeEdge(t, c.Addr(i), stop) })
	}
	waitFor(t, 30*time.Second, "every key hot at its owner, the first two at the edge", func() bool {
		for i, k := range hot {
			hk, ok := findHot(c.Node(ownerIndex(t, c, k)).HotKeys(), k)
			if want := map[bool]string{true: "edge", false: "node"}[i < 2]; !ok || hk.Served != want {
				return false
			}
		}
		return true
	})

	base := "http://" + c.Node(0).AdminAddr() + "/"
	_, static := httpGet(t, base)
	_, script := httpGet(t, base+"dashboard/app.js")
	for _, s := range append([]string{"n0", "n1", "n2"}, hot...) {
		if strings.Contains(static, s) || strings.Contains(script, s) {
			t.Fatalf("the static page or script holds %q: the test would not prove the script renders it", s)
		}
	}

	// The served states can move under a loaded machine (a key cools for a
	// moment and is pushed again), so a page missing one is rendered again,
	// up to three times; members and keys must be there every time.
	var dom string
	var missing []string
	for attempt := range 3 {
		start := time.Now()
		dom = runChromium(t, chromium, "--dump-dom", base)
		t.Logf("chromium --dump-dom took %v", time.Since(start).Round(time.Millisecond))
		missing = missing[:0]
		for _, s := range []string{">n0<", ">n1<", ">n2<", ">edge<", ">node<", ">live<"} {
			if !strings.Contains(dom, s) {
				missing = append(missing, s)
			}
		}
		for _, k := range hot {
			if !strings.Contains(dom, ">"+html.EscapeString(k)+"<") {
				t.Errorf("rendered page lacks hot key %q", k)
			}
		}
		if len(missing) == 0 || t.Failed() {
			break
		}
		t.Logf("attempt %d: rendered page lacks %q; rendering again", attempt+1, missing)
	}
	if len(missing) > 0 {
		t.Errorf("rendered page lacks %q", missing)
	}
	if strings.Contains(dom, "<b>") {
		t.Errorf("a key was rendered as markup")
	}
	if t.Failed() {
		t.Fatalf("rendered page:\n%s", dom)
	}

	png := filepath.Join(t.TempDir(), "dashboard.png")
	start := time.Now()
	runChromium(t, chromium, "--hide-scrollbars", "--window-size=1280,900", "--screenshot="+png, base)
	t.Logf("chromium --screenshot took %v", time.Since(start).Round(time.Millisecond))
	shot, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(shot, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot: %v (%d bytes)", err, len(shot))
	}
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(filepath.Join("..", "docs", "dashboard.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote docs/dashboard.png (%d bytes)", len(shot))
	}
}

// findChromium returns the path of a Chromium binary, or skips the test
// (fails it when CACHE_REQUIRE_CHROMIUM=1).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CACHE_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium not found, and CACHE_REQUIRE_CHROMIUM=1")
	}
	t.Skip("chromium not found (apt-get install chromium)")
	return ""
}

// runChromium runs headless Chromium with a fresh profile on url and
// returns its standard output.
func runChromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append([]string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000"}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

func ownerIndex(t *testing.T, c *nodetest.Cluster, key string) int {
	t.Helper()
	m, _ := c.Node(0).Ring().Owner([]byte(key))
	for i := range c.Len() {
		if c.Node(i).Name() == m.Name {
			return i
		}
	}
	t.Fatalf("owner %s of %s is not in the cluster", m.Name, key)
	return -1
}

func findHot(hk node.HotKeys, key string) (node.HotKey, bool) {
	for _, k := range hk.Keys {
		if k.Key == key {
			return k, true
		}
	}
	return node.HotKey{}, false
}

// readLoop gets key through addr every pause until stop is closed.
func readLoop(t *testing.T, addr, key string, pause time.Duration, stop <-chan struct{}) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Errorf("reader: %v", err)
		return
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		select {
		case <-stop:
			return
		case <-time.After(pause):
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, "get "+key+"\r\n"); err != nil {
			t.Errorf("reader: %v", err)
			return
		}
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Errorf("reader: %v", err)
				return
			}
			if l == "END\r\n" {
				break
			}
		}
	}
}

// fakeEdge is a minimal edge on a watch stream to addr (docs/protocol.md):
// it pings, takes the replicas pushed to it, acknowledges invalidations and
// cools, and reports 30 hits on each replica it holds every 100 ms.
func fakeEdge(t *testing.T, addr string, stop <-chan struct{}) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Errorf("edge: %v", err)
		return
	}
	var (
		mu   sync.Mutex // guards writes to conn and held
		held = map[string]bool{}
	)
	send := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, s)
	}
	epoch := time.Now()
	stamp := func() int64 { return time.Since(epoch).Milliseconds() + 1 }
	send(fmt.Sprintf("watch dashboard-test %d\r\n", stamp()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReader(conn)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return // closed at stop
			}
			f := strings.Fields(l)
			if len(f) < 3 {
				continue
			}
			switch f[0] {
			case "RING", "HOT":
				n, _ := strconv.Atoi(f[len(f)-1])
				if _, err := io.CopyN(io.Discard, br, int64(n)+2); err != nil {
					return
				}
				if f[0] == "HOT" {
					mu.Lock()
					held[f[2]] = true
					mu.Unlock()
				}
			case "INVAL", "COOL":
				mu.Lock()
				delete(held, f[2])
				mu.Unlock()
				send("ACK " + f[1] + "\r\n")
			}
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for slice := 1; ; slice++ {
		select {
		case <-stop:
			conn.Close()
			<-done
			return
		case <-tick.C:
		}
		msg := fmt.Sprintf("PING %d\r\n", stamp())
		mu.Lock()
		for k := range held {
			msg += fmt.Sprintf("HITS %d %s 30\r\n", slice, k)
		}
		mu.Unlock()
		send(msg)
	}
}
