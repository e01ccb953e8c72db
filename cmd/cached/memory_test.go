//go:build memory

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMemoryBound writes ten times -m 64 worth of 1 KiB values into a real
// cached process, with one get for every four sets, and samples the
// process's RSS throughout. It must stay under 1.5 x 64 MiB + 32 MiB.
// Run with `make memory`.
func TestMemoryBound(t *testing.T) {
	const memMB = 64
	limit := int64(memMB*3/2+32) << 20
	bin := filepath.Join(t.TempDir(), "cached")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	port := freePort(t)
	cmd := exec.Command(bin, "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(memMB), "-gossip", "", "-admin", "")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitUp(t, addr)

	var peak int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			if rss := rssBytes(cmd.Process.Pid); rss > peak {
				peak = rss
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})

	value := strings.Repeat("m", 1024)
	total := 10 * (memMB << 20) / 1024
	const workers = 4
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			bw := bufio.NewWriter(c)
			const batch = 32
			for i := w; i < total; i += workers * batch {
				for j := 0; j < batch && i+j*workers < total; j++ {
					k := i + j*workers
					fmt.Fprintf(bw, "set mem:%d 0 0 %d\r\n%s\r\n", k, len(value), value)
					if k%4 == 0 {
						fmt.Fprintf(bw, "get mem:%d\r\n", k/2)
					}
				}
				bw.Flush()
				for j := 0; j < batch && i+j*workers < total; j++ {
					k := i + j*workers
					if l, _ := r.ReadString('\n'); l != "STORED\r\n" {
						t.Errorf("set: %q", l)
						return
					}
					if k%4 == 0 {
						drainGet(t, r)
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	stats := readStats(t, addr)
	sets := total
	t.Logf("%d sets of 1 KiB (%d MiB) in %v; peak RSS %.1f MiB (limit %d MiB); curr_items %s, evictions %s, admission_refusals %s (%.1f%% of sets)",
		sets, sets>>10, time.Since(start).Round(time.Millisecond), float64(peak)/(1<<20), limit>>20,
		stats["curr_items"], stats["evictions"], stats["admission_refusals"], 100*atof(stats["admission_refusals"])/float64(sets))
	if peak > limit {
		t.Fatalf("peak RSS %d MiB exceeds %d MiB", peak>>20, limit>>20)
	}
}

func atof(s string) float64 { f, _ := strconv.ParseFloat(s, 64); return f }

func drainGet(t *testing.T, r *bufio.Reader) {
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Error(err)
			return
		}
		if l == "END\r\n" {
			return
		}
		if strings.HasPrefix(l, "VALUE ") {
			f := strings.Fields(l)
			n, _ := strconv.Atoi(f[3])
			io.CopyN(io.Discard, r, int64(n+2))
		}
	}
}

func readStats(t *testing.T, addr string) map[string]string {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "stats\r\n")
	r := bufio.NewReader(c)
	m := map[string]string{}
	for {
		l, err := r.ReadString('\n')
		if err != nil || l == "END\r\n" {
			return m
		}
		if f := strings.Fields(l); len(f) == 3 {
			m[f[1]] = f[2]
		}
	}
}

func rssBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func waitUp(t *testing.T, addr string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("cached did not come up on %s", addr)
}
