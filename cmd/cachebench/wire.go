package main

// The client side of the memcache text protocol, as far as a load generator
// needs it: encode get and set, and read their replies without allocating.
// TODO(cachebench): move reply parsing to package protocol once it has a
// client-side reader, and keep only the batching here.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/hotcache/hotcache/internal/workload"
)

// replyKind is what one reply said.
type replyKind uint8

const (
	replyMiss      replyKind = iota // END: get found nothing
	replyHit                        // VALUE ... END
	replyStored                     // STORED
	replyNotStored                  // NOT_STORED
	replyExists                     // EXISTS
	replyNotFound                   // NOT_FOUND
	replyError                      // ERROR, CLIENT_ERROR or SERVER_ERROR: the request failed, the connection is usable
	replyDeleted                    // DELETED
)

var replyNames = [...]string{"miss", "hit", "STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "error", "DELETED"}

func (k replyKind) String() string {
	if int(k) < len(replyNames) {
		return replyNames[k]
	}
	return "replyKind(" + strconv.Itoa(int(k)) + ")"
}

// errProtocol means a reply was not what the request calls for. The
// connection is out of step and must be closed.
var errProtocol = errors.New("cachebench: protocol error")

func protocolError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errProtocol}, args...)...)
}

// request encodes requests for one key space and value size.
type request struct {
	setTail []byte // " 0 0 <size>\r\n<value>\r\n" when every value has one size
	// With ranged sizes, setTail is nil and the size of key id's value is
	// minSize + hash(id) mod (maxSize-minSize+1): fixed per key, so a key
	// keeps its size across sets, prefills and targets.
	minSize, maxSize int
	value            []byte // maxSize bytes of value
}

// newRequest encodes values of valueSize bytes.
func newRequest(valueSize int) *request { return newRangeRequest(valueSize, valueSize) }

// newRangeRequest encodes values of minSize to maxSize bytes, the size of
// each a function of its key.
func newRangeRequest(minSize, maxSize int) *request {
	r := &request{minSize: minSize, maxSize: maxSize, value: make([]byte, maxSize)}
	for i := range r.value {
		r.value[i] = 'a' + byte(i%26)
	}
	if minSize == maxSize {
		tail := fmt.Appendf(nil, " 0 0 %d\r\n", minSize)
		tail = append(tail, r.value...)
		r.setTail = append(tail, "\r\n"...)
	}
	return r
}

// size returns the value size of key id.
func (r *request) size(id int) int {
	if r.minSize == r.maxSize {
		return r.minSize
	}
	h := uint64(id)*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	return r.minSize + int(h%uint64(r.maxSize-r.minSize+1))
}

// maxRequest is the longest request the encoder writes, for sizing buffers.
func (r *request) maxRequest() int { return 64 + r.maxSize }

// appendGet appends "get <key>\r\n" for key id and returns where the key is
// in dst, so that the reply's key can be checked against it.
func (r *request) appendGet(dst []byte, id int) (out []byte, kstart, kend int) {
	dst = append(dst, "get "...)
	kstart = len(dst)
	dst = workload.AppendKey(dst, id)
	kend = len(dst)
	return append(dst, "\r\n"...), kstart, kend
}

// appendSet appends "set <key> 0 0 <size>\r\n<value>\r\n" for key id.
func (r *request) appendSet(dst []byte, id int) []byte {
	dst = append(dst, "set "...)
	dst = workload.AppendKey(dst, id)
	if r.setTail != nil {
		return append(dst, r.setTail...)
	}
	n := r.size(id)
	dst = append(dst, " 0 0 "...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, "\r\n"...)
	dst = append(dst, r.value[:n]...)
	return append(dst, "\r\n"...)
}

// appendDelete appends "delete <key>\r\n" for key id.
func (r *request) appendDelete(dst []byte, id int) []byte {
	dst = append(dst, "delete "...)
	dst = workload.AppendKey(dst, id)
	return append(dst, "\r\n"...)
}

// replyReader reads replies from a buffered connection. It never allocates
// on the success path: lines are read with ReadSlice, values are skipped with
// Discard.
type replyReader struct {
	br *bufio.Reader
}

// line returns the next line without its "\r\n". The slice is valid until
// the next read.
func (r *replyReader) line() ([]byte, error) {
	b, err := r.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, protocolError("reply line longer than %d bytes", r.br.Size())
		}
		return nil, err
	}
	if len(b) < 2 || b[len(b)-2] != '\r' {
		return nil, protocolError("reply line %q does not end in \\r\\n", b)
	}
	return b[:len(b)-2], nil
}

// errorReply reports whether line is one of memcached's error replies.
func errorReply(line []byte) bool {
	return bytes.Equal(line, []byte("ERROR")) ||
		bytes.HasPrefix(line, []byte("CLIENT_ERROR ")) ||
		bytes.HasPrefix(line, []byte("SERVER_ERROR "))
}

// readGet reads the reply to "get key": replyHit, replyMiss or replyError.
func (r *replyReader) readGet(key []byte) (replyKind, error) {
	line, err := r.line()
	if err != nil {
		return 0, err
	}
	rest, ok := bytes.CutPrefix(line, []byte("VALUE "))
	if !ok {
		switch {
		case bytes.Equal(line, []byte("END")):
			return replyMiss, nil
		case errorReply(line):
			return replyError, nil
		}
		return 0, protocolError("unexpected reply %q to get", line)
	}
	n, ok := parseValueLine(rest, key)
	if !ok {
		return 0, protocolError("bad VALUE line %q for key %q", line, key)
	}
	// Fast path: the value and "\r\nEND\r\n" are already buffered.
	const tail = "\r\nEND\r\n"
	if n+len(tail) <= r.br.Size() {
		b, err := r.br.Peek(n + len(tail))
		if err != nil {
			return 0, err
		}
		if string(b[n:]) != tail {
			return 0, protocolError("got %q after the %d-byte value of %q, want \\r\\nEND\\r\\n", b[n:], n, key)
		}
		_, _ = r.br.Discard(len(b)) // cannot fail: the bytes are buffered
		return replyHit, nil
	}
	if _, err := r.br.Discard(n); err != nil {
		return 0, err
	}
	for _, want := range []string{"", "END"} {
		got, err := r.line()
		if err != nil {
			return 0, err
		}
		if string(got) != want {
			return 0, protocolError("got %q after the %d-byte value of %q, want %q", got, n, key, want)
		}
	}
	return replyHit, nil
}

// parseValueLine parses "<key> <flags> <bytes>[ <cas>]", the rest of a VALUE
// line, checks the key, and returns the value's length.
func parseValueLine(rest, key []byte) (int, bool) {
	if len(rest) <= len(key) || rest[len(key)] != ' ' || !bytes.Equal(rest[:len(key)], key) {
		return 0, false
	}
	rest = rest[len(key)+1:]
	flags, rest, _ := cutSpace(rest)
	size, cas, hasCas := cutSpace(rest)
	n, okSize := parseUint(size)
	_, okFlags := parseUint(flags)
	_, okCas := parseUint(cas)
	return int(n), okSize && okFlags && n < 1<<31 && (okCas || !hasCas)
}

// cutSpace is bytes.Cut(b, " ") without the general search.
func cutSpace(b []byte) (before, after []byte, found bool) {
	for i, c := range b {
		if c == ' ' {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

// readStore reads the reply to a storage command or a delete.
func (r *replyReader) readStore() (replyKind, error) {
	line, err := r.line()
	if err != nil {
		return 0, err
	}
	switch string(line) { // NB: the compiler does not allocate for a switch on string(bytes)
	case "STORED":
		return replyStored, nil
	case "NOT_STORED":
		return replyNotStored, nil
	case "EXISTS":
		return replyExists, nil
	case "NOT_FOUND":
		return replyNotFound, nil
	case "DELETED":
		return replyDeleted, nil
	}
	if errorReply(line) {
		return replyError, nil
	}
	return 0, protocolError("unexpected reply %q to a storage command", line)
}

// parseUint parses a decimal uint64 with no sign, spaces or overflow.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// maxReplyLine bounds a reply line for the slice parsers below, as the
// reader's buffer size bounds it for replyReader.
const maxReplyLine = 64 << 10

// sliceLine returns the first line of b without its "\r\n" and the bytes
// it takes, or n == 0 if b holds no whole line yet.
func sliceLine(b []byte) (line []byte, n int, err error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(b) > maxReplyLine {
			return nil, 0, protocolError("reply line longer than %d bytes", maxReplyLine)
		}
		return nil, 0, nil
	}
	if i == 0 || b[i-1] != '\r' {
		return nil, 0, protocolError("reply line %q does not end in \\r\\n", b[:i+1])
	}
	return b[:i-1], i + 1, nil
}

// parseGet is readGet on a buffer: it parses the reply to "get key" at the
// start of b and returns its kind and the bytes it takes, or n == 0 if b
// does not hold all of it yet. It never allocates.
func parseGet(b, key []byte) (kind replyKind, n int, err error) {
	line, n, err := sliceLine(b)
	if n == 0 || err != nil {
		return 0, 0, err
	}
	rest, ok := bytes.CutPrefix(line, []byte("VALUE "))
	if !ok {
		switch {
		case bytes.Equal(line, []byte("END")):
			return replyMiss, n, nil
		case errorReply(line):
			return replyError, n, nil
		}
		return 0, 0, protocolError("unexpected reply %q to get", line)
	}
	size, ok := parseValueLine(rest, key)
	if !ok {
		return 0, 0, protocolError("bad VALUE line %q for key %q", line, key)
	}
	const tail = "\r\nEND\r\n"
	end := n + size + len(tail)
	if len(b) < end {
		// Check what is there of the tail, so that a wrong value length
		// fails now rather than after waiting for bytes that never come.
		if have := b[min(len(b), n+size):]; !bytes.HasPrefix([]byte(tail), have) {
			return 0, 0, protocolError("got %q after the %d-byte value of %q, want \\r\\nEND\\r\\n", have, size, key)
		}
		return 0, 0, nil
	}
	if string(b[n+size:end]) != tail {
		return 0, 0, protocolError("got %q after the %d-byte value of %q, want \\r\\nEND\\r\\n", b[n+size:end], size, key)
	}
	return replyHit, end, nil
}

// parseStore is readStore on a buffer; see parseGet.
func parseStore(b []byte) (kind replyKind, n int, err error) {
	line, n, err := sliceLine(b)
	if n == 0 || err != nil {
		return 0, 0, err
	}
	switch string(line) {
	case "STORED":
		return replyStored, n, nil
	case "NOT_STORED":
		return replyNotStored, n, nil
	case "EXISTS":
		return replyExists, n, nil
	case "NOT_FOUND":
		return replyNotFound, n, nil
	case "DELETED":
		return replyDeleted, n, nil
	}
	if errorReply(line) {
		return replyError, n, nil
	}
	return 0, 0, protocolError("unexpected reply %q to a storage command", line)
}
