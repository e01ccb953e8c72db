package workload

import (
	"math"
	"testing"
)

func TestKey(t *testing.T) {
	for _, tc := range []struct {
		id   int
		want string
	}{
		{0, "user:0000000:profile"},
		{42, "user:0000042:profile"},
		{9999999, "user:9999999:profile"},
		{12345678, "user:12345678:profile"},
	} {
		if got := Key(tc.id); got != tc.want {
			t.Errorf("Key(%d) = %q, want %q", tc.id, got, tc.want)
		}
		if got := string(AppendKey([]byte("x"), tc.id)); got != "x"+tc.want {
			t.Errorf("AppendKey(x, %d) = %q", tc.id, got)
		}
	}
}

func TestAppendKey_noAllocs(t *testing.T) {
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = AppendKey(buf[:0], 1234) }); n != 0 {
		t.Fatalf("AppendKey allocates %v times", n)
	}
}

// fitZipf estimates s by least squares on log(count) against log(rank+1)
// over the top ranks, where counts are large enough to be precise.
func fitZipf(counts []int, ranks int) float64 {
	var sx, sy, sxx, sxy float64
	for i := range ranks {
		x, y := math.Log(float64(i+1)), math.Log(float64(counts[i]))
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	n := float64(ranks)
	return -(n*sxy - sx*sy) / (n*sxx - sx*sx)
}

func TestZipf_skewMatches(t *testing.T) {
	for _, s := range []float64{0.7, 0.99, 1.2} {
		z := NewZipf(100_000, s, 1)
		counts := make([]int, 100_000)
		for range 2_000_000 {
			counts[z.Next()]++
		}
		if got := fitZipf(counts, 100); math.Abs(got-s) > 0.05 {
			t.Errorf("s=%v: fitted skew %.3f", s, got)
		}
	}
}

func TestZipf_deterministic(t *testing.T) {
	tab := NewZipfTable(1000, 0.99)
	a, b, c := tab.NewStream(7), NewZipf(1000, 0.99, 7), tab.NewStream(8)
	same := 0
	for range 1000 {
		x, y, w := a.Next(), b.Next(), c.Next()
		if x != y {
			t.Fatal("same seed, different streams")
		}
		if x < 0 || x >= 1000 {
			t.Fatalf("rank %d out of range", x)
		}
		if x == w {
			same++
		}
	}
	if same > 500 {
		t.Fatalf("seeds 7 and 8 agree on %d of 1000 draws", same)
	}
}

func TestUniform(t *testing.T) {
	u, v := NewUniform(10, 3), NewUniform(10, 3)
	var counts [10]int
	for range 100_000 {
		x := u.Next()
		if x != v.Next() {
			t.Fatal("same seed, different streams")
		}
		counts[x]++
	}
	for i, c := range counts {
		if c < 9_500 || c > 10_500 {
			t.Errorf("id %d drawn %d times of 100000", i, c)
		}
	}
}

func BenchmarkZipf(b *testing.B) {
	z := NewZipf(1_000_000, 0.99, 1)
	b.ReportAllocs()
	for b.Loop() {
		z.Next()
	}
}

func BenchmarkNewZipfTable(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		NewZipfTable(1_000_000, 0.99)
	}
}

// TestZipf_matchesLaw checks the sampled frequencies of the top ranks and
// of the tail against P(i) ∝ 1/(i+1)^s, and that every rank is reachable.
func TestZipf_matchesLaw(t *testing.T) {
	for _, n := range []int{1, 3, 1000, 70_000} {
		tab := NewZipfTable(n, 0.8)
		z := tab.NewStream(5)
		counts := make([]int, n)
		const draws = 1_000_000
		for range draws {
			counts[z.Next()]++
		}
		for i := range min(n, 5) {
			want := tab.Prob(i) * draws
			if math.Abs(float64(counts[i])-want) > 5*math.Sqrt(want)+1 {
				t.Errorf("n=%d rank %d: %d draws, want %.0f", n, i, counts[i], want)
			}
		}
		var tail, want float64
		for i := n / 2; i < n; i++ {
			tail += float64(counts[i])
			want += tab.Prob(i) * draws
		}
		if math.Abs(tail-want) > 5*math.Sqrt(want)+1 {
			t.Errorf("n=%d: tail drawn %.0f times, want %.0f", n, tail, want)
		}
	}
}
