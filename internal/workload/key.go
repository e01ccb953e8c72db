package workload

// keyDigits is the zero-padded width of the id in a canonical key.
const keyDigits = 7

// AppendKey appends the canonical key for id to dst, e.g. "user:0000042:profile"
// for 42. Ids of more than seven digits are written in full. id must not be
// negative.
func AppendKey(dst []byte, id int) []byte {
	if id < 0 {
		panic("workload: negative key id")
	}
	dst = append(dst, "user:"...)
	var buf [20]byte
	i := len(buf)
	for id >= 10 || len(buf)-i < keyDigits-1 {
		i--
		buf[i] = byte('0' + id%10)
		id /= 10
	}
	i--
	buf[i] = byte('0' + id)
	dst = append(dst, buf[i:]...)
	return append(dst, ":profile"...)
}

// Key returns the canonical key for id; see AppendKey.
func Key(id int) string {
	var buf [32]byte
	return string(AppendKey(buf[:0], id))
}
