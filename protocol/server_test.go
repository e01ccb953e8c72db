package protocol

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoHandler answers get with one VALUE per key (data = key), storage
// commands with STORED, and panics on "get panic".
var echoHandler = HandlerFunc(func(ctx context.Context, w *ResponseWriter, req *Request) {
	switch {
	case req.Cmd.IsRetrieval():
		for _, k := range req.Keys {
			if string(k) == "panic" {
				panic("boom")
			}
			w.WriteValue(k, 0, k, 0, false)
		}
		w.WriteEnd()
	case req.Cmd.IsStorage():
		if req.Invalid != nil {
			w.WriteError(req.Invalid)
			return
		}
		w.WriteLine("STORED")
	case req.Cmd == CmdVersion:
		w.WriteLine("VERSION test")
	default:
		w.WriteError(ErrUnknownCommand)
	}
})

func startServer(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != ErrServerClosed {
			t.Errorf("Serve returned %v; want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// exchange writes in and reads until the reply holds want's length.
func exchange(t *testing.T, c net.Conn, in string, wantLen int) string {
	t.Helper()
	if _, err := io.WriteString(c, in); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, wantLen)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("reading reply to %q: %v (got %q)", in, err, buf)
	}
	return string(buf)
}

func TestServerPipelineInOrder(t *testing.T) {
	addr := startServer(t, &Server{Handler: echoHandler})
	c := dial(t, addr)
	var in, want strings.Builder
	for i := range 200 {
		k := "k" + strings.Repeat("x", i%7)
		in.WriteString("get " + k + "\r\nset " + k + " 0 0 1\r\nv\r\n")
		want.WriteString("VALUE " + k + " 0 " + itoa(len(k)) + "\r\n" + k + "\r\nEND\r\nSTORED\r\n")
	}
	if got := exchange(t, c, in.String(), want.Len()); got != want.String() {
		t.Fatalf("pipelined replies out of order or wrong:\n%q", got)
	}
}

func itoa(n int) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func TestServerErrorsKeepConnection(t *testing.T) {
	addr := startServer(t, &Server{Handler: echoHandler})
	c := dial(t, addr)
	cases := []struct{ in, want string }{
		{"bogus\r\n", "ERROR\r\n"},
		{"\x80\x00\x01garbage\r\n", "ERROR\r\n"},
		{"set k 0 0 1\r\nxyz\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"},
		{"set k 0 0 -1\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"set k abc 0 1 noreply\r\n", ""},
		{"get " + strings.Repeat("a", 251) + "\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"set k 0 0 2000000\r\n" + strings.Repeat("z", 2000002), "SERVER_ERROR object too large for cache\r\n"},
		{"version\r\n", "VERSION test\r\n"},
	}
	for _, tc := range cases {
		if got := exchange(t, c, tc.in, len(tc.want)); got != tc.want {
			t.Errorf("%q: got %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestServerClosesOnLongLine(t *testing.T) {
	addr := startServer(t, &Server{Handler: echoHandler})
	c := dial(t, addr)
	io.WriteString(c, "set "+strings.Repeat("a", 3000)) // no newline: memcached gives up after 2048
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after long line: n=%d err=%v; want EOF", n, err)
	}
	// A long get line is a multi-get and must be served.
	c2 := dial(t, addr)
	keys := strings.Repeat("abcdefghij ", 3000)
	io.WriteString(c2, "get "+keys+"\r\n")
	r := bufio.NewReader(c2)
	for range 3000 {
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "VALUE abcdefghij") {
			t.Fatalf("multi-get: %q %v", line, err)
		}
		r.ReadString('\n')
	}
}

func TestServerPanicClosesOnlyThatConnection(t *testing.T) {
	addr := startServer(t, &Server{Handler: echoHandler, Logger: discardLogger()})
	bad, good := dial(t, addr), dial(t, addr)
	if got := exchange(t, bad, "get panic\r\n", len("SERVER_ERROR internal error\r\n")); got != "SERVER_ERROR internal error\r\n" {
		t.Fatalf("got %q", got)
	}
	if _, err := bad.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection survived a panic: %v", err)
	}
	if got := exchange(t, good, "version\r\n", 14); got != "VERSION test\r\n" {
		t.Fatalf("other connection broken: %q", got)
	}
}

func TestServerMaxConns(t *testing.T) {
	s := &Server{Handler: echoHandler, MaxConns: 2}
	addr := startServer(t, s)
	a, b := dial(t, addr), dial(t, addr)
	exchange(t, a, "version\r\n", 14)
	exchange(t, b, "version\r\n", 14)
	c := dial(t, addr)
	got, _ := io.ReadAll(c)
	if string(got) != tooManyConns {
		t.Fatalf("third connection got %q", got)
	}
	if n := s.Stats().RejectedConnections.Load(); n != 1 {
		t.Fatalf("rejected_connections = %d", n)
	}
	a.Close()
	// Once a slot frees up, new connections are served again.
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().CurrConnections.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	exchange(t, dial(t, addr), "version\r\n", 14)
}

func TestHijack(t *testing.T) {
	var wg sync.WaitGroup
	h := HandlerFunc(func(ctx context.Context, w *ResponseWriter, req *Request) {
		if req.Cmd != CmdWatch {
			echoHandler(ctx, w, req)
			return
		}
		w.WriteLine("WATCHING")
		c, buffered, err := w.Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		wg.Go(func() {
			defer c.Close()
			io.WriteString(c, "buffered:"+string(buffered)+"\n")
			line, _ := bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, "echo:"+line)
		})
	})
	addr := startServer(t, &Server{Handler: h})
	c := dial(t, addr)
	want := "VERSION test\r\nWATCHING\r\nbuffered:early\n"
	if got := exchange(t, c, "version\r\nwatch\r\nearly", len(want)); got != want {
		t.Fatalf("got %q", got)
	}
	if got := exchange(t, c, "later\n", len("echo:later\n")); got != "echo:later\n" {
		t.Fatalf("got %q", got)
	}
	wg.Wait()
}

func TestShutdownDrainsIdleAndWaits(t *testing.T) {
	s := &Server{Handler: echoHandler}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	c := dial(t, ln.Addr().String())
	exchange(t, c, "version\r\n", 14)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-done; err != ErrServerClosed {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection not closed by Shutdown: %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestQuitFlushesEarlierReplies(t *testing.T) {
	addr := startServer(t, &Server{Handler: echoHandler})
	c := dial(t, addr)
	io.WriteString(c, "version\r\nquit\r\nversion\r\n")
	got, _ := io.ReadAll(c)
	if !bytes.Equal(got, []byte("VERSION test\r\n")) {
		t.Fatalf("got %q", got)
	}
}

// TestServerBlockTimeout: a data block that stops arriving (slowloris)
// closes its connection once BlockTimeout has passed; a block that arrives
// in time is served, and the deadline does not outlive it.
func TestServerBlockTimeout(t *testing.T) {
	s := &Server{Handler: echoHandler, BlockTimeout: 300 * time.Millisecond, Logger: discardLogger()}
	addr := startServer(t, s)
	ok := dial(t, addr)
	if got := exchange(t, ok, "set k 0 0 3\r\nabc\r\n", len("STORED\r\n")); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	// Idle well past BlockTimeout between requests: still served.
	time.Sleep(600 * time.Millisecond) // longer than BlockTimeout, on purpose
	if got := exchange(t, ok, "version\r\n", len("VERSION test\r\n")); got != "VERSION test\r\n" {
		t.Fatalf("after idling: %q", got)
	}

	slow := dial(t, addr)
	io.WriteString(slow, "set k 0 0 10\r\nabc")
	buf := make([]byte, 64)
	n, err := slow.Read(buf) // the server must close it, well before dial's 20 s deadline
	if err != io.EOF {
		t.Fatalf("a dripped block got %q, %v; want the connection closed", buf[:n], err)
	}
}

// TestServerMaxPendingBytes: blocks beyond the in-flight budget wait, then
// are refused with memcached's out-of-memory reply while the connection
// stays in step; once the budget frees, blocks are accepted again. A block
// holds its budget until its handler returns, so a handler that is stuck
// on "set a" keeps 800 bytes of the 1000 reserved.
func TestServerMaxPendingBytes(t *testing.T) {
	release := make(chan struct{})
	stuck := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, w *ResponseWriter, req *Request) {
		if req.Cmd == CmdSet && string(req.Key()) == "a" {
			close(stuck)
			<-release
		}
		echoHandler(ctx, w, req)
	})
	s := &Server{Handler: h, MaxPendingBytes: 1000, BlockTimeout: 400 * time.Millisecond, Logger: discardLogger()}
	addr := startServer(t, s)
	holder := dial(t, addr)
	io.WriteString(holder, "set a 0 0 800\r\n"+strings.Repeat("x", 800)+"\r\n")
	<-stuck

	c := dial(t, addr)
	want := "SERVER_ERROR out of memory storing object\r\n"
	if got := exchange(t, c, "set b 0 0 800\r\n"+strings.Repeat("y", 800)+"\r\n", len(want)); got != want {
		t.Fatalf("over budget: %q, want %q", got, want)
	}
	if got := exchange(t, c, "set small 0 0 5\r\nhello\r\n", len("STORED\r\n")); got != "STORED\r\n" {
		t.Fatalf("a block that fits, on the same connection: %q", got)
	}
	close(release)
	if got := exchange(t, holder, "", len("STORED\r\n")); got != "STORED\r\n" {
		t.Fatalf("the held set: %q", got)
	}
	if got := exchange(t, c, "set b 0 0 800\r\n"+strings.Repeat("y", 800)+"\r\n", len("STORED\r\n")); got != "STORED\r\n" {
		t.Fatalf("after the budget freed: %q", got)
	}
}
