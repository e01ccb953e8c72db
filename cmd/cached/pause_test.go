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
	"syscall"
	"testing"
	"time"

	"github.com/hotcache/hotcache/ring"
)

// proc is one cached process started by a test.
type proc struct {
	name, addr, gossip string
	cmd                *exec.Cmd
}

func buildCached(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cached")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func startProc(t *testing.T, bin, name string, join []string) *proc {
	t.Helper()
	p := &proc{name: name, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), gossip: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	host, port, _ := net.SplitHostPort(p.addr)
	p.cmd = exec.Command(bin, "-name", name, "-l", host, "-p", port, "-gossip", p.gossip, "-admin", "", "-join", strings.Join(join, ","))
	if testing.Verbose() {
		p.cmd.Stderr = os.Stderr
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Kill()
		p.cmd.Wait()
	})
	return p
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// mc is a tiny memcache client for process tests.
type mc struct {
	c net.Conn
	r *bufio.Reader
}

func dialMC(addr string) (*mc, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &mc{c: c, r: bufio.NewReader(c)}, nil
}

func (m *mc) line() (string, error) {
	l, err := m.r.ReadString('\n')
	return strings.TrimSuffix(l, "\r\n"), err
}

func (m *mc) set(k, v string) (string, error) {
	fmt.Fprintf(m.c, "set %s 0 0 %d\r\n%s\r\n", k, len(v), v)
	return m.line()
}

func (m *mc) get(k string) (string, bool, error) {
	fmt.Fprintf(m.c, "get %s\r\n", k)
	l, err := m.line()
	if err != nil || l == "END" {
		return "", false, err
	}
	f := strings.Fields(l)
	if len(f) != 4 {
		return "", false, fmt.Errorf("get %s: %q", k, l)
	}
	n, _ := strconv.Atoi(f[3])
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(m.r, buf); err != nil {
		return "", false, err
	}
	_, err = m.line()
	return string(buf[:n]), true, err
}

// members returns the member names and memcache addresses a node reports,
// and whether it takes writes to all it owns (write_ready).
func (m *mc) members() (map[string]string, bool, error) {
	fmt.Fprintf(m.c, "stats cluster\r\n")
	out := map[string]string{}
	ready := false
	for {
		l, err := m.line()
		if err != nil || l == "END" {
			return out, ready, err
		}
		f := strings.Fields(l)
		switch {
		case len(f) >= 4 && f[1] == "member":
			out[f[2]] = f[3]
		case len(f) == 3 && f[1] == "write_ready":
			ready = f[2] == "1"
		}
	}
}

// waitMembers waits until the node at addr has want members and takes
// writes to all it owns.
func waitMembers(t *testing.T, addr string, want int, d time.Duration) map[string]string {
	t.Helper()
	deadline := time.Now().Add(d)
	var last map[string]string
	var ready bool
	for time.Now().Before(deadline) {
		if m, err := dialMC(addr); err == nil {
			last, ready, err = m.members()
			m.c.Close()
			if err == nil && len(last) == want && ready {
				return last
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: no %d-member ring taking writes within %v; last saw %v (write_ready %v)", addr, want, d, last, ready)
	return nil
}

// TestPausedOwnerNeverServesOldValues stops a key owner's process with
// SIGSTOP until the others declare it dead, writes new values of its keys
// through them, and resumes it: reads through every node return the new
// value or a miss, never the value from before the pause.
func TestPausedOwnerNeverServesOldValues(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes and waits for failure detection")
	}
	bin := buildCached(t)
	a := startProc(t, bin, "a", nil)
	b := startProc(t, bin, "b", []string{a.gossip})
	c := startProc(t, bin, "c", []string{a.gossip})
	all := []*proc{a, b, c}
	members := waitMembers(t, a.addr, 3, 60*time.Second)
	waitMembers(t, b.addr, 3, 60*time.Second)
	waitMembers(t, c.addr, 3, 60*time.Second)
	var rm []ring.Member
	for name, addr := range members {
		rm = append(rm, ring.Member{Name: name, Addr: addr})
	}
	r, err := ring.New(rm, ring.Config{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := dialMC(b.addr)
	if err != nil {
		t.Fatal(err)
	}
	var owned []string
	for i := 0; len(owned) < 200; i++ {
		k := fmt.Sprintf("pause:%d", i)
		if got, err := w.set(k, "v1"); got != "STORED" {
			t.Fatalf("set %s: %q %v", k, got, err)
		}
		if o, _ := r.Owner([]byte(k)); o.Name == "a" {
			owned = append(owned, k)
		}
	}
	a.cmd.Process.Signal(syscall.SIGSTOP)
	waitMembers(t, b.addr, 2, 90*time.Second)
	waitMembers(t, c.addr, 2, 90*time.Second)
	for _, k := range owned {
		w.c.SetDeadline(time.Now().Add(30 * time.Second))
		if got, err := w.set(k, "v2"); got != "STORED" {
			t.Fatalf("set %s while a is stopped: %q %v", k, got, err)
		}
	}
	a.cmd.Process.Signal(syscall.SIGCONT)
	// Read at once, while a may still think it owns its keys, and again
	// after the ring has healed.
	check := func(when string) {
		for _, p := range all {
			m, err := dialMC(p.addr)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range owned {
				v, ok, err := m.get(k)
				if err != nil {
					// A resumed node drops the connections it was serving,
					// and the request that revealed the pause: they may
					// predate it. Dial again, once.
					m.c.Close()
					if m, err = dialMC(p.addr); err != nil {
						t.Fatal(err)
					}
					v, ok, err = m.get(k)
				}
				if err != nil {
					t.Fatalf("%s: get %s through %s: %v", when, k, p.name, err)
				}
				if ok && v != "v2" {
					t.Fatalf("%s: get %s through %s = %q: a value from before the pause came back", when, k, p.name, v)
				}
			}
			m.c.Close()
		}
	}
	check("right after SIGCONT")
	for _, p := range all {
		waitMembers(t, p.addr, 3, 90*time.Second)
	}
	check("after the ring healed")
}
