package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestAppendRequestRoundTrip(t *testing.T) {
	for _, in := range []string{
		"get a b a\r\n", "gats 100 k\r\n", "set k 5 0 3\r\nabc\r\n", "cas k 0 10 1 42\r\nx\r\n",
		"incr k 7\r\n", "decr k 1\r\n", "touch k -1\r\n", "delete k\r\n", "stats settings\r\n",
		"flush_all\r\n", "flush_all 30\r\n", "flush_all -1\r\n", "verbosity 1\r\n", "peer n1\r\n", "append k 0 0 4\r\n\r\n\r\n\r\n",
	} {
		s := &Server{}
		var req Request
		if err := s.readRequest(nil, newReader(strings.NewReader(in)), &req); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := string(AppendRequest(nil, &req)); got != in {
			t.Errorf("AppendRequest(parse(%q)) = %q", in, got)
		}
	}
	// noreply is never forwarded: the forwarder needs the reply.
	var req Request
	(&Server{}).readRequest(nil, newReader(strings.NewReader("set k 0 0 1 noreply\r\nx\r\n")), &req)
	if got := string(AppendRequest(nil, &req)); got != "set k 0 0 1\r\nx\r\n" {
		t.Errorf("noreply request encoded as %q", got)
	}
}

func TestReadValues(t *testing.T) {
	in := "VALUE a 1 3\r\nabc\r\nVALUE b 0 4 99\r\n\r\n\r\n\r\nEND\r\n"
	got, err := ReadValues(bufio.NewReader(strings.NewReader(in)), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Value{{Key: []byte("a"), Flags: 1, Data: []byte("abc")}, {Key: []byte("b"), Data: []byte("\r\n\r\n"), Cas: 99}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
	for in, want := range map[string]error{
		"SERVER_ERROR out of memory\r\n":           &ServerError{Msg: "out of memory"},
		"CLIENT_ERROR bad command line format\r\n": ErrBadFormat,
		"ERROR\r\n": ErrUnknownCommand,
	} {
		_, err := ReadValues(bufio.NewReader(strings.NewReader(in)), nil)
		if err == nil || err.Error() != want.Error() {
			t.Errorf("%q: err %v; want %v", in, err, want)
		}
	}
	for _, bad := range []string{"VALUE a x 1\r\nx\r\nEND\r\n", "VALUE a 0 1\r\nxyz\r\nEND\r\n", "HELLO\r\n"} {
		if _, err := ReadValues(bufio.NewReader(strings.NewReader(bad)), nil); !errors.Is(err, ErrMalformedReply) {
			t.Errorf("%q: err %v; want ErrMalformedReply", bad, err)
		}
	}
}

// FuzzReadValues feeds arbitrary server replies to the client-side parser.
func FuzzReadValues(f *testing.F) {
	for _, s := range []string{
		"END\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n", "VALUE a 0 1 5\r\nx\r\nEND\r\n", "SERVER_ERROR x\r\n",
		"VALUE a 0 -1\r\n", "VALUE a 0 99999999999\r\n", "VALUE\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		vals, err := ReadValues(bufio.NewReader(bytes.NewReader(in)), nil)
		for _, v := range vals {
			if bytes.IndexByte(v.Key, ' ') >= 0 || len(v.Key) == 0 {
				t.Fatalf("bad key %q", v.Key)
			}
		}
		if err == nil && !bytes.Contains(in, []byte("END")) {
			t.Fatal("reply accepted without END")
		}
	})
}
