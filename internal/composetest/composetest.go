// Package composetest runs the repository's docker-compose.yml as a fixture
// for the end-to-end tests (deploy/compose and the chaos suite in
// deploy/chaos): it checks that Docker and a compose command answer, builds
// the image as `make image` does, starts a compose project of its own, and
// tears it down on every way out of the test.
package composetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The host ports docker-compose.yml publishes, on 127.0.0.1, by service.
var (
	// MemcachePort is each service's memcache port.
	MemcachePort = map[string]int{"node1": 21211, "node2": 21212, "node3": 21213, "proxy": 21311}
	// AdminPort is each service's admin HTTP port.
	AdminPort = map[string]int{"node1": 19101, "node2": 19102, "node3": 19103, "proxy": 19111}
	// Nodes are the node services, in name order.
	Nodes = []string{"node1", "node2", "node3"}
)

// RequireDocker skips the test unless a Docker engine and a compose command
// answer; with CACHE_REQUIRE_DOCKER=1 it fails instead. what names the test
// in the loud skip message.
func RequireDocker(t *testing.T, what string) {
	t.Helper()
	missing := func(why string, err error, out []byte) {
		msg := fmt.Sprintf("%s: %v\n%s", why, err, bytes.TrimSpace(out))
		if os.Getenv("CACHE_REQUIRE_DOCKER") == "1" {
			t.Fatalf("CACHE_REQUIRE_DOCKER=1 but %s", msg)
		}
		fmt.Fprintf(os.Stderr, "\n*** SKIPPING %s: %s\n*** set CACHE_REQUIRE_DOCKER=1 to make this a failure\n\n", what, msg)
		t.Skipf("SKIPPED, NOT RUN: %s (set CACHE_REQUIRE_DOCKER=1 to fail instead)", msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	info := exec.CommandContext(ctx, "docker", "info")
	info.Stderr = &stderr
	if err := info.Run(); err != nil {
		missing("`docker info` failed, no Docker engine", err, stderr.Bytes())
	}
	if Command() == nil {
		missing("neither `docker compose` nor `docker-compose` answers", errors.New("no compose command"), nil)
	}
}

// Command returns the compose command that answers, preferring the plugin,
// as the Makefile's COMPOSE does; nil if none does.
func Command() []string {
	for _, cmd := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := exec.CommandContext(ctx, cmd[0], append(cmd[1:], "version")...).Run()
		cancel()
		if err == nil {
			return cmd
		}
	}
	return nil
}

// A Project is one compose project started by a test.
type Project struct {
	// T is the test the project belongs to.
	T *testing.T
	// Root is the repository root, which holds docker-compose.yml.
	Root string
	// Cmd is the compose command ("docker compose" or "docker-compose").
	Cmd []string
	// Name is the project name (-p), unique to the test process.
	Name string
	// Fatalf ends the test; New sets it to T.Fatalf, and a test that wants
	// to remember its failure may replace it.
	Fatalf func(format string, args ...any)
	// Diagnose, if set, prints what explains a failure. It runs before the
	// teardown when the test failed, and at the -timeout deadline.
	Diagnose func()
	// BeforeDown, if set, runs first in the teardown (the chaos suite
	// unpauses a container it paused).
	BeforeDown func()

	what     string // the test, in messages
	started  atomic.Bool
	downOnce sync.Once
}

// New returns a project named prefix-<pid> for docker-compose.yml two
// directories up (the test runs in deploy/<name>), and arranges its
// teardown on every way out: the test's end (pass or fail), an interrupt,
// and the -timeout deadline, which panics without running cleanups, so the
// teardown happens a little before it. what names the test in messages.
func New(t *testing.T, what, prefix string) *Project {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "docker-compose.yml")); err != nil {
		t.Fatalf("no docker-compose.yml at the repository root: %v", err)
	}
	p := &Project{T: t, Root: root, Cmd: Command(), Name: fmt.Sprintf("%s-%d", prefix, os.Getpid()), Fatalf: t.Fatalf, what: what}
	t.Logf("compose command %q, project %s", strings.Join(p.Cmd, " "), p.Name)

	// Cleanups run last first: the signal handler stays until the teardown
	// is done.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	stopSig := make(chan struct{})
	go func() {
		select {
		case s := <-sig:
			if !p.started.Load() {
				os.Exit(1)
			}
			fmt.Fprintf(os.Stderr, "%s: %v: tearing down project %s\n", what, s, p.Name)
			p.Down()
			os.Exit(1)
		case <-stopSig:
		}
	}()
	t.Cleanup(func() { signal.Stop(sig); close(stopSig) })
	if deadline, ok := t.Deadline(); ok && time.Until(deadline) > 2*time.Minute {
		timer := time.AfterFunc(time.Until(deadline)-45*time.Second, func() {
			if !p.started.Load() {
				return
			}
			fmt.Fprintf(os.Stderr, "%s: -timeout is 45 s away: tearing down project %s now\n", what, p.Name)
			if p.Diagnose != nil {
				p.Diagnose()
			}
			p.Down()
		})
		t.Cleanup(func() { timer.Stop() })
	}
	t.Cleanup(func() {
		if !p.started.Load() {
			return
		}
		if t.Failed() && p.Diagnose != nil {
			p.Diagnose()
		}
		p.Down()
	})
	return p
}

// CheckPortsFree fails early, and clearly, when a host port the compose
// file publishes is taken, for example by a developer's `make cluster-up`.
func (p *Project) CheckPortsFree() {
	p.T.Helper()
	var busy []string
	for _, n := range append(slices.Clone(Nodes), "proxy") {
		for _, port := range []int{MemcachePort[n], AdminPort[n]} {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				holder, _ := exec.Command("docker", "ps", "--filter", "publish="+strconv.Itoa(port), "--format", "{{.Names}} ({{.Label \"com.docker.compose.project\"}})").Output()
				busy = append(busy, fmt.Sprintf("127.0.0.1:%d (%v; docker containers publishing it: %s)", port, err, orNone(bytes.TrimSpace(holder))))
				continue
			}
			ln.Close()
		}
	}
	if len(busy) > 0 {
		p.Fatalf("%s needs the host ports of docker-compose.yml, but these are taken:\n\t%s\n"+
			"stop whatever holds them (a running `make cluster-up`: `make cluster-down`; a leftover test project: "+
			"`docker-compose -p <project> down -v`) and run again", p.what, strings.Join(busy, "\n\t"))
	}
}

func orNone(b []byte) string {
	if len(b) == 0 {
		return "none"
	}
	return strings.ReplaceAll(string(b), "\n", ", ")
}

// BuildImage does what `make image` does, for the binaries the image holds:
// a static cached and cacheproxy, then the image around them.
func (p *Project) BuildImage() {
	p.T.Helper()
	start := time.Now()
	goCmd := "go"
	if path, err := exec.LookPath("go"); err == nil {
		goCmd = path
	}
	build := exec.Command(goCmd, "build", "-o", filepath.Join(p.Root, "bin")+string(filepath.Separator), "./cmd/cached", "./cmd/cacheproxy")
	build.Dir = p.Root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		p.Fatalf("CGO_ENABLED=0 go build ./cmd/cached ./cmd/cacheproxy: %v\n%s", err, out)
	}
	p.Docker(5*time.Minute, "build", "-t", "hotcache/cached:dev", ".")
	p.T.Logf("built hotcache/cached:dev in %v", time.Since(start).Round(time.Millisecond))
}

// Up starts the project (compose up -d).
func (p *Project) Up() {
	p.T.Helper()
	start := time.Now()
	p.started.Store(true)
	p.Compose(3*time.Minute, "up", "-d")
	p.T.Logf("compose up -d took %v", time.Since(start).Round(time.Millisecond))
}

// Down removes everything the project created, once; if compose leaves
// anything behind it removes that by the project's label.
func (p *Project) Down() {
	p.downOnce.Do(func() {
		if p.BeforeDown != nil {
			p.BeforeDown()
		}
		out, err := p.Run(3*time.Minute, p.Args("down", "-v", "--remove-orphans", "-t", "5")...)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: compose down: %v\n%s\n", p.what, err, out)
		}
		label := "label=com.docker.compose.project=" + p.Name
		if ids := fields(p.Run(time.Minute, "docker", "ps", "-aq", "--filter", label)); len(ids) > 0 {
			fmt.Fprintf(os.Stderr, "%s: removing leftover containers %v\n", p.what, ids)
			p.Run(time.Minute, append([]string{"docker", "rm", "-f", "-v"}, ids...)...)
		}
		if ids := fields(p.Run(time.Minute, "docker", "network", "ls", "-q", "--filter", label)); len(ids) > 0 {
			fmt.Fprintf(os.Stderr, "%s: removing leftover networks %v\n", p.what, ids)
			p.Run(time.Minute, append([]string{"docker", "network", "rm"}, ids...)...)
		}
	})
}

func fields(out string, err error) []string {
	if err != nil {
		return nil
	}
	return strings.Fields(out)
}

// Args returns the compose command line for the project with args.
func (p *Project) Args(args ...string) []string {
	return slices.Concat(p.Cmd, []string{"-f", filepath.Join(p.Root, "docker-compose.yml"), "-p", p.Name}, args)
}

// Run runs a command from the repository root and returns its combined
// output.
func (p *Project) Run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = p.Root
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %v)", err, timeout)
	}
	return string(out), err
}

// MustRun is Run, failing the test on an error.
func (p *Project) MustRun(timeout time.Duration, args ...string) string {
	p.T.Helper()
	out, err := p.Run(timeout, args...)
	if err != nil {
		p.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Compose runs a compose command on the project, failing the test on an
// error.
func (p *Project) Compose(timeout time.Duration, args ...string) string {
	p.T.Helper()
	return p.MustRun(timeout, p.Args(args...)...)
}

// Docker runs a docker command, failing the test on an error.
func (p *Project) Docker(timeout time.Duration, args ...string) string {
	p.T.Helper()
	return p.MustRun(timeout, append([]string{"docker"}, args...)...)
}

// ContainerID returns the id of service's container. It asks compose, so
// that the test does not depend on how the compose version names
// containers.
func (p *Project) ContainerID(service string) string {
	p.T.Helper()
	id := strings.TrimSpace(p.Compose(time.Minute, "ps", "-q", service))
	if id == "" || strings.ContainsAny(id, " \n") {
		p.Fatalf("compose ps -q %s: %q, want one container id", service, id)
	}
	return id
}

// NetworkOf returns the one network a service's container is on and its
// configured address there.
func (p *Project) NetworkOf(service string) (network, ip string) {
	p.T.Helper()
	out := p.Docker(time.Minute, "inspect", "-f", "{{json .NetworkSettings.Networks}}", p.ContainerID(service))
	var nets map[string]struct {
		IPAddress  string
		IPAMConfig *struct{ IPv4Address string }
	}
	if err := json.Unmarshal([]byte(out), &nets); err != nil || len(nets) != 1 {
		p.Fatalf("networks of %s: %v, want exactly one network: %s", service, err, out)
	}
	for name, n := range nets {
		network, ip = name, n.IPAddress
		if n.IPAMConfig != nil && n.IPAMConfig.IPv4Address != "" {
			ip = n.IPAMConfig.IPv4Address
		}
	}
	if ip == "" {
		p.Fatalf("%s has no address on %s: %s", service, network, out)
	}
	return network, ip
}
