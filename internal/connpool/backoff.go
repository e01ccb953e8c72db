package connpool

import "time"

// backoff returns how long an address is left alone after its attempt-th
// consecutive failed dial (attempt counted from 0): full jitter,
// r·min(cap, base·2^attempt) with r drawn from [0, 1). Spreading the whole
// interval, rather than adding a little jitter to a fixed delay, is what keeps
// many clients from redialing a restarted node together.
func backoff(base, cap time.Duration, attempt int, r float64) time.Duration {
	ceil := base
	for i := 0; i < attempt && ceil < cap; i++ {
		if ceil > cap/2 {
			ceil = cap
			break
		}
		ceil *= 2
	}
	ceil = min(ceil, cap)
	r = min(max(r, 0), 1)
	return time.Duration(r * float64(ceil))
}
