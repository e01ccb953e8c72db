package node

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hotcache/hotcache/protocol"
)

// Config configures a Node. The zero value is a working single node on
// :11211 with memcached's defaults.
type Config struct {
	// Addr is the memcache listen address. Empty means ":11211".
	Addr string
	// MemoryMB bounds the items' memory, in MiB (memcached's -m). Zero means 64.
	MemoryMB int
	// MaxItemSize is the largest item, in bytes, as memcached's -I counts it.
	// Zero means 1 MiB.
	MaxItemSize int
	// MaxConns is the most client connections served at once (-c). Zero means 1024.
	MaxConns int
	// IdleTimeout closes client connections idle this long. Zero means never.
	IdleTimeout time.Duration
	// Verbosity is the initial log verbosity (-v); 0 logs warnings and errors.
	Verbosity int
	// Logger receives the node's logs. Nil means slog.Default().
	Logger *slog.Logger
	// Clock returns the current time; tests inject a fake one. Nil means time.Now.
	Clock func() time.Time
}

// Version is what the version command and stats report.
const Version = "1.6.18-hotcache-0.1.0"

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = ":11211"
	}
	if c.MemoryMB == 0 {
		c.MemoryMB = 64
	}
	if c.MaxItemSize == 0 {
		c.MaxItemSize = protocol.DefaultMaxItemSize
	}
	if c.MaxConns == 0 {
		c.MaxConns = protocol.DefaultMaxConns
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.MemoryMB < 0:
		return errors.New("node: MemoryMB must not be negative")
	case c.MaxItemSize < 0:
		return errors.New("node: MaxItemSize must not be negative")
	case c.MaxItemSize != 0 && c.MaxItemSize < 1024:
		return fmt.Errorf("node: MaxItemSize %d is below memcached's minimum of 1024 bytes", c.MaxItemSize)
	case c.MaxItemSize > 1<<30:
		return fmt.Errorf("node: MaxItemSize %d is above memcached's maximum of 1 GiB", c.MaxItemSize)
	case c.MaxConns < 0:
		return errors.New("node: MaxConns must not be negative")
	case c.IdleTimeout < 0:
		return errors.New("node: IdleTimeout must not be negative")
	}
	if c.MaxItemSize > c.MemoryMB<<20 && c.MemoryMB > 0 {
		return fmt.Errorf("node: MaxItemSize %d exceeds the memory limit of %d MiB", c.MaxItemSize, c.MemoryMB)
	}
	return nil
}
