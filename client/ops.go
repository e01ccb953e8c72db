package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// route returns the owner of key in the current view.
func (c *Client) route(ctx context.Context, key string) (*view, *server, error) {
	if c.closed.Load() {
		return nil, nil, ErrClosed
	}
	v, err := c.currentView(ctx)
	if err != nil {
		return nil, nil, err
	}
	s := v.owner(key)
	if s == nil {
		return nil, nil, ErrNoServers
	}
	return v, s, nil
}

// next returns the server after s for key on the ring, or nil.
func (v *view) next(key string, s *server) *server {
	for _, m := range v.r.Owners(keyBytes(key), 2) {
		if m.Name != s.name {
			return v.servers[m.Name]
		}
	}
	return nil
}

// isServerError reports whether err is an error reply. Replies are never
// wrapped on the way here; a type assertion (not errors.As) keeps the hot
// path from allocating.
func isServerError(err error) bool {
	_, ok := err.(*ServerError)
	return ok
}

// failure turns an error of do into the caller's *NodeError.
func failure(ctx context.Context, s *server, op string, err error) error {
	if errors.Is(err, ErrClosed) {
		return ErrClosed
	}
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return nodeError(s, op, err)
}

// Get returns the item stored under key, with its cas unique, or
// ErrCacheMiss. In cluster mode a hot key may be answered from the replica
// its owner pushed to this client, without a round trip (see EdgeStats).
func (c *Client) Get(ctx context.Context, key string) (*Item, error) {
	return c.get(ctx, "get", "gets ", key)
}

// GetAndTouch returns the item stored under key, with its cas unique, and
// sets its expiration (see Item.Expiration), or returns ErrCacheMiss.
func (c *Client) GetAndTouch(ctx context.Context, key string, expiration int32) (*Item, error) {
	return c.get(ctx, "gat", "gats "+strconv.Itoa(int(expiration))+" ", key)
}

func (c *Client) get(ctx context.Context, op, prefix, key string) (*Item, error) {
	if !legalKey(key) {
		return nil, ErrMalformedKey
	}
	v, s, err := c.route(ctx, key)
	if err != nil {
		return nil, err
	}
	if c.edge != nil {
		if op == "get" {
			if it := c.edge.lookup(key, s); it != nil {
				return it, nil
			}
		} else {
			c.edge.forget(key) // gat is a write: drop our replica first
		}
	}
	it, err := c.getFrom(ctx, s, op, prefix, key)
	if err != nil && ctx.Err() == nil && isNodeFailure(err) {
		return c.failover(ctx, v, s, op, prefix, key, err)
	}
	return it, err
}

// failover answers a read whose owner s failed with err, per GetFailover.
func (c *Client) failover(ctx context.Context, v *view, s *server, op, prefix, key string, err error) (*Item, error) {
	if c.cfg.GetFailover == FailoverNextOwner {
		if next := v.next(key, s); next != nil {
			it, err2 := c.getFrom(ctx, next, op, prefix, key)
			if err2 == nil || !isNodeFailure(err2) {
				return it, err2
			}
		}
	}
	var ne *NodeError
	if errors.As(err, &ne) {
		ne.miss = true
	}
	return nil, err
}

func (c *Client) getFrom(ctx context.Context, s *server, op, prefix, key string) (*Item, error) {
	o := getOp(opGet)
	o.key = key
	o, err := c.do(ctx, s, o, func(b []byte) []byte {
		b = append(b, prefix...)
		b = append(b, key...)
		return append(b, "\r\n"...)
	})
	if err != nil {
		return nil, failure(ctx, s, op, err)
	}
	it, err := o.item, o.err
	putOp(o)
	if err == nil && it == nil {
		err = ErrCacheMiss
	}
	return it, err
}

// Set stores item unconditionally.
func (c *Client) Set(ctx context.Context, item *Item) error {
	return c.store(ctx, "set", item, false)
}

// Add stores item only if its key holds no item; otherwise it returns
// ErrNotStored.
func (c *Client) Add(ctx context.Context, item *Item) error {
	return c.store(ctx, "add", item, false)
}

// Replace stores item only if its key already holds an item; otherwise it
// returns ErrNotStored.
func (c *Client) Replace(ctx context.Context, item *Item) error {
	return c.store(ctx, "replace", item, false)
}

// Append adds item.Value after the value stored under item.Key (flags and
// expiration are kept); if the key holds no item it returns ErrNotStored.
func (c *Client) Append(ctx context.Context, item *Item) error {
	return c.store(ctx, "append", item, false)
}

// Prepend adds item.Value before the value stored under item.Key; if the
// key holds no item it returns ErrNotStored.
func (c *Client) Prepend(ctx context.Context, item *Item) error {
	return c.store(ctx, "prepend", item, false)
}

// CompareAndSwap stores item only if the item under its key still has the
// cas unique item.CasID, as read by Get. It returns ErrCASConflict if the
// item changed since, and ErrCacheMiss if the key holds no item.
func (c *Client) CompareAndSwap(ctx context.Context, item *Item) error {
	return c.store(ctx, "cas", item, true)
}

func (c *Client) store(ctx context.Context, op string, it *Item, cas bool) error {
	if !legalKey(it.Key) {
		return ErrMalformedKey
	}
	return c.lineOp(ctx, op, it.Key, storeReplies, func(b []byte) []byte {
		b = appendStorage(b, op, it, cas)
		b = append(b, it.Value...)
		return append(b, "\r\n"...)
	}, func(line []byte) error {
		switch string(line) {
		case "STORED\r\n":
			return nil
		case "NOT_STORED\r\n":
			return ErrNotStored
		case "EXISTS\r\n":
			return ErrCASConflict
		}
		return ErrCacheMiss // NOT_FOUND
	})
}

// The replies each kind of request may get, besides error replies.
func storeReplies(l []byte) bool {
	switch string(l) {
	case "STORED\r\n", "NOT_STORED\r\n", "EXISTS\r\n", "NOT_FOUND\r\n":
		return true
	}
	return false
}
func deleteReplies(l []byte) bool { return string(l) == "DELETED\r\n" || string(l) == "NOT_FOUND\r\n" }
func touchReplies(l []byte) bool  { return string(l) == "TOUCHED\r\n" || string(l) == "NOT_FOUND\r\n" }
func okReply(l []byte) bool       { return string(l) == "OK\r\n" }
func versionReply(l []byte) bool  { return bytes.HasPrefix(l, []byte("VERSION ")) }
func arithReplies(l []byte) bool {
	if string(l) == "NOT_FOUND\r\n" {
		return true
	}
	_, ok := atou(bytes.TrimRight(l[:len(l)-2], " "))
	return ok
}

// lineOp sends the request enc encodes to key's owner and hands the
// one-line reply, already checked by check and not an error reply, to
// parse.
func (c *Client) lineOp(ctx context.Context, op, key string, check func([]byte) bool, enc func([]byte) []byte, parse func(line []byte) error) error {
	if !legalKey(key) {
		return ErrMalformedKey
	}
	if c.edge != nil {
		c.edge.forget(key) // every lineOp is a write: drop our replica first
	}
	_, s, err := c.route(ctx, key)
	if err != nil {
		return err
	}
	return c.lineOpOn(ctx, s, op, key, check, enc, parse)
}

// lineOpOn is lineOp on s; key (which may be "") picks the connection.
func (c *Client) lineOpOn(ctx context.Context, s *server, op, key string, check func([]byte) bool, enc func([]byte) []byte, parse func(line []byte) error) error {
	o := getOp(opLine)
	o.key, o.check = key, check
	o, err := c.do(ctx, s, o, enc)
	if err != nil {
		return failure(ctx, s, op, err)
	}
	if err = o.err; err == nil {
		if err = errorReply(s.addr, o.line); err == nil {
			err = parse(o.line)
		}
	}
	putOp(o)
	return err
}

// Delete removes the item under key, or returns ErrCacheMiss.
func (c *Client) Delete(ctx context.Context, key string) error {
	return c.lineOp(ctx, "delete", key, deleteReplies, func(b []byte) []byte {
		return append(append(append(b, "delete "...), key...), "\r\n"...)
	}, func(line []byte) error { return notFound(line, "DELETED\r\n") })
}

// Touch sets the expiration of the item under key (see Item.Expiration), or
// returns ErrCacheMiss.
func (c *Client) Touch(ctx context.Context, key string, expiration int32) error {
	return c.lineOp(ctx, "touch", key, touchReplies, func(b []byte) []byte {
		b = append(append(append(b, "touch "...), key...), ' ')
		return append(strconv.AppendInt(b, int64(expiration), 10), "\r\n"...)
	}, func(line []byte) error { return notFound(line, "TOUCHED\r\n") })
}

// notFound maps the reply ok to nil and NOT_FOUND to ErrCacheMiss.
func notFound(line []byte, ok string) error {
	if string(line) == ok {
		return nil
	}
	return ErrCacheMiss
}

// Increment adds delta to the decimal number stored under key and returns
// the new value; it wraps at 2^64. It returns ErrCacheMiss for a missing key
// and a *ServerError matching ErrNonNumeric for a value that is not a number.
func (c *Client) Increment(ctx context.Context, key string, delta uint64) (uint64, error) {
	return c.incrDecr(ctx, "incr", key, delta)
}

// Decrement subtracts delta from the decimal number stored under key and
// returns the new value; it stops at 0. Errors are as for Increment.
func (c *Client) Decrement(ctx context.Context, key string, delta uint64) (uint64, error) {
	return c.incrDecr(ctx, "decr", key, delta)
}

func (c *Client) incrDecr(ctx context.Context, op, key string, delta uint64) (uint64, error) {
	var val uint64
	err := c.lineOp(ctx, op, key, arithReplies, func(b []byte) []byte {
		b = append(append(append(append(b, op...), ' '), key...), ' ')
		return append(strconv.AppendUint(b, delta, 10), "\r\n"...)
	}, func(line []byte) error {
		if string(line) == "NOT_FOUND\r\n" {
			return ErrCacheMiss
		}
		val, _ = atou(bytes.TrimRight(line[:len(line)-2], " "))
		return nil
	})
	return val, err
}

// GetMulti returns the items found for keys, by key. It sends one
// "gets k1 k2 ..." to each owner, to at most Config.MaxFanout owners in
// parallel. A malformed key fails the whole call before anything is sent.
// If an owner cannot be reached, its keys are answered per
// Config.GetFailover: the items found elsewhere are returned together with
// an error that matches ErrCacheMiss and wraps a *NodeError per failed node.
// Hot keys may be answered from replicas, as by Get.
func (c *Client) GetMulti(ctx context.Context, keys []string) (map[string]*Item, error) {
	for _, k := range keys {
		if !legalKey(k) {
			return nil, ErrMalformedKey
		}
	}
	out := make(map[string]*Item, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	if c.closed.Load() {
		return nil, ErrClosed
	}
	v, err := c.currentView(ctx)
	if err != nil {
		return nil, err
	}
	parts := map[*server][]string{}
	for _, k := range keys {
		s := v.owner(k)
		if s == nil {
			return nil, ErrNoServers
		}
		if c.edge != nil {
			if it := c.edge.lookup(k, s); it != nil {
				out[k] = it
				continue
			}
		}
		parts[s] = append(parts[s], k)
	}
	var mu sync.Mutex // guards out and failed
	failed := map[*server]error{}
	c.fanOut(parts, func(s *server, ks []string) {
		err := c.getMultiFrom(ctx, s, ks, func(it *Item) { mu.Lock(); out[it.Key] = it; mu.Unlock() })
		if err != nil {
			mu.Lock()
			failed[s] = err
			mu.Unlock()
		}
	})
	if len(failed) > 0 && c.cfg.GetFailover == FailoverNextOwner && ctx.Err() == nil {
		retry := map[*server][]string{}
		for s, err := range failed {
			if !isNodeFailure(err) {
				continue
			}
			for _, k := range parts[s] {
				if next := v.next(k, s); next != nil && failed[next] == nil {
					retry[next] = append(retry[next], k)
				}
			}
		}
		c.fanOut(retry, func(s *server, ks []string) {
			c.getMultiFrom(ctx, s, ks, func(it *Item) { mu.Lock(); out[it.Key] = it; mu.Unlock() })
		})
	}
	var errs []error
	for _, err := range failed {
		var ne *NodeError
		if errors.As(err, &ne) && ctx.Err() == nil {
			ne.miss = true
		}
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// fanOut runs fn for each server's keys, at most MaxFanout at once; a
// single part runs on the caller's goroutine.
func (c *Client) fanOut(parts map[*server][]string, fn func(*server, []string)) {
	if len(parts) == 1 {
		for s, ks := range parts {
			fn(s, ks)
		}
		return
	}
	sem := make(chan struct{}, c.cfg.MaxFanout)
	var wg sync.WaitGroup
	for s, ks := range parts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(s, ks)
		})
	}
	wg.Wait()
}

func (c *Client) getMultiFrom(ctx context.Context, s *server, keys []string, fn func(*Item)) error {
	o, err := c.do(ctx, s, getOp(opGetMulti), func(b []byte) []byte {
		b = append(b, "gets"...)
		for _, k := range keys {
			b = append(append(b, ' '), k...)
		}
		return append(b, "\r\n"...)
	})
	if err != nil {
		return failure(ctx, s, "get", err)
	}
	for _, it := range o.items {
		fn(it)
	}
	err = o.err
	putOp(o)
	return err
}

// FlushAll invalidates every item on every server (in cluster mode, on
// every member of the ring), at most MaxFanout at once. It returns the
// joined errors of the servers that failed.
func (c *Client) FlushAll(ctx context.Context) error {
	if c.edge != nil {
		c.edge.dropAll()
	}
	return c.each(ctx, "flush_all", "flush_all\r\n", okReply)
}

// Ping checks that every server answers (with "version"), at most MaxFanout
// at once. It returns the joined errors of the servers that did not.
func (c *Client) Ping(ctx context.Context) error {
	return c.each(ctx, "ping", "version\r\n", versionReply)
}

// each sends req to every server and checks each one-line reply with ok.
func (c *Client) each(ctx context.Context, op, req string, ok func([]byte) bool) error {
	if c.closed.Load() {
		return ErrClosed
	}
	v, err := c.currentView(ctx)
	if err != nil {
		return err
	}
	if len(v.servers) == 0 {
		return ErrNoServers
	}
	parts := make(map[*server][]string, len(v.servers))
	for _, s := range v.servers {
		parts[s] = nil
	}
	var mu sync.Mutex
	var errs []error
	c.fanOut(parts, func(s *server, _ []string) {
		err := c.lineOpOn(ctx, s, op, "", ok, func(b []byte) []byte { return append(b, req...) },
			func([]byte) error { return nil })
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	return errors.Join(errs...)
}
