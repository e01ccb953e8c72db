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
)

var replyNames = [...]string{"miss", "hit", "STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "error"}

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
	setTail []byte // " 0 0 <size>\r\n<value>\r\n"
}

func newRequest(valueSize int) *request {
	tail := fmt.Appendf(nil, " 0 0 %d\r\n", valueSize)
	for i := range valueSize {
		tail = append(tail, 'a'+byte(i%26))
	}
	return &request{setTail: append(tail, "\r\n"...)}
}

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
	return append(dst, r.setTail...)
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

// readStore reads the reply to a storage command.
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
