package protocol

import "math"

// The number parsers below reproduce memcached's safe_strtoul, safe_strtol and
// safe_strtoull (util.c), which wrap C's strtoul family: leading white space
// and one sign are accepted, at least one digit is required, the number must
// be followed by white space or the end of the token, a value out of range is
// rejected, and a negative value is rejected by the unsigned parsers unless
// it is zero.

func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// parseC parses tok like strtoull/strtoll. It reports the magnitude, whether
// a minus sign was present, whether the magnitude overflowed uint64, and ok
// when the token is a number followed only by white space.
func parseC(tok []byte) (mag uint64, neg, overflow, ok bool) {
	i := 0
	for i < len(tok) && isCSpace(tok[i]) {
		i++
	}
	if i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
		neg = tok[i] == '-'
		i++
	}
	start := i
	for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
		d := uint64(tok[i] - '0')
		if mag > (math.MaxUint64-d)/10 {
			overflow = true
		}
		mag = mag*10 + d
		i++
	}
	if i == start {
		return 0, false, false, false
	}
	if i < len(tok) && !isCSpace(tok[i]) {
		return 0, false, false, false
	}
	return mag, neg, overflow, true
}

// ParseUint64 parses a 64-bit unsigned decimal (a cas unique or an incr/decr
// delta) as memcached's safe_strtoull does.
func ParseUint64(tok []byte) (uint64, bool) {
	mag, neg, overflow, ok := parseC(tok)
	if !ok || overflow {
		return 0, false
	}
	if neg {
		// strtoull negates; safe_strtoull refuses a result that looks negative.
		v := -mag
		if int64(v) < 0 {
			return 0, false
		}
		return v, true
	}
	return mag, true
}

// ParseUint32 parses item flags or a verbosity level as memcached 1.6 does
// on a 64-bit machine: an unsigned 64-bit parse whose result is truncated to
// 32 bits (so 4294967297 is 1).
func ParseUint32(tok []byte) (uint32, bool) {
	v, ok := ParseUint64(tok)
	return uint32(v), ok
}

// ParseInt32 parses a signed decimal (an exptime, a data length, a delay) as
// memcached's safe_strtol does on a 64-bit machine: a signed 64-bit parse
// (out of range is refused) truncated to 32 bits, so 2147483648 is negative.
func ParseInt32(tok []byte) (int32, bool) {
	mag, neg, overflow, ok := parseC(tok)
	if !ok || overflow {
		return 0, false
	}
	if neg {
		if mag > 1<<63 {
			return 0, false // strtol: ERANGE
		}
		return int32(-int64(mag)), true
	}
	if mag > math.MaxInt64 {
		return 0, false
	}
	return int32(int64(mag)), true
}
