package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogram_exactBelow256(t *testing.T) {
	var h histogram
	for v := int64(1); v <= 100; v++ {
		h.record(v)
	}
	for _, tc := range []struct {
		q    float64
		want int64
	}{
		{0, 1}, {0.01, 1}, {0.5, 50}, {0.9, 90}, {0.99, 99}, {0.999, 100}, {1, 100},
	} {
		if got := h.quantile(tc.q); got != tc.want {
			t.Errorf("quantile(%v) = %d, want %d", tc.q, got, tc.want)
		}
	}
	if h.n != 100 || h.min != 1 || h.max != 100 || h.mean() != 50.5 {
		t.Errorf("n=%d min=%d max=%d mean=%v", h.n, h.min, h.max, h.mean())
	}
}

func TestHistogram_tail(t *testing.T) {
	// 1000 requests at 1ms and 10 at 100ms: p50 and p99 are 1ms, p99.9 is 100ms.
	var h histogram
	for range 1000 {
		h.record(int64(time.Millisecond))
	}
	for range 10 {
		h.record(int64(100 * time.Millisecond))
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, time.Millisecond}, {0.99, time.Millisecond}, {0.999, 100 * time.Millisecond}, {1, 100 * time.Millisecond},
	} {
		got := time.Duration(h.quantile(tc.q))
		if !within(int64(got), int64(tc.want), 1.0/histSub) {
			t.Errorf("quantile(%v) = %v, want %v within 1/%d", tc.q, got, tc.want, histSub)
		}
	}
}

func TestHistogram_matchesSortedSample(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h histogram
	var vals []int64
	for range 100_000 {
		v := int64(r.ExpFloat64() * 200_000) // ~200µs mean, long tail
		vals = append(vals, v)
		h.record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := vals[int(q*float64(len(vals))+0.999999)-1]
		if got := h.quantile(q); !within(got, want, 1.0/histSub) {
			t.Errorf("quantile(%v) = %d, exact %d", q, got, want)
		}
	}
}

func TestHistogram_mergeAndClamp(t *testing.T) {
	var a, b histogram
	a.record(10)
	b.record(-5)            // counted as 0
	b.record(1 << 50)       // counted as histMax
	b.record(3_000_000_000) // 3s
	a.merge(&b)
	if a.n != 4 || a.min != 0 || a.max != histMax {
		t.Fatalf("merged n=%d min=%d max=%d", a.n, a.min, a.max)
	}
	if got := a.quantile(0.75); !within(got, 3_000_000_000, 1.0/histSub) {
		t.Errorf("quantile(0.75) = %d, want about 3e9", got)
	}
	a.reset()
	if a.quantile(0.5) != 0 || a.n != 0 {
		t.Errorf("reset left n=%d", a.n)
	}
}

func TestHistBounds_coverEveryValue(t *testing.T) {
	prevHi := int64(-1)
	for i := range histBuckets {
		lo, hi := histBounds(i)
		if lo != prevHi+1 || hi < lo {
			t.Fatalf("bucket %d = [%d, %d] after %d", i, lo, hi, prevHi)
		}
		if histIndex(lo) != i || histIndex(hi) != i {
			t.Fatalf("bucket %d = [%d, %d] but indexes %d, %d", i, lo, hi, histIndex(lo), histIndex(hi))
		}
		prevHi = hi
	}
	if prevHi != histMax {
		t.Fatalf("last bucket ends at %d, want %d", prevHi, histMax)
	}
}

func within(got, want int64, rel float64) bool {
	d := float64(got - want)
	return d >= -rel*float64(want) && d <= rel*float64(want)
}

// TestHistBuckets_boundedRelativeError: the histogram is log-linear, every
// bucket above the exact range is at most 1/histSub of its lower bound
// wide, so any value is reported within 0.8% of itself.
func TestHistBuckets_boundedRelativeError(t *testing.T) {
	for i := 2 * histSub; i < histBuckets; i++ {
		lo, hi := histBounds(i)
		if w := float64(hi-lo+1) / float64(lo); w > 1.0/histSub {
			t.Fatalf("bucket %d = [%d, %d] is %.4f of its lower bound wide", i, lo, hi, w)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 100_000 {
		v := int64(math.Exp(r.Float64() * math.Log(histMax)))
		_, hi := histBounds(histIndex(v))
		if !within(hi, v, 1.0/histSub) {
			t.Fatalf("value %d is reported as %d", v, hi)
		}
	}
}

// TestHistogram_uniformKnownQuantiles records 1..1,000,000 µs once each:
// quantile q is q*1e6 µs, within the bucket precision.
func TestHistogram_uniformKnownQuantiles(t *testing.T) {
	var h histogram
	for v := int64(1); v <= 1_000_000; v++ {
		h.record(v * 1000)
	}
	for _, q := range []float64{0.001, 0.1, 0.25, 0.5, 0.9, 0.99, 0.999, 0.9999} {
		want := int64(math.Ceil(q*1e6)) * 1000
		if got := h.quantile(q); !within(got, want, 1.0/histSub) {
			t.Errorf("quantile(%v) = %d ns, want %d within 1/%d", q, got, want, histSub)
		}
	}
	if h.min != 1000 || !within(h.quantile(0), 1000, 1.0/histSub) || h.quantile(1) != 1e9 || h.mean() != 500_000_500 {
		t.Errorf("min %d, quantile(0) %d, max %d, mean %v", h.min, h.quantile(0), h.quantile(1), h.mean())
	}
}
