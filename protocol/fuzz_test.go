package protocol

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadRequest feeds arbitrary bytes to the connection reader and parser,
// as a client would send them, and checks that parsing never panics, never
// loops, and yields only well-formed requests.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"get a b\r\n", "gets a\r\n", "gat 10 a b\r\n", "set k 0 0 1\r\nx\r\n", "cas k 1 0 1 99 noreply\r\nx\r\n",
		"incr k 18446744073709551615\r\n", "decr k 1 noreply\r\n", "delete k 0 noreply\r\n",
		"touch k -1\r\n", "flush_all 10\r\n", "verbosity 1\r\n", "stats settings\r\n", "mn\r\n",
		"set k 0 0 5\r\nab\r\n", "append k 0 0 2\r\n\r\n\r\n", "set k 4294967297 2147483648 1\r\nx\r\n",
		"\x80\x01\x00garbage\r\n", "get a\x00b\r\n", "set k 0 0 2000000\r\n", "watch ring hot\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &Server{MaxItemSize: 4096}
		rd := newReader(bytes.NewReader(in))
		var req Request
		for i := 0; ; i++ {
			if i > len(in)+1 {
				t.Fatalf("no progress after %d requests", i)
			}
			err := s.readRequest(nil, rd, &req)
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errCloseConn) {
				return
			}
			if err != nil {
				var ce *ClientError
				if !errors.Is(err, ErrUnknownCommand) && !errors.As(err, &ce) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				continue
			}
			checkRequest(t, &req)
		}
	})
}

func checkRequest(t *testing.T, req *Request) {
	if req.Cmd == CmdNone {
		t.Fatal("parsed a request with no command")
	}
	for _, k := range req.Keys {
		if len(k) > MaxKeyLen || bytes.IndexByte(k, ' ') >= 0 || bytes.IndexByte(k, '\n') >= 0 {
			t.Fatalf("bad key %q accepted", k)
		}
	}
	if req.Cmd.IsStorage() && req.Invalid == nil {
		if !bytes.HasSuffix(req.Block, []byte("\r\n")) || !bytes.Equal(req.Key(), req.Block[:len(req.Key())]) {
			t.Fatalf("malformed block %q for key %q", req.Block, req.Key())
		}
		if !ItemSizeOK(len(req.Key()), req.Flags, len(req.Data()), 4096) {
			t.Fatalf("oversized item accepted: %d bytes", len(req.Data()))
		}
	}
}
