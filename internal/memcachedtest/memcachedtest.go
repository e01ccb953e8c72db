package memcachedtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing memcached
// binary into a test failure instead of a skip when it is set to "1".
const RequireEnv = "CACHE_REQUIRE_MEMCACHED"

// DefaultArgs are the flags Start always passes before the caller's own:
// text protocol only, no UDP, loopback only, 2 worker threads, 64 MB.
// memcached's defaults for the rest apply, notably -I 1m and -c 1024.
var DefaultArgs = []string{"-B", "ascii", "-U", "0", "-l", "127.0.0.1", "-t", "2", "-m", "64"}

// readyTimeout bounds how long Start waits for a started memcached to answer.
// It is generous because the test machines are small and shared.
const readyTimeout = 20 * time.Second

// Path returns the memcached binary to run: the one on PATH, else
// /usr/bin/memcached. ok is false when neither exists.
func Path() (path string, ok bool) {
	if p, err := exec.LookPath("memcached"); err == nil {
		return p, true
	}
	if _, err := os.Stat("/usr/bin/memcached"); err == nil {
		return "/usr/bin/memcached", true
	}
	return "", false
}

// Required reports whether the environment demands a real memcached
// (RequireEnv is "1"), so that its absence must fail tests rather than skip them.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// Start runs memcached with DefaultArgs, a free 127.0.0.1 port and args, and
// returns its "127.0.0.1:port" address once it answers a "version" request.
// The process is killed and reaped when the test ends. If the binary is
// missing, Start skips t, or fails it when Required.
func Start(t testing.TB, args ...string) (addr string) {
	t.Helper()
	bin, ok := Path()
	if !ok {
		if Required() {
			t.Fatalf("memcached not found on PATH or at /usr/bin/memcached, and %s=1", RequireEnv)
		}
		t.Skipf("memcached not found on PATH or at /usr/bin/memcached (set %s=1 to fail instead)", RequireEnv)
	}
	var lastErr error
	for range 5 { // NB: the free port we picked may be taken before memcached binds it.
		addr, err := start(t, bin, args)
		if err == nil {
			return addr
		}
		lastErr = err
		if !errors.Is(err, errExited) {
			break
		}
	}
	t.Fatalf("memcachedtest: %v", lastErr)
	return ""
}

var errExited = errors.New("memcached exited")

// start makes one attempt on one port.
func start(t testing.TB, bin string, args []string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	argv := append(append([]string(nil), DefaultArgs...), "-p", strconv.Itoa(port))
	if os.Geteuid() == 0 {
		argv = append(argv, "-u", "root") // memcached refuses to run as root without -u
	}
	argv = append(argv, args...)

	cmd := exec.Command(bin, argv...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Kill() // by pid; harmless if it already exited
		<-exited
	}

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-exited:
			return "", fmt.Errorf("%w before answering (%s %s): %s", errExited, bin, strings.Join(argv, " "), out.String())
		default:
		}
		if err := ping(addr); err == nil {
			t.Cleanup(stop)
			return addr, nil
		} else if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("memcached on %s did not answer within %v: %v; output: %s", addr, readyTimeout, err, out.String())
		}
		time.Sleep(10 * time.Millisecond) // poll interval, not an assertion
	}
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ping does one "version" round trip.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "VERSION ") {
		return fmt.Errorf("unexpected reply to version: %q", line)
	}
	return nil
}

// Stats sends "stats" or "stats <group>" to addr (group "settings" gives the
// configuration, including item_size_max for -I and maxbytes for -m) and
// returns the STAT lines as a map.
func Stats(addr, group string) (map[string]string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	cmd := strings.TrimSpace("stats " + group)
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	stats := make(map[string]string)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "END":
			return stats, nil
		case strings.HasPrefix(line, "STAT "):
			name, value, _ := strings.Cut(line[len("STAT "):], " ")
			stats[name] = value
		default:
			return nil, fmt.Errorf("%s: unexpected line %q", cmd, line)
		}
	}
}

// syncBuffer collects the process output; exec writes it from another goroutine.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
