package hotspot

import (
	"testing"
	"time"

	"github.com/hotcache/hotcache/internal/workload"
)

// TestFeedback_edgeReports is HOTKEYS.md §5.5's feedback test. A key with
// demand at 2x the threshold turns hot; from then on the edges answer it,
// so the owner no longer records its reads and learns of them only from
// Report, every tick or every 500 ms. It must stay hot with no cool event
// for 20 s. Without the reports (negative control) it must cool.
func TestFeedback_edgeReports(t *testing.T) {
	keys := keyTable(100_000)
	for _, tc := range []struct {
		name  string
		every int // ticks between reports; 0: no reports
	}{
		{"reports every 100ms", 1},
		{"reports every 500ms", 5},
		{"no reports", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seeds := uint64(5)
			if raceEnabled {
				seeds = 1 // ~2 µs a read under -race
			}
			for seed := uint64(1); seed <= seeds; seed++ {
				cools := feedbackRun(t, keys, seed, tc.every)
				if tc.every > 0 && cools != 0 {
					t.Errorf("seed %d: %d cool events while the edge reported a 2x-hot key", seed, cools)
				}
				if tc.every == 0 && cools == 0 {
					t.Errorf("seed %d: the key never cooled without edge reports", seed)
				}
			}
		})
	}
}

// feedbackRun returns the cool events of the replicated key over 20 s.
func feedbackRun(t *testing.T, keys keySet, seed uint64, every int) (cools int) {
	const (
		perTick = 5000 // 50k reads/s: the threshold is 250/s
		share   = 0.01 // 500/s: 2x the threshold
	)
	a, err := New(Config{Rand: testRand(seed)})
	if err != nil {
		t.Fatal(err)
	}
	bg, rnd := workload.NewZipf(100_000, 0.99, seed), testRand(seed+100)
	key, h := "replicated", keyHash(-1, seed)
	now, edge, replicated := epoch, 0, false
	for k := 1; k <= 230; k++ {
		for range perTick {
			switch {
			case float64(rnd()>>11)*0x1p-53 >= share:
				id := int32(bg.Next())
				a.Record(keys.key(id), keyHash(id, seed))
			case replicated:
				edge++ // answered at the edge
			default:
				a.Record(key, h)
			}
		}
		if replicated && every > 0 && k%every == 0 {
			a.Report(key, h, edge)
			edge = 0
		}
		now = now.Add(100 * time.Millisecond)
		ch := a.Tick(now)
		for _, c := range ch.Hot {
			replicated = replicated || c.Key == key
		}
		for _, c := range ch.Cooled {
			if c.Key == key {
				cools++
			}
		}
		if k == 30 && !replicated {
			t.Fatalf("seed %d: key at 2x the threshold not hot after 3 s", seed)
		}
	}
	return cools
}
