package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// This file is the client side of the protocol: encoding requests and
// reading replies. Nodes use it to forward requests to a key's owner; the Go
// client and the proxy use it too.

// AppendRequest appends req to dst in wire form, as a client sends it. It
// never adds "noreply": a forwarder needs every reply to keep its
// connection in step, and drops the reply itself when its own client asked
// for none.
func AppendRequest(dst []byte, req *Request) []byte {
	dst = append(dst, req.Cmd.String()...)
	switch {
	case req.Cmd.IsRetrieval():
		if req.Cmd == CmdGat || req.Cmd == CmdGats {
			dst = append(dst, ' ')
			dst = strconv.AppendInt(dst, req.Exptime, 10)
		}
		for _, k := range req.Keys {
			dst = append(dst, ' ')
			dst = append(dst, k...)
		}
	case req.Cmd.IsStorage():
		dst = append(dst, ' ')
		dst = append(dst, req.Key()...)
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, uint64(req.Flags), 10)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, req.Exptime, 10)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, int64(len(req.Data())), 10)
		if req.Cmd == CmdCas {
			dst = append(dst, ' ')
			dst = strconv.AppendUint(dst, req.Cas, 10)
		}
		dst = append(dst, "\r\n"...)
		dst = append(dst, req.Data()...)
	case req.Cmd == CmdIncr || req.Cmd == CmdDecr:
		dst = append(dst, ' ')
		dst = append(dst, req.Key()...)
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, req.Delta, 10)
	case req.Cmd == CmdTouch:
		dst = append(dst, ' ')
		dst = append(dst, req.Key()...)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, req.Exptime, 10)
	case req.Cmd == CmdDelete:
		dst = append(dst, ' ')
		dst = append(dst, req.Key()...)
	case req.Cmd == CmdFlushAll:
		if req.Delay != 0 {
			dst = append(dst, ' ')
			dst = strconv.AppendInt(dst, req.Delay, 10)
		}
	case req.Cmd == CmdVerbosity:
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, req.Delay, 10)
	default:
		for _, a := range req.Args {
			dst = append(dst, ' ')
			dst = append(dst, a...)
		}
	}
	return append(dst, "\r\n"...)
}

// A Value is one item of a retrieval reply.
type Value struct {
	Key   []byte
	Flags uint32
	Data  []byte
	Cas   uint64 // zero unless the reply carried it (gets, gats)
}

// ErrMalformedReply is a reply that does not follow the protocol; the
// connection it came from is out of step and must be closed.
var ErrMalformedReply = errors.New("protocol: malformed reply")

// ReadLine reads one reply line and returns it without "\r\n". A line in the
// protocol's error words comes back as the matching error: ErrUnknownCommand,
// *ClientError or *ServerError.
func ReadLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", ErrMalformedReply
		}
		return "", err
	}
	s := string(bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r")))
	return s, replyError(s)
}

func replyError(line string) error {
	switch {
	case line == "ERROR":
		return ErrUnknownCommand
	case len(line) > 13 && line[:13] == "CLIENT_ERROR ":
		return &ClientError{Msg: line[13:]}
	case len(line) > 13 && line[:13] == "SERVER_ERROR ":
		return &ServerError{Msg: line[13:]}
	}
	return nil
}

// ReadValues reads a retrieval reply up to its "END", appending each item to
// dst. Keys and data are fresh allocations the caller owns.
func ReadValues(r *bufio.Reader, dst []Value) ([]Value, error) {
	for {
		line, err := ReadLine(r)
		if err != nil {
			return dst, err
		}
		if line == "END" {
			return dst, nil
		}
		v, n, err := parseValueLine(line)
		if err != nil {
			return dst, err
		}
		// Grow with what actually arrives, so a peer announcing a huge value
		// cannot make us allocate it up front.
		buf := bytes.NewBuffer(make([]byte, 0, min(n+2, 64<<10)))
		if _, err := io.CopyN(buf, r, int64(n)+2); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return dst, err
		}
		v.Data = buf.Bytes()
		if !bytes.HasSuffix(v.Data, []byte("\r\n")) {
			return dst, ErrMalformedReply
		}
		v.Data = v.Data[:n]
		dst = append(dst, v)
	}
}

// parseValueLine parses "VALUE <key> <flags> <bytes>[ <cas>]".
func parseValueLine(line string) (Value, int, error) {
	var v Value
	toks := tokenize([]byte(line), nil)
	if len(toks) < 4 || len(toks) > 5 || string(toks[0]) != "VALUE" {
		return v, 0, fmt.Errorf("%w: %q", ErrMalformedReply, line)
	}
	flags, ok1 := ParseUint32(toks[2])
	n, ok2 := ParseInt32(toks[3])
	if !ok1 || !ok2 || n < 0 {
		return v, 0, fmt.Errorf("%w: %q", ErrMalformedReply, line)
	}
	if len(toks) == 5 {
		cas, ok := ParseUint64(toks[4])
		if !ok {
			return v, 0, fmt.Errorf("%w: %q", ErrMalformedReply, line)
		}
		v.Cas = cas
	}
	v.Key, v.Flags = toks[1], flags
	return v, int(n), nil
}
