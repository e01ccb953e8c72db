package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/hotcache/hotcache/client"
	"github.com/hotcache/hotcache/internal/memcachedtest"
	"github.com/hotcache/hotcache/node/nodetest"
)

// TestSemantics runs one suite of memcache semantics through the client API
// against every kind of server: a standalone cached in static and in cluster
// mode, a three-node cluster in cluster mode, and the real memcached in
// static mode. The cases replay what node/testdata/conformance pins down at
// the wire level, as an application sees it.
func TestSemantics(t *testing.T) {
	targets := []struct {
		name  string
		start func(t *testing.T) client.Config
	}{
		{"cached", func(t *testing.T) client.Config { return client.Config{Servers: []string{startNode(t).Addr()}} }},
		{"cached-watch", func(t *testing.T) client.Config { return client.Config{Seeds: []string{startNode(t).Addr()}} }},
		{"cluster", func(t *testing.T) client.Config {
			return client.Config{Seeds: []string{nodetest.Start(t, 3).Addr(1)}}
		}},
		{"memcached", func(t *testing.T) client.Config {
			return client.Config{Servers: []string{memcachedtest.Start(t)}}
		}},
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			runSemantics(t, newClient(t, tg.start(t)))
		})
	}
}

// A semanticsCase exercises one call or behaviour. key gives it keys of its
// own.
type semanticsCase struct {
	name string
	run  func(t *testing.T, ctx context.Context, c *client.Client, key func(string) string)
}

func runSemantics(t *testing.T, c *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i, sc := range semanticsCases {
		t.Run(sc.name, func(t *testing.T) {
			sc.run(t, ctx, c, func(s string) string { return fmt.Sprintf("sem%d:%s", i, s) })
		})
	}
}

// is fails t unless err matches want (nil means no error).
func is(t *testing.T, what string, err, want error) {
	t.Helper()
	if (want == nil && err != nil) || (want != nil && !errors.Is(err, want)) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

// has fails t unless key holds value with flags.
func has(t *testing.T, ctx context.Context, c *client.Client, key, value string, flags uint32) *client.Item {
	t.Helper()
	it, err := c.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %q", key, err, value)
	}
	if it.Key != key || string(it.Value) != value || it.Flags != flags || it.CasID == 0 {
		t.Fatalf("Get(%q) = {Key:%q Value:%q Flags:%d CasID:%d}, want value %q flags %d and a cas", key, it.Key, it.Value, it.Flags, it.CasID, value, flags)
	}
	return it
}

func missing(t *testing.T, ctx context.Context, c *client.Client, key string) {
	t.Helper()
	it, err := c.Get(ctx, key)
	if !errors.Is(err, client.ErrCacheMiss) || it != nil {
		t.Fatalf("Get(%q) = %+v, %v; want ErrCacheMiss", key, it, err)
	}
}

func set(t *testing.T, ctx context.Context, c *client.Client, key, value string, flags uint32, exp int32) {
	t.Helper()
	is(t, "Set "+key, c.Set(ctx, &client.Item{Key: key, Value: []byte(value), Flags: flags, Expiration: exp}), nil)
}

var semanticsCases = []semanticsCase{
	{"set_get", func(t *testing.T, ctx context.Context, c *client.Client, k func(string) string) {
		set(t, ctx, c, k("a"), "hello", 42, 0)
		has(t, ctx, c, k("a"), "hello", 42)
		set(t, ctx, c, k("a"), "", 1<<32-1, 0) // empty value, largest flags
		has(t, ctx, c, k("a"), "", 1<<32-1)
		missing(t, ctx, c, k("never"))
	}},
	{"add", func(t *testing.T, ctx context.Context, c *client.Client, k func(string) string) {
		is(t, "Add new", c.Add(ctx, &client.Item{Key: k("a"), Value: []byte("1")}), nil)
		is(t, "Add existing", c.Add(ctx, &client.Item{Key: k("a"), Value: []byte("2")}), client.ErrNotStored)
		has(t, ctx, c, k("a"), "1", 0)
	}},
	{"replace", func(t *testing.T, ctx context.Context, c *client.Client, k func(string) string) {
		is(t, "Replace missing", c.Replace(ctx, &client.Item{Key: k("a"), Value: []byte("1")}), client.ErrNotStored)
		missing(t, ctx, c, k("a"))
		set(t, ctx, c, k("a"), "1", 0, 0)
		is(t, "Replace existing", c.Replace(ctx, &client.Item{Key: k("a"), Value: []byte("2"), Flags: 9}), nil)
		has(t, ctx, c, k("a"), "2", 9)
	}},
	{"append_prepend", func(t *testing.T, ctx context.Context, c *client.Client, k func(string) string) {
		is(t, "Append missing", c.Append(ctx, &client.Item{Key: k("a"), Value: []byte("x")}), client.ErrNotStored)
		is(t, "Prepend missing", c.Prepend(ctx, &client.Item{Key: k("a"), Value: []byte("x")}), client.ErrNotStored)
		set(t, ctx, c, k("a"), "b", 7, 0)
		is(t, "Append", c.Append(ctx, &client.Item{Key: k("a"), Value: []byte("c"), Flags: 1}), nil)
		is(t, "Prepend", c.Prepend(ctx, &client.Item{Key: k("a"), Value: []byte("a"), Flags: 2}), nil)
		has(t, ctx, c, k("a"), "abc", 7) // flags of the stored item are kept
	}},
	{"cas", func(t *testing.T, ctx context.Context, c *client.Client, k func(string) string) {
		is(t, "CompareAndSwap missing", c.CompareAndSwap(ctx, &client.Item{Key: k("a"), Value: []byte("x"), CasID: 1}), client.ErrCacheMiss)
		set(t, ctx, c, k("a"), "1", 0, 0)
		it := has(t, ctx, c, k("a"), "1", 0)
		it.Value = []byte("2")
		is(t, "CompareAndSwap current", c.CompareAndSwap(ctx, it), nil)
		it2 := has(t, ctx, c, k("a"), "2", 0)
		if it2.CasID == it.CasID {
			t.Errorf("cas unique %d unchanged by a CompareAndSwap", it.CasID)
		}
		it.Value = []byte("3")
		is(t, "CompareAndSwap stale", c.CompareAndSwap(ctx, it), client.ErrCASConflict)
		has(t, ctx, c, k("a"), "2", 0)
	}},
	{"delete", func(t *testing.T, ctx context.Context, c *client.Client, k func(string) string) {
		is(t, "Delete missing", c.Delete(ctx, k("a")), client.ErrCacheMiss)
		set(t, ctx, c, k("a"), "1", 0, 0)
		is(t, "Delete", c.Delete(ctx, k("a")), nil)
		missing(t, ctx, c, k("a"))
	}},
	{"incr_decr", func(t *testing.T, ctx context.Context, c *client.Client, k func(string) string) {
		arith := func(what string, f func(context.Context, string, uint64) (uint64, error), key string, d, want uint64, wantErr error) {
			t.Helper()
			got, err := f(ctx, key, d)
			is(t, what, err, wantErr)
			if wantErr == nil && got != want {
				t.Fatalf("%s = %d, want %d", what, got, want)
			}
		}
		arith("Increment missing", c.Increment, k("n"), 1, 0, client.ErrCacheMiss)
		arith("Decrement missing", c.Decrement, k("n"), 1, 0, client.ErrCacheMiss)
		set(t, ctx, c, k("n"), "10", 5, 0)
		arith("Increment", c.Increment, k("n"), 5, 15, nil)
		arith("Decrement", c.Decrement, k("n"), 3, 12, nil)
		arith("Decrement below 0", c.Decrement, k("n"), 100, 0, nil)
		has(t, ctx, c, k("n"), "0 ", 5) // memcached pads a shorter result in place
		set(t, ctx, c, k("n"), "18446744073709551615", 0, 0)
		arith("Increment wraps", c.Increment, k("n"), 1, 0, nil)
		arith("Increment by 2^64-1", c.Increment, k("n"), 1<<64-1, 1<<64-1, nil)
		set(t, ctx, c, k("n"), "abc", 0, 0)
		_, err := c.Increment(ctx, k("n"), 1)
		var se *client.ServerError
		if !errors.Is(err, client.ErrNonNumeric) || !errors.As(err, &se) || !strings.HasPrefix(se.Reply, "CLIENT_ERROR ") {
			t.Fatalf("Increment of a non-number: err = %v, want a *ServerError matching ErrNonNumeric", err)
		}
		has(t, ctx, c, k("n"), "abc", 0) // and the connection is still good
	}},
	{"touch_gat", func(t *testing.T, ctx context.Context, c *client.Client, k func(string) string) {
		is(t, "Touch missing", c.Touch(ctx, k("a"), 100), client.ErrCacheMiss)
		_, err := c.GetAndTouch(ctx, k("a"), 100)
		is(t, "GetAndTouch missing", err, client.ErrCacheMiss)
		set(t, ctx, c, k("a"), "1", 3, 0)
		is(t, "Touch", c.Touch(ctx, k("a"), 100), nil)
		before := has(t, ctx, c, k("a"), "1", 3)
		it, err := c.GetAndTouch(ctx, k("a"), -1)
		if err != nil || string(it.Value) != "1" || it.Flags != 3 || it.CasID != before.CasID {
			t.Fatalf("GetAndTouch = %+v, %v; want the item with its cas unchanged", it, err)
		}
		missing(t, ctx, c, k("a")) // touched to already expired
		set(t, ctx, c, k("b"), "1", 0, 0)
		is(t, "Touch to expired", c.Touch(ctx, k("b"), -1), nil)
		missing(t, ctx, c, k("b"))
	}},
	{"expiration", func(t *testing.T, ctx context.Context, c *client.Client, k func(string) string) {
		set(t, ctx, c, k("neg"), "x", 0, -1)
		missing(t, ctx, c, k("neg"))
		now := time.Now().Unix()
		set(t, ctx, c, k("abs-past"), "x", 0, int32(now-100))
		missing(t, ctx, c, k("abs-past"))
		set(t, ctx, c, k("abs-future"), "x", 0, int32(now+1000))
		has(t, ctx, c, k("abs-future"), "x", 0)

		// Relative expiry, with a margin of at least 1 s around the servers'
		// once-a-second clocks: an item with exptime 2 lives between 1 and
		// 2 s, so it must be there within 1 s and gone after 3.2 s.
		start := time.Now()
		set(t, ctx, c, k("rel"), "x", 0, 2)
		set(t, ctx, c, k("touched"), "x", 0, 0)
		is(t, "Touch", c.Touch(ctx, k("touched"), 2), nil)
		set(t, ctx, c, k("gat"), "x", 0, 0)
		if _, err := c.GetAndTouch(ctx, k("gat"), 2); err != nil {
			t.Fatal(err)
		}
		keys := []string{k("rel"), k("touched"), k("gat")}
		got, err := c.GetMulti(ctx, keys)
		if elapsed := time.Since(start); elapsed < 900*time.Millisecond && (err != nil || len(got) != 3) {
			t.Fatalf("%v after setting exptime 2: GetMulti = %d items, %v; want all 3", elapsed, len(got), err)
		}
		for time.Since(start) < 3200*time.Millisecond { // a wait for the clock, not for a condition
			time.Sleep(3200*time.Millisecond - time.Since(start))
		}
		for _, key := range keys {
			missing(t, ctx, c, key)
		}
	}},
	{"malformed_keys", func(t *testing.T, ctx context.Context, c *client.Client, k func(string) string) {
		for _, bad := range []string{"", strings.Repeat("k", 251), "a b", "a\nb", "a\r", "a\x00", "\x7f", "tab\there", "é\x01"} {
			it := &client.Item{Key: bad, Value: []byte("x")}
			calls := map[string]error{}
			_, calls["Get"] = c.Get(ctx, bad)
			_, calls["GetAndTouch"] = c.GetAndTouch(ctx, bad, 1)
			_, calls["GetMulti"] = c.GetMulti(ctx, []string{k("ok"), bad})
			calls["Set"] = c.Set(ctx, it)
			calls["Add"] = c.Add(ctx, it)
			calls["Replace"] = c.Replace(ctx, it)
			calls["Append"] = c.Append(ctx, it)
			calls["Prepend"] = c.Prepend(ctx, it)
			calls["CompareAndSwap"] = c.CompareAndSwap(ctx, it)
			calls["Delete"] = c.Delete(ctx, bad)
			calls["Touch"] = c.Touch(ctx, bad, 1)
			_, calls["Increment"] = c.Increment(ctx, bad, 1)
			_, calls["Decrement"] = c.Decrement(ctx, bad, 1)
			for call, err := range calls {
				if !errors.Is(err, client.ErrMalformedKey) {
					t.Errorf("%s(%q): err = %v, want ErrMalformedKey", call, bad, err)
				}
			}
		}
		longest := strings.Repeat("k", 250-len(k(""))) // 250 bytes is fine
		set(t, ctx, c, k(longest), "x", 0, 0)
		has(t, ctx, c, k(longest), "x", 0)
		set(t, ctx, c, k("utf8-é"), "x", 0, 0) // bytes >= 0x80 are fine
		has(t, ctx, c, k("utf8-é"), "x", 0)
	}},
	{"binary_and_large_values", func(t *testing.T, ctx context.Context, c *client.Client, k func(string) string) {
		bin := make([]byte, 0, 512)
		for i := range 256 {
			bin = append(bin, byte(i))
		}
		bin = append(bin, "\r\nEND\r\nVALUE x 0 1\r\n"...)
		is(t, "Set binary", c.Set(ctx, &client.Item{Key: k("bin"), Value: bin}), nil)
		if it, err := c.Get(ctx, k("bin")); err != nil || !bytes.Equal(it.Value, bin) {
			t.Fatalf("binary value came back as %q, %v", it.Value, err)
		}
		large := make([]byte, 1000*1000) // fits memcached's default -I 1m with its item header
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range large {
			large[i] = byte(rng.Uint32())
		}
		is(t, "Set 1 MB", c.Set(ctx, &client.Item{Key: k("large"), Value: large}), nil)
		if it, err := c.Get(ctx, k("large")); err != nil || !bytes.Equal(it.Value, large) {
			t.Fatalf("1 MB value did not come back intact: %v", err)
		}
		err := c.Set(ctx, &client.Item{Key: k("huge"), Value: make([]byte, 2<<20)})
		var se *client.ServerError
		if !errors.Is(err, client.ErrTooLarge) || !errors.As(err, &se) {
			t.Fatalf("Set 2 MiB: err = %v, want a *ServerError matching ErrTooLarge", err)
		}
		missing(t, ctx, c, k("huge"))
		has(t, ctx, c, k("bin"), string(bin), 0) // the client is fine afterwards
	}},
	{"get_multi", func(t *testing.T, ctx context.Context, c *client.Client, k func(string) string) {
		var keys []string
		for i := range 60 {
			key := k(fmt.Sprint("m", i))
			set(t, ctx, c, key, fmt.Sprint("v", i), uint32(i), 0)
			keys = append(keys, key)
		}
		ask := append(append([]string{}, keys...), k("nope1"), k("nope2"), keys[0], keys[1])
		got, err := c.GetMulti(ctx, ask)
		if err != nil || len(got) != len(keys) {
			t.Fatalf("GetMulti: %d items, %v; want %d", len(got), err, len(keys))
		}
		for i, key := range keys {
			it := got[key]
			if it == nil || it.Key != key || string(it.Value) != fmt.Sprint("v", i) || it.Flags != uint32(i) || it.CasID == 0 {
				t.Fatalf("GetMulti[%q] = %+v", key, it)
			}
		}
		if got, err := c.GetMulti(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("GetMulti(nil) = %v, %v; want an empty map", got, err)
		}
		if got, err := c.GetMulti(ctx, []string{k("nope1")}); err != nil || len(got) != 0 {
			t.Errorf("GetMulti of a missing key = %v, %v; want an empty map and no error", got, err)
		}
	}},
	{"ping", func(t *testing.T, ctx context.Context, c *client.Client, k func(string) string) {
		is(t, "Ping", c.Ping(ctx), nil)
	}},
	{"flush_all", func(t *testing.T, ctx context.Context, c *client.Client, k func(string) string) { // last: it empties the server
		set(t, ctx, c, k("a"), "1", 0, 0)
		set(t, ctx, c, k("b"), "1", 0, 0)
		is(t, "FlushAll", c.FlushAll(ctx), nil)
		missing(t, ctx, c, k("a"))
		missing(t, ctx, c, k("b"))
		set(t, ctx, c, k("a"), "2", 0, 0) // and writes work again
		has(t, ctx, c, k("a"), "2", 0)
	}},
}

// TestMalformedKey_neverSent: a malformed key is refused before a single
// byte goes out.
func TestMalformedKey_neverSent(t *testing.T) {
	d := &countingDialer{}
	c := newClient(t, client.Config{Servers: []string{startNode(t).Addr()}, Dial: d.Dial})
	ctx := context.Background()
	for _, bad := range []string{"", "a b", strings.Repeat("x", 251)} {
		c.Get(ctx, bad)
		c.Set(ctx, &client.Item{Key: bad})
		c.GetMulti(ctx, []string{"fine", bad})
		c.Delete(ctx, bad)
		c.Increment(ctx, bad, 1)
	}
	if n := d.written.Load(); n != 0 {
		t.Fatalf("%d bytes were sent for malformed keys", n)
	}
	if _, err := c.Get(ctx, "fine"); !errors.Is(err, client.ErrCacheMiss) || d.written.Load() == 0 {
		t.Fatalf("a valid key: err = %v, %d bytes written", err, d.written.Load())
	}
}
