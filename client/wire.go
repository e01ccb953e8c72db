package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/hotcache/hotcache/protocol"
)

// This file encodes requests straight into a connection's buffer and parses
// replies from it without allocating beyond the items returned: these are
// the client's hot paths.

// errMalformedReply is a reply that does not follow the protocol; the
// connection is out of step and is closed.
var errMalformedReply = protocol.ErrMalformedReply

// maxValue bounds a value a reply may announce (memcached's largest -I).
const maxValue = 1 << 30

// appendStorage appends "<cmd> <key> <flags> <exptime> <bytes>[ <cas>]\r\n".
func appendStorage(b []byte, cmd string, it *Item, cas bool) []byte {
	b = append(b, cmd...)
	b = append(b, ' ')
	b = append(b, it.Key...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(it.Flags), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(it.Expiration), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(it.Value)), 10)
	if cas {
		b = append(b, ' ')
		b = strconv.AppendUint(b, it.CasID, 10)
	}
	return append(b, "\r\n"...)
}

// readLine returns the next reply line, including "\r\n". It is valid until
// the next read from r.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errMalformedReply
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: %q", errMalformedReply, line)
	}
	return line, nil
}

// errorReply returns a *ServerError for "ERROR", "CLIENT_ERROR ..." and
// "SERVER_ERROR ..." lines, and nil for any other line.
func errorReply(addr string, line []byte) error {
	if bytes.HasPrefix(line, []byte("ERROR")) || bytes.HasPrefix(line, []byte("CLIENT_ERROR ")) ||
		bytes.HasPrefix(line, []byte("SERVER_ERROR ")) {
		return &ServerError{Addr: addr, Reply: string(line[:len(line)-2])}
	}
	return nil
}

// unexpected is the error for a reply line that makes no sense here.
func unexpected(addr, op string, line []byte) error {
	if err := errorReply(addr, line); err != nil {
		return err
	}
	return fmt.Errorf("%w: %s from %s: %q", errMalformedReply, op, addr, line)
}

// parseValue parses "VALUE <key> <flags> <bytes>[ <cas>]\r\n" and returns
// the key (a view into line), flags, length and cas.
func parseValue(line []byte) (key []byte, flags uint32, n int, cas uint64, ok bool) {
	rest, found := bytes.CutPrefix(line[:len(line)-2], []byte("VALUE "))
	if !found {
		return nil, 0, 0, 0, false
	}
	key, rest, found = bytes.Cut(rest, []byte(" "))
	if !found {
		return nil, 0, 0, 0, false
	}
	f, rest, found := bytes.Cut(rest, []byte(" "))
	if !found {
		return nil, 0, 0, 0, false
	}
	fl, ok1 := atou(f)
	nb, rest, hasCas := bytes.Cut(rest, []byte(" "))
	size, ok2 := atou(nb)
	if !ok1 || !ok2 || fl > 1<<32-1 || size > maxValue {
		return nil, 0, 0, 0, false
	}
	if hasCas {
		if cas, ok = atou(rest); !ok {
			return nil, 0, 0, 0, false
		}
	}
	return key, uint32(fl), int(size), cas, true
}

// atou parses a decimal of up to 20 digits, as servers write them.
func atou(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// readData reads a value of n bytes and its "\r\n" into a fresh slice.
func readData(r *bufio.Reader, n int) ([]byte, error) {
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if buf[n] != '\r' || buf[n+1] != '\n' {
		return nil, fmt.Errorf("%w: data block not followed by \\r\\n", errMalformedReply)
	}
	return buf[:n:n], nil
}

// readItems reads a retrieval reply up to "END", calling fn for each item.
// want, when not nil, maps the keys asked for to themselves, so an item's
// Key reuses the caller's string.
func readItems(r *bufio.Reader, addr string, fn func(*Item)) error {
	for {
		line, err := readLine(r)
		if err != nil {
			return err
		}
		if string(line) == "END\r\n" {
			return nil
		}
		key, flags, n, cas, ok := parseValue(line)
		if !ok {
			return unexpected(addr, "get", line)
		}
		it := &Item{Key: string(key), Flags: flags, CasID: cas}
		if it.Value, err = readData(r, n); err != nil {
			return err
		}
		fn(it)
	}
}

// readOne reads the reply to a single-key retrieval of key: the item or nil
// for a miss. The item's Key is the caller's string.
func readOne(r *bufio.Reader, addr, key string) (*Item, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if string(line) == "END\r\n" {
		return nil, nil
	}
	k, flags, n, cas, ok := parseValue(line)
	if !ok || string(k) != key {
		return nil, unexpected(addr, "get", line)
	}
	it := &Item{Key: key, Flags: flags, CasID: cas}
	if it.Value, err = readData(r, n); err != nil {
		return nil, err
	}
	if line, err = readLine(r); err != nil {
		return nil, err
	}
	if string(line) != "END\r\n" {
		return nil, unexpected(addr, "get", line)
	}
	return it, nil
}
