package client

// An Item is a value stored under a key, as a get returns it and a write
// sends it.
type Item struct {
	// Key is at most 250 bytes, without spaces or control characters.
	Key string
	// Value is the item's data; it may hold any bytes.
	Value []byte
	// Flags are opaque to the server and returned as stored.
	Flags uint32
	// Expiration is in seconds: 0 never expires, up to 30 days (2592000) is
	// relative to now, larger is a unix time, negative is already expired.
	Expiration int32
	// CasID is the item's cas unique, filled in by Get, GetMulti and
	// GetAndTouch; CompareAndSwap sends it back.
	CasID uint64
}

// legalKey reports whether key may be sent: 1 to 250 bytes, none of them a
// space, a control character or DEL (as gomemcache checks).
func legalKey(key string) bool {
	if len(key) == 0 || len(key) > 250 {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
