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

// TestScenario_sequenceUnchanged pins the stream of a fixed config, so that
// additions (DrawSeed, AdvanceTo) cannot change what existing callers draw.
func TestScenario_sequenceUnchanged(t *testing.T) {
	s := NewScenario(ScenarioConfig{Keys: 5000, Skew: 1.2, Rate: 1000, Seed: 9, ShiftEvery: time.Second,
		FlashShare: 0.3, FlashStart: 1500 * time.Millisecond, FlashEnd: 2500 * time.Millisecond})
	var h uint64
	for range 5000 {
		h = h*31 + uint64(s.Next())
	}
	if h != 15275381173042364158 || len(s.Events()) != 82 || s.KeyAt(0) != 3737 {
		t.Fatalf("sequence hash %d, %d events, top key %d; want 15275381173042364158, 82, 3737", h, len(s.Events()), s.KeyAt(0))
	}
}

func TestScenario_advanceTo(t *testing.T) {
	cfg := ScenarioConfig{Keys: 10_000, Skew: 1.1, Rate: 1000, Seed: 3, ShiftEvery: time.Second,
		FlashShare: 0.5, FlashStart: 2500 * time.Millisecond, FlashEnd: 3500 * time.Millisecond}
	stepped, jumped := NewScenario(cfg), NewScenario(cfg)
	for range 1500 { // 1.5 s by drawing: one shift
		stepped.Next()
	}
	jumped.AdvanceTo(1500 * time.Millisecond)
	if jumped.Now() != 1500*time.Millisecond || jumped.Requests() != 1500 {
		t.Fatalf("after AdvanceTo(1.5s): Now %v, %d requests", jumped.Now(), jumped.Requests())
	}
	if len(jumped.Events()) != 20 || jumped.Events()[0].At != time.Second {
		t.Fatalf("AdvanceTo(1.5s) gave %d events (first %+v), want the 20 of the shift at 1 s", len(jumped.Events()), jumped.Events()[0])
	}
	for r := range 100 { // the same shift: shifts draw from their own generator
		if stepped.KeyAt(r) != jumped.KeyAt(r) {
			t.Fatalf("rank %d: key %d stepping, %d jumping", r, stepped.KeyAt(r), jumped.KeyAt(r))
		}
	}
	jumped.AdvanceTo(time.Second) // backwards: nothing happens
	if jumped.Requests() != 1500 {
		t.Fatalf("AdvanceTo into the past moved the clock to %v", jumped.Now())
	}
	// Jump over a shift and the flash start at once: both happen, in order.
	jumped.AdvanceTo(3 * time.Second)
	ev := jumped.Events()
	if len(ev) != 41 || ev[20].At != 2*time.Second || ev[20].Flash || !ev[40].Flash || !ev[40].Rising || ev[40].At != 2500*time.Millisecond {
		t.Fatalf("AdvanceTo(3s): %d events, [20] %+v, [last] %+v", len(ev), ev[20], ev[len(ev)-1])
	}
	flash := 0
	for range 1000 {
		if jumped.Next() == cfg.Keys-1 {
			flash++
		}
	}
	if flash < 200 || flash > 300 { // requests 3.0-3.5 s are in the crowd: 500 at share 0.5
		t.Fatalf("flash key drawn %d of 1000 times from 3 s, want about 250", flash)
	}
	// The draws above passed the shift at 3 s. Jump past the end of the
	// crowd (3.5 s) and 5 more shifts: all happen, in order.
	jumped.AdvanceTo(10 * time.Second)
	ev = jumped.Events()
	if len(ev) != 41+20+1+6*20 || !ev[61].Flash || ev[61].Rising || ev[61].At != 3500*time.Millisecond || ev[len(ev)-1].At != 9*time.Second {
		t.Fatalf("AdvanceTo(10s): %d events, [61] %+v, last %+v", len(ev), ev[61], ev[len(ev)-1])
	}
	for i := 1; i < len(ev); i++ {
		if ev[i].At < ev[i-1].At {
			t.Fatalf("event %d at %v before event %d at %v", i, ev[i].At, i-1, ev[i-1].At)
		}
	}
}

func TestScenario_drawSeedSharesTheHotSet(t *testing.T) {
	base := ScenarioConfig{Keys: 10_000, Skew: 1.1, Rate: 1000, Seed: 4, ShiftEvery: time.Second}
	a, b := base, base
	a.DrawSeed, b.DrawSeed = 1, 2
	x, y := NewScenario(a), NewScenario(b)
	same := 0
	for range 3000 {
		if x.Next() == y.Next() {
			same++
		}
	}
	if same > 1500 {
		t.Fatalf("different DrawSeeds agree on %d of 3000 draws", same)
	}
	for r := range 100 {
		if x.KeyAt(r) != y.KeyAt(r) {
			t.Fatalf("rank %d: key %d vs %d: the hot set differs between DrawSeeds", r, x.KeyAt(r), y.KeyAt(r))
		}
	}
	if x.KeyAt(0) == 0 || len(x.Events()) != len(y.Events()) {
		t.Fatalf("no shift happened, or not in both: top %d, events %d and %d", x.KeyAt(0), len(x.Events()), len(y.Events()))
	}
}
