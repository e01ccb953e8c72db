package workload

import (
	"fmt"
	"time"
)

// ScenarioConfig describes a Zipf stream whose hot set moves, on a virtual
// clock of Rate requests per virtual second (request i happens at i/Rate s).
// It follows the NetCache-style "hot-in" evaluation: every ShiftEvery the
// ShiftRanks most popular ranks swap places with random cold ranks, and a
// flash crowd can send a share of all requests to the coldest key.
type ScenarioConfig struct {
	// Keys is the number of key ids, [0, Keys). Required.
	Keys int
	// Skew is the Zipf exponent s (any s >= 0).
	Skew float64
	// Rate is requests per virtual second. Zero means 200 000.
	Rate int
	// Seed fixes the stream.
	Seed uint64
	// DrawSeed, if not zero, seeds the key draws (the Zipf ranks and the
	// flash-crowd coin) apart from the hot-set shifts, which Seed alone
	// then fixes. Streams with the same Seed and different DrawSeeds move
	// the same keys in and out of the hot set at the same virtual times but
	// draw different keys: one stream per connection of a load generator,
	// all seeing one hot set. Zero draws from Seed, as before DrawSeed
	// existed.
	DrawSeed uint64
	// ShiftEvery is the period of hot-set shifts. Zero means no shifts.
	ShiftEvery time.Duration
	// ShiftRanks is how many top ranks each shift swaps with distinct ranks
	// drawn uniformly from [Keys/2, Keys-1). Zero means 100.
	ShiftRanks int
	// EventRanks is how many top ranks produce Events at a shift: the keys
	// that enter them rise, the keys that leave them fall. Zero means 10.
	EventRanks int
	// FlashShare is the share of all requests that go to the flash key
	// (the key at the coldest rank, which shifts never move) during
	// [FlashStart, FlashEnd). Zero means no flash crowd.
	FlashShare float64
	// FlashStart and FlashEnd bound the flash crowd in virtual time.
	FlashStart, FlashEnd time.Duration
	// Table, if set, is a shared Zipf table; it must have Keys ranks and
	// exponent Skew. Nil builds one.
	Table *ZipfTable
}

// Event is a key entering or leaving the hot set by design of the scenario.
type Event struct {
	// At is the virtual time of the event.
	At time.Duration
	// Key is the key id.
	Key int
	// Rising is true when the key becomes popular, false when it stops.
	Rising bool
	// Share is the key's share of all requests while popular: after a
	// rising event, before a falling one.
	Share float64
	// Flash is true for flash-crowd events, false for shifts.
	Flash bool
}

// Scenario is a Stream over a ScenarioConfig. It is not safe for
// concurrent use.
type Scenario struct {
	cfg        ScenarioConfig
	z          *Zipf
	rng        splitmix  // shifts; also the flash coin unless DrawSeed is set
	coin       *splitmix // the flash coin: &rng, or &draw
	draw       splitmix
	perm       []int32 // rank -> key id
	n          int64   // requests emitted
	nextShift  int64   // request index of the next shift; -1 if none
	flashStart int64   // request indices bounding the flash crowd
	flashEnd   int64
	flashKey   int
	events     []Event
}

// NewScenario returns the scenario's stream. It panics on an invalid
// config (Keys too small for ShiftRanks, a share outside [0, 1)).
func NewScenario(cfg ScenarioConfig) *Scenario {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		panic(err)
	}
	tab := cfg.Table
	if tab == nil {
		tab = NewZipfTable(cfg.Keys, cfg.Skew)
	}
	s := &Scenario{
		cfg:       cfg,
		z:         tab.NewStream(cfg.Seed),
		rng:       splitmix{s: cfg.Seed ^ 0x5ca1ab1e},
		perm:      make([]int32, cfg.Keys),
		nextShift: -1,
		flashKey:  cfg.Keys - 1,
	}
	s.coin = &s.rng
	if cfg.DrawSeed != 0 {
		s.z = tab.NewStream(cfg.DrawSeed)
		s.draw = splitmix{s: cfg.DrawSeed ^ 0xf1a54c0ffee}
		s.coin = &s.draw
	}
	for i := range s.perm {
		s.perm[i] = int32(i)
	}
	if cfg.ShiftEvery > 0 {
		s.nextShift = s.index(cfg.ShiftEvery)
	}
	s.flashStart, s.flashEnd = -1, -1
	if cfg.FlashShare > 0 {
		s.flashStart, s.flashEnd = s.index(cfg.FlashStart), s.index(cfg.FlashEnd)
	}
	return s
}

func (c ScenarioConfig) withDefaults() ScenarioConfig {
	if c.Rate == 0 {
		c.Rate = 200_000
	}
	if c.ShiftRanks == 0 {
		c.ShiftRanks = 100
	}
	if c.EventRanks == 0 {
		c.EventRanks = 10
	}
	return c
}

func (c ScenarioConfig) validate() error {
	switch {
	case c.Rate < 0:
		return fmt.Errorf("workload: negative Rate %d", c.Rate)
	case c.ShiftEvery > 0 && c.Keys/2-1 < 2*c.ShiftRanks:
		return fmt.Errorf("workload: %d keys are too few to shift %d ranks", c.Keys, c.ShiftRanks)
	case c.EventRanks > c.ShiftRanks:
		return fmt.Errorf("workload: EventRanks %d > ShiftRanks %d", c.EventRanks, c.ShiftRanks)
	case c.FlashShare < 0 || c.FlashShare >= 1:
		return fmt.Errorf("workload: FlashShare %v outside [0, 1)", c.FlashShare)
	case c.Table != nil && (c.Table.N() != c.Keys || c.Table.S() != c.Skew):
		return fmt.Errorf("workload: Table does not match Keys and Skew")
	}
	return nil
}

// index converts a virtual time to the index of the first request at or
// after it.
func (s *Scenario) index(d time.Duration) int64 {
	return (int64(d)*int64(s.cfg.Rate) + int64(time.Second) - 1) / int64(time.Second)
}

// Now returns the virtual time of the next request.
func (s *Scenario) Now() time.Duration {
	return time.Duration(s.n * int64(time.Second) / int64(s.cfg.Rate))
}

// Requests returns how many requests have been emitted.
func (s *Scenario) Requests() int64 { return s.n }

// Rate returns the requests per virtual second.
func (s *Scenario) Rate() int { return s.cfg.Rate }

// Events returns the events that have happened so far, in order. The slice
// is shared; do not modify it.
func (s *Scenario) Events() []Event { return s.events }

// Table returns the Zipf table the scenario draws ranks from.
func (s *Scenario) Table() *ZipfTable { return s.z.t }

// KeyAt returns the key id currently at a popularity rank.
func (s *Scenario) KeyAt(rank int) int { return int(s.perm[rank]) }

// Next returns the next key id and advances the virtual clock by one request.
func (s *Scenario) Next() int {
	if s.n == s.nextShift {
		s.shift()
	}
	flash := s.n >= s.flashStart && s.n < s.flashEnd
	if s.n == s.flashStart || s.n == s.flashEnd {
		s.flashEvent(flash)
	}
	s.n++
	if flash && s.coin.float64() < s.cfg.FlashShare {
		return s.flashKey
	}
	return int(s.perm[s.z.Next()])
}

// AdvanceTo moves the virtual clock forward to d without drawing keys, as if
// the requests in between had been skipped: the shifts and flash-crowd
// events due before d happen, in order and at their own virtual times, and
// the next request is the first at or after d. It does nothing if the clock
// is already at or past d. With a high Rate (say 1e9, one request per
// virtual nanosecond) and AdvanceTo(elapsed) before each batch, a caller
// drives the scenario by wall time while the stream stays a pure function
// of its calls.
func (s *Scenario) AdvanceTo(d time.Duration) {
	target := s.index(d)
	for s.n < target {
		s.eventsAt() // what Next would do before drawing request s.n
		next := target
		for _, at := range [...]int64{s.nextShift, s.flashStart, s.flashEnd} {
			if at > s.n && at < next {
				next = at
			}
		}
		s.n = next
	}
}

// eventsAt applies the shift and flash events due at request index s.n.
func (s *Scenario) eventsAt() {
	if s.n == s.nextShift {
		s.shift()
	}
	if s.n == s.flashStart || s.n == s.flashEnd {
		s.flashEvent(s.n >= s.flashStart && s.n < s.flashEnd)
	}
}

// zipfShare is the share of all requests that Zipf rank r gets now.
func (s *Scenario) zipfShare(r int) float64 {
	p := s.z.t.Prob(r)
	if s.n >= s.flashStart && s.n < s.flashEnd {
		p *= 1 - s.cfg.FlashShare
	}
	return p
}

func (s *Scenario) shift() {
	at := s.Now()
	cold := s.cfg.Keys / 2
	span := s.cfg.Keys - 1 - cold // never the coldest rank: it is the flash key
	picked := make(map[int]bool, s.cfg.ShiftRanks)
	for r := range s.cfg.ShiftRanks {
		j := cold + s.rng.intn(span)
		for picked[j] {
			j = cold + s.rng.intn(span)
		}
		picked[j] = true
		out := s.perm[r]
		s.perm[r], s.perm[j] = s.perm[j], out
		if r < s.cfg.EventRanks {
			share := s.zipfShare(r)
			s.events = append(s.events,
				Event{At: at, Key: int(out), Rising: false, Share: share},
				Event{At: at, Key: int(s.perm[r]), Rising: true, Share: share})
		}
	}
	s.nextShift = s.index(at + s.cfg.ShiftEvery)
}

func (s *Scenario) flashEvent(rising bool) {
	s.events = append(s.events, Event{At: s.Now(), Key: s.flashKey, Rising: rising, Share: s.cfg.FlashShare, Flash: true})
}
