package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// This file is the watch stream's grammar (docs/protocol.md, "The watch
// stream"): the events a node pushes to an edge and the messages an edge sends
// back, as encoders and parsers. It does no I/O of its own beyond the
// bufio.Reader it is given, keeps no state and never reads the clock: the
// sequence numbers and stamps are the caller's.

// MaxWatchLine bounds one line of the watch stream, in either direction, not
// counting data blocks. An edge splits its hit reports into lines below it.
const MaxWatchLine = 8192

// DefaultMaxWatchData bounds the data block of a RING event a reader accepts
// when the caller passes no limit: a ring of 4093 members with long addresses
// stays well below it.
const DefaultMaxWatchData = 4 << 20

// ErrMalformedWatch is a watch-stream line or block that does not follow the
// grammar. The stream is out of step and must be closed.
var ErrMalformedWatch = errors.New("protocol: malformed watch stream")

// A WatchEventKind says what a node → edge event is.
type WatchEventKind uint8

// The node → edge events. Every event carries a sequence number that starts
// at 1 and increases by one per event on its stream.
const (
	// WatchRing is "RING <seq> <generation> <bytes>": the ring's text form
	// (ring.(*Ring).MarshalText) in a data block. Sent first on every stream
	// and again on every ring change; a higher generation is a newer ring.
	WatchRing WatchEventKind = iota + 1
	// WatchHot is "HOT <seq> <key> <flags> <exptime> <cas> <lease-ms> <stamp>
	// <bytes>": a read replica of a hot item with its value in a data block.
	// exptime is the item's remaining time to live in seconds (0: none); the
	// lease runs lease-ms from the edge's own stamp.
	WatchHot
	// WatchRenew is "RENEW <seq> <key> <cas> <lease-ms> <stamp>": the
	// replica with this cas stays valid for lease-ms from stamp.
	WatchRenew
	// WatchInval is "INVAL <seq> <key>": drop the replica, then acknowledge
	// seq with "ACK <seq>".
	WatchInval
	// WatchCool is "COOL <seq> <key>": the key is no longer hot; drop the
	// replica, then acknowledge seq with "ACK <seq>" as for INVAL (until
	// then the owner holds back writes to the key).
	WatchCool
	// WatchPong is "PONG <seq> <stamp>": the echo of the edge's "PING <stamp>".
	WatchPong
)

var watchEventNames = [...]string{WatchRing: "RING", WatchHot: "HOT", WatchRenew: "RENEW",
	WatchInval: "INVAL", WatchCool: "COOL", WatchPong: "PONG"}

// String returns the event's name as written on the wire.
func (k WatchEventKind) String() string {
	if k > 0 && int(k) < len(watchEventNames) {
		return watchEventNames[k]
	}
	return "WatchEventKind(" + strconv.Itoa(int(k)) + ")"
}

// A WatchEvent is one node → edge event. Which fields are set depends on
// Kind; see the WatchEventKind constants.
type WatchEvent struct {
	Kind WatchEventKind
	// Seq numbers the event in its stream, from 1.
	Seq uint64
	// Generation orders the rings of one stream (RING).
	Generation uint64
	// Key is the item's key (HOT, RENEW, INVAL, COOL).
	Key string
	// Flags is the item's client flags (HOT).
	Flags uint32
	// Exptime is the item's remaining time to live in seconds, 0 for none (HOT).
	Exptime int64
	// Cas is the item's cas unique (HOT, RENEW).
	Cas uint64
	// LeaseMS is the lease in milliseconds from Stamp (HOT, RENEW).
	LeaseMS uint64
	// Stamp is an edge clock reading the node echoes (HOT, RENEW, PONG).
	Stamp uint64
	// Data is the ring text (RING) or the item's value (HOT).
	Data []byte
}

// AppendWatchEvent appends ev in wire form to dst. It refuses an event that
// a reader would reject: an unknown kind, a zero sequence number, or a key
// that is empty, longer than MaxKeyLen or holds a space or control byte.
func AppendWatchEvent(dst []byte, ev *WatchEvent) ([]byte, error) {
	if ev.Seq == 0 {
		return dst, fmt.Errorf("%w: sequence number 0", ErrMalformedWatch)
	}
	switch ev.Kind {
	case WatchRing, WatchPong:
	case WatchHot, WatchRenew, WatchInval, WatchCool:
		if !validStreamToken(ev.Key, MaxKeyLen) {
			return dst, fmt.Errorf("%w: bad key %q", ErrMalformedWatch, ev.Key)
		}
	default:
		return dst, fmt.Errorf("%w: unknown event kind %d", ErrMalformedWatch, ev.Kind)
	}
	if ev.Kind == WatchHot && ev.Exptime < 0 {
		return dst, fmt.Errorf("%w: negative exptime", ErrMalformedWatch)
	}
	dst = append(dst, ev.Kind.String()...)
	dst = appendU(dst, ev.Seq)
	switch ev.Kind {
	case WatchRing:
		dst = appendU(dst, ev.Generation)
		dst = appendU(dst, uint64(len(ev.Data)))
	case WatchHot:
		dst = append(append(dst, ' '), ev.Key...)
		dst = appendU(dst, uint64(ev.Flags))
		dst = appendU(dst, uint64(ev.Exptime))
		dst = appendU(dst, ev.Cas)
		dst = appendU(dst, ev.LeaseMS)
		dst = appendU(dst, ev.Stamp)
		dst = appendU(dst, uint64(len(ev.Data)))
	case WatchRenew:
		dst = append(append(dst, ' '), ev.Key...)
		dst = appendU(dst, ev.Cas)
		dst = appendU(dst, ev.LeaseMS)
		dst = appendU(dst, ev.Stamp)
	case WatchInval, WatchCool:
		dst = append(append(dst, ' '), ev.Key...)
	case WatchPong:
		dst = appendU(dst, ev.Stamp)
	}
	dst = append(dst, "\r\n"...)
	if ev.Kind == WatchRing || ev.Kind == WatchHot {
		dst = append(append(dst, ev.Data...), "\r\n"...)
	}
	return dst, nil
}

func appendU(dst []byte, v uint64) []byte {
	return strconv.AppendUint(append(dst, ' '), v, 10)
}

// ReadWatchEvent reads the next node → edge event from r. A data block
// larger than maxData (DefaultMaxWatchData when maxData <= 0) is refused
// before it is read. A "SERVER_ERROR <reason>" line, which a node writes
// before it closes a stream, comes back as a *ServerError; a line or block
// that does not follow the grammar as an error matching ErrMalformedWatch.
// Data is a fresh allocation the caller owns.
func ReadWatchEvent(r *bufio.Reader, maxData int) (WatchEvent, error) {
	if maxData <= 0 {
		maxData = DefaultMaxWatchData
	}
	line, err := readWatchLine(r)
	if err != nil {
		return WatchEvent{}, err
	}
	ev, n, err := parseWatchEvent(line)
	if err != nil || n < 0 {
		return ev, err
	}
	if n > maxData {
		return ev, fmt.Errorf("%w: %s block of %d bytes exceeds %d", ErrMalformedWatch, ev.Kind, n, maxData)
	}
	ev.Data, err = readBlock(r, n)
	return ev, err
}

// watchEventFields is the token count of each event line, name included.
var watchEventFields = [...]int{WatchRing: 4, WatchHot: 9, WatchRenew: 6, WatchInval: 3, WatchCool: 3, WatchPong: 3}

// parseWatchEvent parses an event line. It returns the length of the data
// block that follows, or -1 when none does.
func parseWatchEvent(line []byte) (WatchEvent, int, error) {
	var ev WatchEvent
	if err := replyError(string(line)); err != nil {
		return ev, -1, err
	}
	bad := fmt.Errorf("%w: %q", ErrMalformedWatch, line)
	toks := bytes.Split(line, []byte(" "))
	for k, name := range watchEventNames {
		if name != "" && name == string(toks[0]) {
			ev.Kind = WatchEventKind(k)
		}
	}
	if ev.Kind == 0 || len(toks) != watchEventFields[ev.Kind] {
		return WatchEvent{}, -1, bad
	}
	hasKey := ev.Kind >= WatchHot && ev.Kind <= WatchCool
	// nums are the numeric fields in order: every token but the name and the key.
	var nums [7]uint64
	k := 0
	for i, t := range toks[1:] {
		if i == 1 && hasKey {
			ev.Key = string(t)
			continue
		}
		v, ok := strictUint(t)
		if !ok {
			return WatchEvent{}, -1, bad
		}
		nums[k], k = v, k+1
	}
	if ev.Seq = nums[0]; ev.Seq == 0 || hasKey && !validStreamToken(ev.Key, MaxKeyLen) {
		return WatchEvent{}, -1, bad
	}
	n := -1
	switch ev.Kind {
	case WatchRing:
		ev.Generation, n = nums[1], int(min(nums[2], 1<<40))
	case WatchPong:
		ev.Stamp = nums[1]
	case WatchHot:
		if nums[1] > math.MaxUint32 || nums[2] > math.MaxInt64 {
			return WatchEvent{}, -1, bad
		}
		ev.Flags, ev.Exptime, ev.Cas = uint32(nums[1]), int64(nums[2]), nums[3]
		ev.LeaseMS, ev.Stamp, n = nums[4], nums[5], int(min(nums[6], 1<<40))
	case WatchRenew:
		ev.Cas, ev.LeaseMS, ev.Stamp = nums[1], nums[2], nums[3]
	}
	return ev, n, nil
}

// A WatchMessageKind says what an edge → node message is.
type WatchMessageKind uint8

// The edge → node messages. The stream itself is opened with the memcache
// command "watch <edge-name> <stamp> [ring]" (see WatchOpen).
const (
	// WatchAck is "ACK <seq>": the INVAL or COOL numbered seq has been
	// applied (the replica is gone).
	WatchAck WatchMessageKind = iota + 1
	// WatchHits is "HITS <slice> <key> <n> [<key> <n> ...]": during the
	// edge's window slice, it answered n reads of each key from its replica.
	WatchHits
	// WatchRefresh is "REFRESH <key>": send the replica of key again (as a
	// HOT event on this stream, so it cannot overtake an INVAL).
	WatchRefresh
	// WatchPing is "PING <stamp>": a heartbeat stamped with the edge's clock;
	// the node answers "PONG <seq> <stamp>" and stamps later leases with it.
	WatchPing
)

var watchMessageNames = [...]string{WatchAck: "ACK", WatchHits: "HITS", WatchRefresh: "REFRESH", WatchPing: "PING"}

// String returns the message's name as written on the wire.
func (k WatchMessageKind) String() string {
	if k > 0 && int(k) < len(watchMessageNames) {
		return watchMessageNames[k]
	}
	return "WatchMessageKind(" + strconv.Itoa(int(k)) + ")"
}

// A KeyHits is one key's hit count in a HITS message.
type KeyHits struct {
	Key string
	N   uint64
}

// A WatchMessage is one edge → node message. Which fields are set depends on
// Kind; see the WatchMessageKind constants.
type WatchMessage struct {
	Kind WatchMessageKind
	// Seq is the acknowledged event (ACK).
	Seq uint64
	// Slice names the edge's window slice the counts belong to (HITS).
	Slice uint64
	// Hits are the per-key counts (HITS), at least one.
	Hits []KeyHits
	// Key is the key to refresh (REFRESH).
	Key string
	// Stamp is the edge's clock reading (PING).
	Stamp uint64
}

// AppendWatchMessage appends m in wire form to dst. It refuses a message a
// reader would reject, including one longer than MaxWatchLine: split long
// hit reports into several HITS messages.
func AppendWatchMessage(dst []byte, m *WatchMessage) ([]byte, error) {
	start := len(dst)
	dst = append(dst, m.Kind.String()...)
	switch m.Kind {
	case WatchAck:
		dst = appendU(dst, m.Seq)
	case WatchHits:
		if len(m.Hits) == 0 {
			return dst[:start], fmt.Errorf("%w: HITS without counts", ErrMalformedWatch)
		}
		dst = appendU(dst, m.Slice)
		for _, h := range m.Hits {
			if !validStreamToken(h.Key, MaxKeyLen) {
				return dst[:start], fmt.Errorf("%w: bad key %q", ErrMalformedWatch, h.Key)
			}
			dst = append(append(dst, ' '), h.Key...)
			dst = appendU(dst, h.N)
		}
	case WatchRefresh:
		if !validStreamToken(m.Key, MaxKeyLen) {
			return dst[:start], fmt.Errorf("%w: bad key %q", ErrMalformedWatch, m.Key)
		}
		dst = append(append(dst, ' '), m.Key...)
	case WatchPing:
		dst = appendU(dst, m.Stamp)
	default:
		return dst[:start], fmt.Errorf("%w: unknown message kind %d", ErrMalformedWatch, m.Kind)
	}
	dst = append(dst, "\r\n"...)
	if len(dst)-start > MaxWatchLine {
		return dst[:start], fmt.Errorf("%w: line of %d bytes exceeds %d", ErrMalformedWatch, len(dst)-start, MaxWatchLine)
	}
	return dst, nil
}

// ReadWatchMessage reads the next edge → node message from r.
func ReadWatchMessage(r *bufio.Reader) (WatchMessage, error) {
	line, err := readWatchLine(r)
	if err != nil {
		return WatchMessage{}, err
	}
	return ParseWatchMessage(line)
}

// ParseWatchMessage parses one edge → node message line, without its line
// ending.
func ParseWatchMessage(line []byte) (WatchMessage, error) {
	var m WatchMessage
	toks := bytes.Split(line, []byte(" "))
	bad := func() (WatchMessage, error) {
		return WatchMessage{}, fmt.Errorf("%w: %q", ErrMalformedWatch, line)
	}
	for k, name := range watchMessageNames {
		if name != "" && name == string(toks[0]) {
			m.Kind = WatchMessageKind(k)
		}
	}
	var ok bool
	switch {
	case m.Kind == WatchAck && len(toks) == 2:
		m.Seq, ok = strictUint(toks[1])
		ok = ok && m.Seq > 0
	case m.Kind == WatchPing && len(toks) == 2:
		m.Stamp, ok = strictUint(toks[1])
	case m.Kind == WatchRefresh && len(toks) == 2:
		m.Key = string(toks[1])
		ok = validStreamToken(m.Key, MaxKeyLen)
	case m.Kind == WatchHits && len(toks) >= 4 && len(toks)%2 == 0:
		m.Slice, ok = strictUint(toks[1])
		m.Hits = make([]KeyHits, 0, (len(toks)-2)/2)
		for i := 2; ok && i < len(toks); i += 2 {
			h := KeyHits{Key: string(toks[i])}
			h.N, ok = strictUint(toks[i+1])
			ok = ok && validStreamToken(h.Key, MaxKeyLen)
			m.Hits = append(m.Hits, h)
		}
	}
	if !ok {
		return bad()
	}
	return m, nil
}

// A WatchOpen is the command that opens a watch stream:
// "watch <edge-name> <stamp> [ring]".
type WatchOpen struct {
	// Name identifies the edge: a token of 1 to MaxKeyLen bytes, no spaces
	// or control bytes.
	Name string
	// Stamp is a reading of the edge's clock, in milliseconds; the first
	// leases of the stream run from it.
	Stamp uint64
	// RingOnly asks for ring events (and PONGs) only: no hot items, so the
	// edge holds no replicas from this stream and acknowledges nothing. An
	// edge that follows the ring on one stream and takes replicas on one
	// stream per node opens the first with RingOnly.
	RingOnly bool
}

// AppendWatchOpen appends the command that opens a watch stream to dst.
func AppendWatchOpen(dst []byte, o WatchOpen) ([]byte, error) {
	if !validStreamToken(o.Name, MaxKeyLen) {
		return dst, fmt.Errorf("%w: bad edge name %q", ErrMalformedWatch, o.Name)
	}
	dst = append(append(dst, "watch "...), o.Name...)
	dst = appendU(dst, o.Stamp)
	if o.RingOnly {
		dst = append(dst, " ring"...)
	}
	return append(dst, "\r\n"...), nil
}

// ParseWatchOpen checks the arguments of a "watch" command (Request.Args).
// Any shape but "<edge-name> <stamp> [ring]" is ErrBadFormat.
func ParseWatchOpen(args [][]byte) (WatchOpen, error) {
	if len(args) < 2 || len(args) > 3 || !validStreamToken(string(args[0]), MaxKeyLen) {
		return WatchOpen{}, ErrBadFormat
	}
	stamp, ok := strictUint(args[1])
	if !ok || len(args) == 3 && string(args[2]) != "ring" {
		return WatchOpen{}, ErrBadFormat
	}
	return WatchOpen{Name: string(args[0]), Stamp: stamp, RingOnly: len(args) == 3}, nil
}

// readWatchLine reads one line of at most MaxWatchLine bytes and returns it
// without "\r\n". A line must end in "\r\n".
func readWatchLine(r *bufio.Reader) ([]byte, error) {
	var long []byte
	for {
		part, err := r.ReadSlice('\n')
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(part) > MaxWatchLine {
				return nil, fmt.Errorf("%w: line longer than %d bytes", ErrMalformedWatch, MaxWatchLine)
			}
		}
		switch {
		case err == nil && long == nil:
			return trimCRLF(part)
		case err == nil:
			return trimCRLF(append(long, part...))
		case errors.Is(err, bufio.ErrBufferFull):
			long = append(long, part...)
		default:
			if errors.Is(err, io.EOF) && (len(part) > 0 || long != nil) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

func trimCRLF(line []byte) ([]byte, error) {
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: line %q does not end in \\r\\n", ErrMalformedWatch, line)
	}
	return line[:len(line)-2], nil
}

// readBlock reads n bytes of data and their "\r\n", growing with what
// arrives so that an announced size alone cannot make it allocate.
func readBlock(r *bufio.Reader, n int) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, min(n+2, 64<<10)))
	if _, err := io.CopyN(buf, r, int64(n)+2); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	b := buf.Bytes()
	if b[n] != '\r' || b[n+1] != '\n' {
		return nil, fmt.Errorf("%w: data block not followed by \\r\\n", ErrMalformedWatch)
	}
	return b[:n:n], nil
}

// strictUint parses a canonical decimal: digits only, no sign, no leading
// zero (except "0" itself), no overflow. Canonical numbers keep the grammar
// one-to-one, which the fuzz test checks by re-encoding.
func strictUint(tok []byte) (uint64, bool) {
	if len(tok) == 0 || len(tok) > 20 || (tok[0] == '0' && len(tok) > 1) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(tok), 10, 64)
	return v, err == nil
}

// validStreamToken reports whether s is 1 to max bytes with no space,
// control byte or DEL: a key or an edge name.
func validStreamToken(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
