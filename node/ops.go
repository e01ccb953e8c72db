package node

import (
	"bytes"
	"strconv"

	"github.com/hotcache/hotcache/protocol"
)

// maxRelativeExptime is memcached's REALTIME_MAXDELTA: an exptime up to 30
// days is relative, a larger one is a unix time.
const maxRelativeExptime = 60 * 60 * 24 * 30

// processStartSlack is how far before its real start memcached dates its
// process_started (ITEM_UPDATE_INTERVAL + 2 seconds).
const processStartSlack = 62

// absTime turns an exptime as sent into absolute unix seconds (0 = never),
// as memcached's realtime does: negative means already expired.
func absTime(exptime, now int64) int64 {
	switch {
	case exptime == 0:
		return 0
	case exptime < 0:
		return 1 // long past
	case exptime > maxRelativeExptime:
		return exptime
	default:
		return now + exptime
	}
}

// outcome is the reply to a write, in memcached's words.
type outcome uint8

const (
	outStored outcome = iota
	outNotStored
	outExists
	outNotFound
)

var outcomeText = [...]string{outStored: "STORED", outNotStored: "NOT_STORED", outExists: "EXISTS", outNotFound: "NOT_FOUND"}

// storeCmd carries out set, add, replace, append, prepend and cas atomically
// for one key. For append and prepend the combined value must still fit in
// maxItem.
func (s *store) storeCmd(cmd protocol.Command, it *item, reqCas uint64, maxItem int, now int64) (outcome, error) {
	mu := s.lock(it.key())
	mu.Lock()
	defer mu.Unlock()
	old := s.current(it.key(), now)
	switch cmd {
	case protocol.CmdAdd:
		if old != nil {
			return outNotStored, nil
		}
	case protocol.CmdReplace:
		if old == nil {
			return outNotStored, nil
		}
	case protocol.CmdAppend, protocol.CmdPrepend:
		if old == nil {
			return outNotStored, nil
		}
		var data []byte
		if cmd == protocol.CmdAppend {
			data = append(append(make([]byte, 0, len(old.data())+len(it.data())), old.data()...), it.data()...)
		} else {
			data = append(append(make([]byte, 0, len(old.data())+len(it.data())), it.data()...), old.data()...)
		}
		if !protocol.ItemSizeOK(int(old.klen), old.flags, len(data), maxItem) {
			return outNotStored, nil // memcached: the combined item cannot be allocated
		}
		it = old.withData(data)
	case protocol.CmdCas:
		if old == nil {
			return outNotFound, nil
		}
		if old.cas != reqCas {
			return outExists, nil
		}
	}
	it.cas = s.nextCas()
	if err := s.put(it, old, now); err != nil {
		return 0, err
	}
	s.totalItems.Add(1)
	return outStored, nil
}

// unlink deletes key if it holds a live item; memcached does this when a set
// is refused as too large, so that no stale value survives.
func (s *store) unlink(key []byte, now int64) bool {
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	old := s.current(key, now)
	if old == nil {
		return false
	}
	s.del(old)
	return true
}

// incrDecr applies incr or decr to key. found is false when there is no
// item; err is protocol.ErrNonNumeric when its value is not a number.
func (s *store) incrDecr(key []byte, incr bool, delta uint64, now int64) (v uint64, found bool, err error) {
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	old := s.current(key, now)
	if old == nil {
		return 0, false, nil
	}
	cur, ok := parseStoredNumber(old.data())
	if !ok {
		return 0, true, protocol.ErrNonNumeric
	}
	if incr {
		v = cur + delta // wraps at 2^64, as memcached does
	} else if delta < cur {
		v = cur - delta
	}
	digits := strconv.AppendUint(make([]byte, 0, 20), v, 10)
	if pad := len(old.data()) - len(digits); pad >= 0 {
		// memcached rewrites a number that fits in place, padded with spaces.
		digits = append(digits, bytes.Repeat([]byte{' '}, pad)...)
	} else {
		s.totalItems.Add(1) // a longer number is a new item
	}
	it := old.withData(digits)
	it.cas = s.nextCas()
	if err := s.put(it, old, now); err != nil {
		return 0, true, err
	}
	return v, true, nil
}

// parseStoredNumber reads a value as memcached's incr does: strtoull over
// data that C sees followed by "\r\n", so parsing stops at a NUL too.
func parseStoredNumber(data []byte) (uint64, bool) {
	if len(data) == 0 {
		return 0, false
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		data = data[:i]
	}
	return protocol.ParseUint64(data)
}

// touch sets a new exptime on key and returns the item as it now is.
func (s *store) touch(key []byte, exptime, now int64) (*item, error) {
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	old := s.current(key, now)
	if old == nil {
		return nil, nil
	}
	it := old.withExp(absTime(exptime, now)) // keeps the cas unique, as memcached does
	if err := s.put(it, old, now); err != nil {
		return nil, err
	}
	return it, nil
}

// delete removes key and reports whether it held a live item.
func (s *store) delete(key []byte, now int64) bool { return s.unlink(key, now) }
