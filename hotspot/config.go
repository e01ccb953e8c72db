package hotspot

import (
	"errors"
	"math"
	"math/bits"
	"time"
)

// Config parameterizes an Analyzer. The zero value is the tuned default;
// docs/hotspot.md says why each default is what it is.
type Config struct {
	// Tick is how often the owner calls Tick. Zero means 100ms.
	Tick time.Duration
	// Window is the span the read rate is measured over: counts decay by
	// exp(-Tick/Window) per tick, so a steady count equals one Window of
	// reads. Zero means 1s.
	Window time.Duration
	// Share is the share of the node's read rate at or above which a key is
	// hot. Zero means 0.005 (0.5%).
	Share float64
	// MinRate is the absolute read rate, in reads per second, below which no
	// key is hot however small the node's traffic. Zero means 100.
	MinRate float64
	// MaxHot is the most keys hot at once; on overflow the hottest win.
	// Zero means 64.
	MaxHot int
	// Hysteresis is the fraction of the threshold below which a hot key
	// cools. Zero means 0.8.
	Hysteresis float64
	// Saturation caps a key's count at this multiple of the threshold, which
	// bounds the time to cool whatever the key's past rate:
	// ln(Hysteresis/Saturation)/ln(decay) ticks (0.7s by default). Zero
	// means 1.6; a huge value disables the cap.
	Saturation float64
	// MinHot is the least time a key stays hot once it turned hot (unless
	// MaxHot hotter keys or MaxWriteRatio displace it). Zero means 2s;
	// negative means none.
	MinHot time.Duration
	// MaxWriteRatio is the largest writes/reads ratio of a hot key: a key
	// written more often is not worth replicating. Zero means 0.1; negative
	// disables the gate.
	MaxWriteRatio float64
	// MinSamples is how many sampled reads per Window a key at the
	// threshold must get; it sets the sampling rate. Zero means 50.
	MinSamples int
	// Unsampled records every read (for tests; about 5x the cost per read).
	Unsampled bool
	// Width and Depth size the sketch: Depth rows (at most 4) of Width
	// buckets of 8 bytes. Width is rounded up to a power of two. Zero means
	// 1024 and 4 (32 KiB).
	Width, Depth int
	// Candidates is the number of candidate-table slots, rounded up to a
	// power of two, at least 64. Zero means 4 x MaxHot.
	Candidates int
	// Rand is the source of random bits for sampling and the sketch. It
	// must be safe for concurrent use if Record is called concurrently.
	// Nil means math/rand/v2's (per-thread, lock-free) source; tests pass
	// a seeded one to be deterministic.
	Rand func() uint64
}

// Default values of Config fields; see Config.
const (
	DefaultTick          = 100 * time.Millisecond
	DefaultWindow        = time.Second
	DefaultShare         = 0.005
	DefaultMinRate       = 100
	DefaultMaxHot        = 64
	DefaultHysteresis    = 0.8
	DefaultSaturation    = 1.6
	DefaultMinHot        = 2 * time.Second
	DefaultMaxWriteRatio = 0.1
	DefaultMinSamples    = 50
	DefaultWidth         = 1024
	DefaultDepth         = 4
)

func (c Config) withDefaults() Config {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Share, DefaultShare)
	def(&c.MinRate, DefaultMinRate)
	def(&c.Hysteresis, DefaultHysteresis)
	def(&c.Saturation, DefaultSaturation)
	def(&c.MaxWriteRatio, DefaultMaxWriteRatio)
	c.Tick = orDuration(c.Tick, DefaultTick)
	c.Window = orDuration(c.Window, DefaultWindow)
	c.MinHot = orDuration(c.MinHot, DefaultMinHot)
	c.MaxHot = orInt(c.MaxHot, DefaultMaxHot)
	c.MinSamples = orInt(c.MinSamples, DefaultMinSamples)
	c.Width = pow2(orInt(c.Width, DefaultWidth))
	c.Depth = orInt(c.Depth, DefaultDepth)
	c.Candidates = pow2(max(64, orInt(c.Candidates, 4*c.MaxHot)))
	return c
}

func (c Config) validate() error {
	switch {
	case c.Tick < 0 || c.Window < 0:
		return errors.New("hotspot: Tick and Window must not be negative")
	case c.Share < 0 || c.Share > 1 || c.MinRate < 0:
		return errors.New("hotspot: Share must be in [0, 1] and MinRate not negative")
	case c.MaxHot < 0 || c.MinSamples < 0 || c.Width < 0 || c.Candidates < 0:
		return errors.New("hotspot: MaxHot, MinSamples, Width and Candidates must not be negative")
	case c.Depth < 0 || c.Depth > maxDepth:
		return errors.New("hotspot: Depth must be in [1, 4]")
	case c.Hysteresis < 0 || c.Hysteresis > 1:
		return errors.New("hotspot: Hysteresis must be in (0, 1]")
	case c.Saturation < 0 || (c.Saturation > 0 && c.Saturation < 1):
		return errors.New("hotspot: Saturation must be at least 1")
	case isBad(c.Share) || isBad(c.MinRate) || isBad(c.Hysteresis) || isBad(c.Saturation) || isBad(c.MaxWriteRatio):
		return errors.New("hotspot: Config has a NaN or infinite value")
	}
	return nil
}

func isBad(f float64) bool { return math.IsNaN(f) || math.IsInf(f, 0) }

func orDuration(v, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v
}

func orInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// pow2 rounds n >= 1 up to a power of two.
func pow2(n int) int { return 1 << bits.Len(uint(n-1)) }
