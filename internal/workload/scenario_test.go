package workload

import (
	"math"
	"testing"
	"time"
)

func TestScenario_shiftHappensWhenAsked(t *testing.T) {
	s := NewScenario(ScenarioConfig{Keys: 10_000, Skew: 1.1, Rate: 1000, Seed: 1, ShiftEvery: 2 * time.Second})
	top := s.KeyAt(0)
	for range 2000 {
		s.Next()
	}
	if s.KeyAt(0) != top || len(s.Events()) != 0 {
		t.Fatalf("hot set moved before 2 s (at %v)", s.Now())
	}
	if s.Now() != 2*time.Second {
		t.Fatalf("Now = %v after 2000 requests at 1000/s", s.Now())
	}
	s.Next() // request 2000, at 2 s: the shift applies first
	ev := s.Events()
	if s.KeyAt(0) == top || len(ev) != 20 {
		t.Fatalf("no shift at 2 s: top %d -> %d, %d events", top, s.KeyAt(0), len(ev))
	}
	if ev[0].At != 2*time.Second || ev[0].Key != top || ev[0].Rising || ev[1].Key != s.KeyAt(0) || !ev[1].Rising {
		t.Fatalf("events %+v %+v", ev[0], ev[1])
	}
	for r := range 100 { // every swapped-in key came from the cold half
		if s.KeyAt(r) < 5000 {
			t.Fatalf("rank %d holds key %d after the shift", r, s.KeyAt(r))
		}
	}
}

func TestScenario_flashCrowd(t *testing.T) {
	const share = 0.1
	s := NewScenario(ScenarioConfig{Keys: 10_000, Skew: 0.99, Rate: 10_000, Seed: 2,
		FlashShare: share, FlashStart: time.Second, FlashEnd: 2 * time.Second})
	var before, during, after int
	for range 30_000 {
		at, k := s.Now(), s.Next()
		if k != 9999 {
			continue
		}
		switch {
		case at < time.Second:
			before++
		case at < 2*time.Second:
			during++
		default:
			after++
		}
	}
	if math.Abs(float64(during)/10_000-share) > 0.01 || before > 10 || after > 10 {
		t.Fatalf("flash key drawn %d/%d/%d times before/during/after", before, during, after)
	}
	ev := s.Events()
	if len(ev) != 2 || !ev[0].Rising || ev[0].At != time.Second || ev[1].Rising || ev[1].At != 2*time.Second || !ev[1].Flash {
		t.Fatalf("flash events %+v", ev)
	}
}

func TestScenario_deterministic(t *testing.T) {
	cfg := ScenarioConfig{Keys: 5000, Skew: 1.2, Rate: 1000, Seed: 9, ShiftEvery: time.Second,
		FlashShare: 0.02, FlashStart: 1500 * time.Millisecond, FlashEnd: 2500 * time.Millisecond}
	a := NewScenario(cfg)
	cfg.Table = a.Table()
	b := NewScenario(cfg)
	for i := range 5000 {
		if x, y := a.Next(), b.Next(); x != y {
			t.Fatalf("request %d: %d != %d", i, x, y)
		}
	}
	if len(a.Events()) != len(b.Events()) || len(a.Events()) != 4*20+2 {
		t.Fatalf("events: %d vs %d", len(a.Events()), len(b.Events()))
	}
}
