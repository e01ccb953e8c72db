package client_test

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotcache/hotcache/client"
	"github.com/hotcache/hotcache/protocol"
	"github.com/hotcache/hotcache/ring"
)

// TestWatch_ringOrderAndSequence scripts a node's side of the stream: within
// a stream an older generation is ignored and a newer one installed; a gap
// in the sequence numbers ends the stream; the next stream's first ring is
// its snapshot and is taken whatever its generation.
func TestWatch_ringOrderAndSequence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mk := func(name string) (*ring.Ring, []byte) {
			r, err := ring.New([]ring.Member{{Name: name, Addr: name + ":1"}}, ring.Config{PartitionCount: 7, ReplicationFactor: 2})
			if err != nil {
				t.Fatal(err)
			}
			text, _ := r.MarshalText()
			return r, text
		}
		ra, ta := mk("a")
		rb, tb := mk("b")
		var dials atomic.Int32
		streams := make(chan chan []protocol.WatchEvent, 4) // one per stream the client opens
		dial := func(ctx context.Context, addr string) (net.Conn, error) {
			near, far := net.Pipe()
			if addr != "seed:1" { // the ring's members refuse everything
				near.Close()
				far.Close()
				return nil, errors.New("connection refused (test)")
			}
			dials.Add(1)
			step := make(chan []protocol.WatchEvent)
			streams <- step
			go func() {
				defer far.Close()
				r := bufio.NewReader(far)
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
				go func() { // drain PINGs
					for {
						if _, err := protocol.ReadWatchMessage(r); err != nil {
							return
						}
					}
				}()
				for evs := range step {
					for _, ev := range evs {
						b, _ := protocol.AppendWatchEvent(nil, &ev)
						if _, err := far.Write(b); err != nil {
							return
						}
					}
				}
			}()
			return near, nil
		}
		c, err := client.New(client.Config{Seeds: []string{"seed:1"}, Dial: dial, Logger: slog.New(slog.DiscardHandler), BackoffBase: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		synctest.Wait()
		step := <-streams
		defer func() { close(step) }()
		ring := func() string {
			synctest.Wait()
			if r := c.Ring(); r != nil {
				return r.Members()[0].Name
			}
			return "none"
		}
		step <- []protocol.WatchEvent{{Kind: protocol.WatchRing, Seq: 1, Generation: 2, Data: ta}}
		if got := ring(); got != "a" {
			t.Fatalf("after the snapshot: ring %s, want a", got)
		}
		step <- []protocol.WatchEvent{{Kind: protocol.WatchRing, Seq: 2, Generation: 1, Data: tb}}
		if got := ring(); got != "a" {
			t.Fatalf("after an older generation: ring %s, want a kept", got)
		}
		step <- []protocol.WatchEvent{{Kind: protocol.WatchRing, Seq: 3, Generation: 3, Data: tb}}
		if got := ring(); got != "b" || c.Ring().Identity() != rb.Identity() {
			t.Fatalf("after a newer generation: ring %s, want b", got)
		}
		step <- []protocol.WatchEvent{{Kind: protocol.WatchPong, Seq: 5, Stamp: 1}} // 4 is missing
		synctest.Wait()
		time.Sleep(4 * time.Second) // fake time: past the backoffs (the member it tries first refuses)
		synctest.Wait()
		if n := dials.Load(); n != 2 {
			t.Fatalf("after a sequence gap: %d stream dials, want a reconnect (2)", n)
		}
		if got := ring(); got != "b" {
			t.Fatalf("while reconnecting: ring %s, want the last one (b) kept", got)
		}
		step2 := <-streams
		defer func() { close(step2) }()
		step2 <- []protocol.WatchEvent{{Kind: protocol.WatchRing, Seq: 1, Generation: 1, Data: ta}}
		if got := ring(); got != "a" || c.Ring().Identity() != ra.Identity() {
			t.Fatalf("a new stream's snapshot: ring %s, want a", got)
		}
	})
}
