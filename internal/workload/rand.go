package workload

// splitmix is the splitmix64 generator (Steele, Lea, Flood 2014). It is
// tiny, fast, passes BigCrush, and, unlike math/rand, its sequence is fixed
// by this file, so streams stay identical across Go releases.
type splitmix struct{ s uint64 }

func (r *splitmix) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// float64 returns a uniform value in [0, 1).
func (r *splitmix) float64() float64 { return float64(r.next()>>11) * 0x1p-53 }

// intn returns a uniform value in [0, n) for n > 0 (Lemire's multiply-shift;
// the bias is below 2^-32 for any n < 2^32, which no test can see).
func (r *splitmix) intn(n int) int {
	hi, _ := mul64(r.next(), uint64(n))
	return int(hi)
}
