package client_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/hotcache/hotcache/client"
	"github.com/hotcache/hotcache/hotspot"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
	"github.com/hotcache/hotcache/protocol"
)

// The coherence test: a 3-node cluster, two proxies and a client with a
// near cache. Goroutines read a few hot keys through every edge and every
// node while others write them through nodes and edges, every operation is
// recorded with its start and end, and the histories are checked for
// linearizability with porcupine (a register per key; a miss is always
// allowed). Scenarios add faults: watch streams cut mid-run, and a proxy
// process stopped (SIGSTOP) for longer than the lease.

const coherenceLease = time.Second

// kvInput is one operation: a read (value empty) or a write of value.
type kvInput struct {
	write bool
	key   string
	value string
}

// kvOutput is a read's result.
type kvOutput struct {
	found bool
	value string
}

// registerModel is a set of registers, one per key, where a read may
// always miss (a cache may evict at any time) but never return a value other
// than the last one written.
var registerModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(kvInput).key
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(by))
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(kvInput)
		if in.write {
			return true, in.value
		}
		out := output.(kvOutput)
		return !out.found || out.value == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(kvInput)
		if in.write {
			return "set(" + in.key + ", " + in.value + ")"
		}
		out := output.(kvOutput)
		if !out.found {
			return "get(" + in.key + ") miss"
		}
		return "get(" + in.key + ") = " + out.value
	},
}

// history collects operations from many goroutines.
type history struct {
	base time.Time
	mu   sync.Mutex
	ops  []porcupine.Operation
	ids  atomic.Int32
}

func (h *history) now() int64 { return int64(time.Since(h.base)) }

func (h *history) add(op porcupine.Operation) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// kv is one way into the system: a raw memcache connection to a node or a
// proxy, or the Go client with its near cache.
type kv interface {
	get(ctx context.Context, key string) (value string, found bool, err error)
	set(ctx context.Context, key, value string) error
}

type rawKV struct {
	c net.Conn
	r *bufio.Reader
}

func dialKV(t testing.TB, addr string) *rawKV {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawKV{c: c, r: bufio.NewReader(c)}
}

var errBroken = errors.New("connection out of step")

func (k *rawKV) get(ctx context.Context, key string) (string, bool, error) {
	k.c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(k.c, "get "+key+"\r\n"); err != nil {
		return "", false, err
	}
	vals, err := protocol.ReadValues(k.r, nil)
	if err != nil {
		return "", false, err
	}
	if len(vals) == 0 {
		return "", false, nil
	}
	return string(vals[0].Data), true, nil
}

func (k *rawKV) set(ctx context.Context, key, value string) error {
	k.c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := fmt.Fprintf(k.c, "set %s 0 0 %d\r\n%s\r\n", key, len(value), value); err != nil {
		return err
	}
	line, err := k.r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "STORED\r\n" {
		return fmt.Errorf("set: %q", line)
	}
	return nil
}

type clientKV struct{ c *client.Client }

func (k clientKV) get(ctx context.Context, key string) (string, bool, error) {
	it, err := k.c.Get(ctx, key)
	if errors.Is(err, client.ErrCacheMiss) {
		var ne *client.NodeError
		if errors.As(err, &ne) {
			return "", false, err // an unreachable owner, answered as a miss: not a read
		}
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(it.Value), true, nil
}

func (k clientKV) set(ctx context.Context, key, value string) error {
	return k.c.Set(ctx, &client.Item{Key: key, Value: []byte(value)})
}

// coherenceCluster starts 3 nodes that find a key hot after a few dozen
// reads per second, with a short lease.
func coherenceCluster(t *testing.T) *nodetest.Cluster {
	return nodetest.Start(t, 3, func(i int, cfg *node.Config) {
		cfg.LeasePeriod = coherenceLease
		cfg.HotKeys = hotspot.Config{MinRate: 20, MinHot: 500 * time.Millisecond, MaxWriteRatio: 0.5, Unsampled: true}
	})
}

func seeds(cl *nodetest.Cluster) []string {
	var s []string
	for i := range cl.Len() {
		s = append(s, cl.Addr(i))
	}
	return s
}

// edgeClient is a cluster-mode client with a near cache, heartbeating
// often so that leases renew well within coherenceLease.
func edgeClient(t *testing.T, cl *nodetest.Cluster, name string, dial func(ctx context.Context, addr string) (net.Conn, error)) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Seeds: seeds(cl), Name: name, Heartbeat: 200 * time.Millisecond,
		Timeout: 5 * time.Second, Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startProxy serves c's handler on 127.0.0.1:0, as cmd/cacheproxy does.
func serveProxy(t *testing.T, c *client.Client) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &protocol.Server{Handler: client.NewHandler(c, client.HandlerOptions{})}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// cuttingDialer dials TCP and remembers the watch streams it carries, so a
// test can cut them.
type cuttingDialer struct {
	mu      sync.Mutex
	streams []net.Conn
}

type sniffConn struct {
	net.Conn
	d    *cuttingDialer
	seen bool
}

func (c *sniffConn) Write(b []byte) (int, error) {
	if !c.seen {
		c.seen = true
		if strings.HasPrefix(string(b), "watch ") {
			c.d.mu.Lock()
			c.d.streams = append(c.d.streams, c.Conn)
			c.d.mu.Unlock()
		}
	}
	return c.Conn.Write(b)
}

func (d *cuttingDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: c, d: d}, nil
}

// cut closes every watch stream dialed so far and reports how many.
func (d *cuttingDialer) cut() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := len(d.streams)
	for _, c := range d.streams {
		c.Close()
	}
	d.streams = nil
	return n
}

// buildProxy compiles cmd/cacheproxy for the paused-edge scenario.
func buildProxy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cacheproxy")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/cacheproxy")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/cacheproxy: %v\n%s", err, out)
	}
	return bin
}

// runProxyProcess starts the proxy binary and returns its address and
// process.
func runProxyProcess(t *testing.T, bin string, cl *nodetest.Cluster) (string, *os.Process) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-seeds", strings.Join(seeds(cl), ","),
		"-admin", "", "-name", "paused-proxy", "-heartbeat", "200ms")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := ln.Addr().String()
	waitFor(t, "the proxy process to answer", func() (bool, any) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		k := &rawKV{c: c, r: bufio.NewReader(c)}
		err = k.set(context.Background(), "probe", "x")
		return err == nil, err
	})
	return addr, cmd.Process
}

// TestCoherence_linearizableHotKeys is must-show 1 of the hot-key issue.
func TestCoherence_linearizableHotKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("the coherence test runs for about 30 s")
	}
	for _, sc := range []string{"steady", "watch streams cut", "edge paused past its lease"} {
		t.Run(strings.ReplaceAll(sc, " ", "_"), func(t *testing.T) { runCoherence(t, sc) })
	}
}

func runCoherence(t *testing.T, scenario string) {
	cl := coherenceCluster(t)
	var cutter cuttingDialer
	proxyA := edgeClient(t, cl, "proxy-a", cutter.dial)
	addrA := serveProxy(t, proxyA)
	var addrB string
	var paused *os.Process
	if scenario == "edge paused past its lease" {
		addrB, paused = runProxyProcess(t, buildProxy(t), cl)
	} else {
		addrB = serveProxy(t, edgeClient(t, cl, "proxy-b", nil))
	}
	near := edgeClient(t, cl, "app", nil)
	keys := []string{"hot:0", "hot:1", "hot:2", "hot:3"}

	h := &history{base: time.Now()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var written atomic.Int64
	worker := func(k kv, write bool, pause time.Duration) {
		id := int(h.ids.Add(1))
		rng := rand.New(rand.NewPCG(uint64(id), 7))
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				key := keys[rng.IntN(len(keys))]
				call := h.now()
				if write {
					v := fmt.Sprintf("w%d.%d", id, n)
					err := k.set(context.Background(), key, v)
					ret := h.now()
					if err != nil {
						ret = math.MaxInt64 // it may or may not have been applied
					}
					written.Add(1)
					h.add(porcupine.Operation{ClientId: id, Input: kvInput{write: true, key: key, value: v}, Call: call, Output: kvOutput{}, Return: ret})
					if err != nil {
						t.Logf("writer %d stops after an error: %v", id, err)
						return // the connection is out of step; this writer stops
					}
				} else {
					v, found, err := k.get(context.Background(), key)
					if err != nil {
						if _, raw := k.(*rawKV); raw {
							t.Logf("reader %d stops after an error: %v", id, err)
							return
						}
						continue
					}
					h.add(porcupine.Operation{ClientId: id, Input: kvInput{key: key}, Call: call, Output: kvOutput{found: found, value: v}, Return: h.now()})
				}
				if pause > 0 {
					time.Sleep(time.Duration(rng.Int64N(int64(pause))))
				}
			}
		})
	}
	// Readers: two per edge, one per node. Writers: one through a node, one
	// through each proxy, one through the client; about 40 writes/s each,
	// so a hot key sees a write every ~25 ms across writers.
	const readPause = 2 * time.Millisecond // keeps the history small enough to check
	for range 2 {
		worker(dialKV(t, addrA), false, readPause)
		worker(dialKV(t, addrB), false, readPause)
		worker(clientKV{near}, false, readPause)
	}
	for i := range cl.Len() {
		worker(dialKV(t, cl.Addr(i)), false, readPause)
	}
	worker(dialKV(t, cl.Addr(0)), true, 50*time.Millisecond)
	worker(dialKV(t, addrA), true, 50*time.Millisecond)
	worker(dialKV(t, addrB), true, 50*time.Millisecond)
	worker(clientKV{near}, true, 50*time.Millisecond)

	// Faults, then the end of the run.
	run := 8 * time.Second
	faults := 0
	switch scenario {
	case "watch streams cut":
		end := time.After(run)
		tk := time.NewTicker(700 * time.Millisecond)
	loop:
		for {
			select {
			case <-tk.C:
				faults += cutter.cut()
			case <-end:
				break loop
			}
		}
		tk.Stop()
	case "edge paused past its lease":
		time.Sleep(run / 3) // let keys turn hot and replicas spread first
		paused.Signal(syscall.SIGSTOP)
		time.Sleep(coherenceLease * 2)
		paused.Signal(syscall.SIGCONT)
		faults = 1
		time.Sleep(run / 3)
	default:
		time.Sleep(run)
	}
	cancel()
	wg.Wait()

	// The run must have exercised the edge: replicas answered reads, and
	// writes invalidated them.
	var invalidations, drainMS uint64
	for i := range cl.Len() {
		st := nodeStats(t, cl.Addr(i), "hotkeys")
		invalidations += statUint(t, st, "invalidations")
		drainMS += statUint(t, st, "write_drain_ms_total")
	}
	edgeHits := proxyA.EdgeStats().Hits + near.EdgeStats().Hits
	bStats := nodeStats(t, addrB, "")
	bHits, _ := strconv.ParseUint(bStats["edge_hits"], 10, 64)
	t.Logf("%s: %d operations (%d writes), %d faults; edge hits: proxy-a %d, proxy-b %d, client %d; %d invalidations, %.1f ms each on average",
		scenario, len(h.ops), written.Load(), faults, proxyA.EdgeStats().Hits, bHits, near.EdgeStats().Hits,
		invalidations, float64(drainMS)/float64(max(invalidations, 1)))
	if edgeHits+bHits == 0 || invalidations == 0 {
		t.Fatalf("the run did not exercise replicas: %d edge hits, %d invalidations", edgeHits+bHits, invalidations)
	}
	if scenario == "watch streams cut" && faults == 0 {
		t.Fatal("no watch stream was cut")
	}

	res, info := porcupine.CheckOperationsVerbose(registerModel, h.ops, 60*time.Second)
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		path := filepath.Join(t.TempDir(), "history.html")
		porcupine.VisualizePath(registerModel, info, path)
		t.Fatalf("%s: the history is not linearizable; visualization in %s\n%s", scenario, path, describeViolation(h.ops))
	default:
		t.Logf("porcupine could not decide within its timeout (%v); %d operations", res, len(h.ops))
	}
}

// describeViolation prints, per key, the reads that returned a value some
// write had overwritten before the read began: the usual shape of a stale
// edge replica.
func describeViolation(ops []porcupine.Operation) string {
	var b strings.Builder
	writes := map[string][]porcupine.Operation{}
	for _, op := range ops {
		if in := op.Input.(kvInput); in.write {
			writes[in.key] = append(writes[in.key], op)
		}
	}
	for k := range writes {
		sort.Slice(writes[k], func(i, j int) bool { return writes[k][i].Call < writes[k][j].Call })
	}
	shown := 0
	for _, op := range ops {
		in, out := op.Input.(kvInput), op.Output.(kvOutput)
		if in.write || !out.found || shown >= 10 {
			continue
		}
		var src *porcupine.Operation
		for i := range writes[in.key] {
			if w := &writes[in.key][i]; w.Input.(kvInput).value == out.value {
				src = w
			}
		}
		if src == nil {
			fmt.Fprintf(&b, "read of %s by %d returned %q, never written\n", in.key, op.ClientId, out.value)
			shown++
			continue
		}
		for _, w := range writes[in.key] {
			if w.Call > src.Return && w.Return < op.Call && w.Return != math.MaxInt64 {
				fmt.Fprintf(&b, "read of %s by %d at [%d,%d] returned %q (written [%d,%d]) although %q was written at [%d,%d]\n",
					in.key, op.ClientId, op.Call, op.Return, out.value, src.Call, src.Return, w.Input.(kvInput).value, w.Call, w.Return)
				shown++
				break
			}
		}
	}
	return b.String()
}
