package connpool

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"time"
)

// The defaults that the zero value of each Config field stands for. The
// reasons behind each are in docs/connpool.md.
const (
	DefaultMaxIdle       = 4
	DefaultMaxActive     = 32
	DefaultDialTimeout   = time.Second
	DefaultBackoffBase   = 50 * time.Millisecond
	DefaultBackoffCap    = 5 * time.Second
	DefaultIdleTimeout   = 60 * time.Second
	DefaultHealthAfter   = 5 * time.Second
	DefaultHealthTimeout = 250 * time.Millisecond
	DefaultWarmBatch     = 8
)

// Config configures a Pool. The zero value is ready to use: each field's
// comment says what its zero value means. New validates it.
type Config struct {
	// MaxIdle is how many idle connections are kept per address for reuse;
	// a connection Put when MaxIdle are already idle is closed. Zero means 4.
	// A value above MaxActive is treated as MaxActive. Negative is invalid.
	MaxIdle int
	// MaxActive bounds the connections open to one address at once: in use,
	// idle or being dialed. A Get past it waits, under its ctx, until a
	// connection is Put. Zero means 32. Negative is invalid.
	MaxActive int
	// DialTimeout bounds one dial together with the Hello exchange. Zero
	// means 1s. Negative is invalid.
	DialTimeout time.Duration
	// BackoffBase is the scale of the redial backoff: after the n-th
	// consecutive failed dial to an address (n counted from 0) it is not
	// dialed again for rand(0, min(BackoffCap, BackoffBase·2ⁿ)). Zero means
	// 50ms. Negative is invalid.
	BackoffBase time.Duration
	// BackoffCap bounds the redial backoff. Zero means 5s. It must not be
	// below BackoffBase.
	BackoffCap time.Duration
	// IdleTimeout closes connections that have been idle for longer than
	// this. Zero means 60s; negative means idle connections are never closed
	// for age (and no background goroutine is started).
	IdleTimeout time.Duration
	// HealthAfter is how long a connection may sit idle before Get checks it
	// with "mn" (expecting "MN") before handing it out. Zero means 5s;
	// negative turns health checks off.
	HealthAfter time.Duration
	// HealthTimeout bounds a health check's round trip (and is cut shorter by
	// the ctx of the Get). Zero means 250ms. Negative is invalid.
	HealthTimeout time.Duration
	// Dial opens a connection to addr and must honour ctx. Nil means a
	// net.Dialer on "tcp". It is the seam for TLS.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Hello, if not empty, is written on every new connection before it is
	// used (a peer handshake line, for example, with its "\r\n"); the server's
	// one-line reply must not start with "ERROR", "CLIENT_ERROR" or
	// "SERVER_ERROR", or the dial counts as failed. Nil means no handshake.
	Hello []byte
	// Rand returns a number in [0, 1) and draws the backoff jitter. It must be
	// safe for concurrent use. Nil means math/rand/v2's Float64.
	Rand func() float64
	// Now tells the pool's time: idle ages, health-check staleness and
	// backoff. Nil means time.Now. Socket deadlines always use the real clock,
	// as net.Conn does.
	Now func() time.Time
}

// withDefaults validates c and fills in the defaults of its zero fields.
func (c Config) withDefaults() (Config, error) {
	if c.MaxIdle < 0 || c.MaxActive < 0 {
		return c, errors.New("connpool: MaxIdle and MaxActive must not be negative")
	}
	if c.DialTimeout < 0 || c.BackoffBase < 0 || c.BackoffCap < 0 || c.HealthTimeout < 0 {
		return c, errors.New("connpool: DialTimeout, BackoffBase, BackoffCap and HealthTimeout must not be negative")
	}
	c.MaxActive = orDefault(c.MaxActive, DefaultMaxActive)
	c.MaxIdle = min(orDefault(c.MaxIdle, DefaultMaxIdle), c.MaxActive)
	c.DialTimeout = orDefault(c.DialTimeout, DefaultDialTimeout)
	c.BackoffBase = orDefault(c.BackoffBase, DefaultBackoffBase)
	c.BackoffCap = orDefault(c.BackoffCap, DefaultBackoffCap)
	if c.BackoffCap < c.BackoffBase {
		return c, errors.New("connpool: BackoffCap must not be below BackoffBase")
	}
	c.IdleTimeout = orDefault(c.IdleTimeout, DefaultIdleTimeout)
	c.HealthAfter = orDefault(c.HealthAfter, DefaultHealthAfter)
	c.HealthTimeout = orDefault(c.HealthTimeout, DefaultHealthTimeout)
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}
