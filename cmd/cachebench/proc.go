package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"
)

// serverProc is a server process cachebench started, and so must stop.
type serverProc struct {
	name   string
	addr   string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	out    tailBuffer    // the end of its stdout and stderr
}

// memcachedArgs is the command line of a memcached started by -start-memcached.
func memcachedArgs(threads int) func(port int) []string {
	return func(port int) []string {
		args := []string{"-B", "ascii", "-U", "0", "-l", "127.0.0.1", "-p", strconv.Itoa(port),
			"-t", strconv.Itoa(threads), "-m", "1024", "-c", "4096"}
		if os.Geteuid() == 0 {
			// NB: memcached refuses to run as root without -u.
			u := "root"
			if _, err := user.Lookup("nobody"); err == nil {
				u = "nobody"
			}
			args = append(args, "-u", u)
		}
		return args
	}
}

// cachedArgs is the command line of our node started by -start-cached: the
// memcached flags it mirrors, then extra.
func cachedArgs(extra []string) func(port int) []string {
	return func(port int) []string {
		return append([]string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-m", "1024", "-c", "4096"}, extra...)
	}
}

// startServer starts path on a free loopback port and returns once it
// answers "version". A process that exits before that (say, because another
// process took the port first) is retried twice on a new port.
func startServer(ctx context.Context, name, path string, args func(port int) []string) (*serverProc, error) {
	var err error
	for range 3 {
		var p *serverProc
		p, err = startOnce(ctx, name, path, args)
		if err == nil {
			return p, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func startOnce(ctx context.Context, name, path string, args func(port int) []string) (*serverProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &serverProc{name: name, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exited: make(chan struct{})}
	p.cmd = exec.Command(path, args(port)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	if err := p.waitReady(ctx, 15*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s (%s): %w", name, strings.Join(p.cmd.Args, " "), err)
	}
	return p, nil
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the server binds it; startServer retries then.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls until the server answers "version" over TCP, exits, or
// the timeout passes.
func (p *serverProc) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = askVersion(p.addr); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering version after %v: %w; output: %q", timeout, last, p.out.String())
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited before answering version (%v); output: %q", p.cmd.ProcessState, p.out.String())
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick.C:
		}
	}
}

// askVersion sends "version" to addr and checks for a VERSION reply.
func askVersion(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "VERSION ") {
		return fmt.Errorf("version replied %q", line)
	}
	return nil
}

// stop kills the process by pid and waits until it has been reaped. It may
// be called more than once. NB: SIGKILL rather than SIGTERM: a cache has
// nothing to save, and memcached takes up to a second to shut down gracefully.
func (p *serverProc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		fmt.Fprintf(os.Stderr, "cachebench: kill %s (pid %d): %v\n", p.name, p.cmd.Process.Pid, err)
	}
	<-p.exited
}

// tailBuffer keeps the last 4 KiB written to it; it is safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex // guards buf
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if n := len(b.buf) - 4096; n > 0 {
		b.buf = append(b.buf[:0], b.buf[n:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// startServerPorts is startServer for a server that listens on more than
// its memcache port (a node's gossip and admin ports, a proxy's admin port):
// args gets the memcache port and extra more free loopback ports, all
// distinct. A server that exits before it answers "version" is retried
// twice on fresh ports. It returns the extra ports the server got.
func startServerPorts(ctx context.Context, name, path string, extra int, args func(port int, extra []int) []string) (*serverProc, []int, error) {
	var err error
	for range 3 {
		var ports []int
		if ports, err = freePorts(1 + extra); err != nil {
			return nil, nil, err
		}
		var p *serverProc
		if p, err = startOn(ctx, name, path, ports[0], args(ports[0], ports[1:])); err == nil {
			return p, ports[1:], nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, nil, err
}

// freePorts is freePort for n distinct ports: it keeps each listener open
// until all are picked.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startOn starts path with args, which make it serve memcache on
// 127.0.0.1:port, and returns once it answers "version".
func startOn(ctx context.Context, name, path string, port int, args []string) (*serverProc, error) {
	p := &serverProc{name: name, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exited: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	if err := p.waitReady(ctx, 15*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s (%s): %w", name, strings.Join(p.cmd.Args, " "), err)
	}
	return p, nil
}

// hasExited reports whether the process has exited.
func (p *serverProc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}
