package connpool_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"strings"
	"time"

	"github.com/hotcache/hotcache/internal/connpool"
	"github.com/hotcache/hotcache/protocol"
)

// Get a connection, arm its deadline, do one request, and Put it back with
// the request's error, which decides whether it is reused.
func Example() {
	addr, stop := startVersionServer()
	defer stop()

	pool, err := connpool.New(connpool.Config{MaxActive: 8})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pool.Get(ctx, addr)
	if err != nil {
		log.Fatal(err)
	}
	reply, err := version(ctx, c)
	pool.Put(c, err) // nil: the connection is idle again, ready for the next Get
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.TrimSpace(reply))
	fmt.Println("idle:", pool.Stats()[addr].Idle)
	// Output:
	// VERSION 1.6.0
	// idle: 1
}

// version sends "version" and reads the one-line reply.
func version(ctx context.Context, c *connpool.Conn) (string, error) {
	if err := c.SetDeadline(ctx, time.Second); err != nil {
		return "", err
	}
	if _, err := c.W.WriteString("version\r\n"); err != nil {
		return "", err
	}
	if err := c.W.Flush(); err != nil {
		return "", err
	}
	return c.R.ReadString('\n')
}

// startVersionServer serves "version" on 127.0.0.1 until stop is called.
func startVersionServer() (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &protocol.Server{Handler: protocol.HandlerFunc(func(_ context.Context, w *protocol.ResponseWriter, req *protocol.Request) {
		if req.Cmd == protocol.CmdVersion {
			w.WriteLine("VERSION 1.6.0")
		}
	})}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	return ln.Addr().String(), func() { srv.Shutdown(context.Background()); <-done }
}
