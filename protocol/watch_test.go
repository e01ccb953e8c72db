package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// watchEventCases pin the wire form of every event kind.
var watchEventCases = []struct {
	ev   WatchEvent
	wire string
}{
	{WatchEvent{Kind: WatchRing, Seq: 1, Generation: 3, Data: []byte("ring id=x\nmember a\n")},
		"RING 1 3 19\r\nring id=x\nmember a\n\r\n"},
	{WatchEvent{Kind: WatchHot, Seq: 2, Key: "user:1", Flags: 7, Exptime: 60, Cas: 99, LeaseMS: 2000, Stamp: 123456, Data: []byte("a\r\nb")},
		"HOT 2 user:1 7 60 99 2000 123456 4\r\na\r\nb\r\n"},
	{WatchEvent{Kind: WatchRenew, Seq: 3, Key: "user:1", Cas: 99, LeaseMS: 2000, Stamp: 124000}, "RENEW 3 user:1 99 2000 124000\r\n"},
	{WatchEvent{Kind: WatchInval, Seq: 4, Key: "user:1"}, "INVAL 4 user:1\r\n"},
	{WatchEvent{Kind: WatchCool, Seq: 5, Key: "user:1"}, "COOL 5 user:1\r\n"},
	{WatchEvent{Kind: WatchPong, Seq: 6, Stamp: 18446744073709551615}, "PONG 6 18446744073709551615\r\n"},
	{WatchEvent{Kind: WatchRing, Seq: 7, Generation: 0, Data: []byte{}}, "RING 7 0 0\r\n\r\n"},
}

func TestWatchEvent_wireForm(t *testing.T) {
	var all []byte
	for _, tc := range watchEventCases {
		got, err := AppendWatchEvent(nil, &tc.ev)
		if err != nil || string(got) != tc.wire {
			t.Errorf("AppendWatchEvent(%+v) = %q, %v; want %q", tc.ev, got, err, tc.wire)
		}
		all = append(all, tc.wire...)
	}
	r := bufio.NewReader(bytes.NewReader(all))
	for _, tc := range watchEventCases {
		got, err := ReadWatchEvent(r, 0)
		if err != nil || !reflect.DeepEqual(got, tc.ev) {
			t.Errorf("ReadWatchEvent(%q) = %+v, %v; want %+v", tc.wire, got, err, tc.ev)
		}
	}
	if _, err := ReadWatchEvent(r, 0); err != io.EOF {
		t.Errorf("at the end: err = %v, want io.EOF", err)
	}
}

func TestReadWatchEvent_rejects(t *testing.T) {
	for _, in := range []string{
		"RING 0 1 0\r\n\r\n",                // seq starts at 1
		"RING 1 1\r\n",                      // too few fields
		"RING 01 1 0\r\n\r\n",               // not canonical
		"RING 1 -1 0\r\n\r\n",               // signed
		"RING 1 1 3\r\nabcd\r\n",            // block not followed by \r\n
		"RING 1 1 5\r\nab",                  // short block
		"HOT 1 a\x01b 0 0 1 1 1 1\r\nx\r\n", // control byte in key
		"HOT 1 k 4294967296 0 1 1 1 1\r\nx\r\n",
		"INVAL 1\r\n", "COOL 1 k extra\r\n", "PONG 1 x\r\n", "PING 1\r\n", "ring 1 1 0\r\n\r\n",
		"PONG 1 1\n",          // bare \n
		"RING 1  1 0\r\n\r\n", // double space
		"RING 1 1 99999999\r\n",
		"INVAL 1 " + strings.Repeat("k", MaxKeyLen+1) + "\r\n",
		"COOL 1 " + strings.Repeat("k", MaxWatchLine) + "\r\n",
	} {
		_, err := ReadWatchEvent(bufio.NewReaderSize(bytes.NewReader([]byte(in)), 16), 1<<20)
		if !errors.Is(err, ErrMalformedWatch) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("ReadWatchEvent(%q): err = %v, want ErrMalformedWatch", in, err)
		}
	}
	_, err := ReadWatchEvent(bufio.NewReader(strings.NewReader("SERVER_ERROR slow watcher\r\n")), 0)
	var se *ServerError
	if !errors.As(err, &se) || se.Msg != "slow watcher" {
		t.Errorf("SERVER_ERROR line: err = %v, want *ServerError", err)
	}
}

func TestWatchMessage_wireForm(t *testing.T) {
	for _, tc := range []struct {
		m    WatchMessage
		wire string
	}{
		{WatchMessage{Kind: WatchAck, Seq: 4}, "ACK 4\r\n"},
		{WatchMessage{Kind: WatchHits, Slice: 17, Hits: []KeyHits{{"a", 3}, {"b", 0}}}, "HITS 17 a 3 b 0\r\n"},
		{WatchMessage{Kind: WatchRefresh, Key: "user:1"}, "REFRESH user:1\r\n"},
		{WatchMessage{Kind: WatchPing, Stamp: 123456}, "PING 123456\r\n"},
	} {
		got, err := AppendWatchMessage(nil, &tc.m)
		if err != nil || string(got) != tc.wire {
			t.Errorf("AppendWatchMessage(%+v) = %q, %v; want %q", tc.m, got, err, tc.wire)
		}
		back, err := ReadWatchMessage(bufio.NewReader(strings.NewReader(tc.wire)))
		if err != nil || !reflect.DeepEqual(back, tc.m) {
			t.Errorf("ReadWatchMessage(%q) = %+v, %v", tc.wire, back, err)
		}
	}
	for _, bad := range []WatchMessage{
		{Kind: WatchHits, Slice: 1},
		{Kind: WatchRefresh, Key: "a b"},
		{Kind: 0},
		{Kind: WatchHits, Hits: make([]KeyHits, MaxWatchLine/4)}, // empty keys
	} {
		if out, err := AppendWatchMessage([]byte("x"), &bad); !errors.Is(err, ErrMalformedWatch) || string(out) != "x" {
			t.Errorf("AppendWatchMessage(%+v) = %q, %v; want ErrMalformedWatch and dst unchanged", bad, out, err)
		}
	}
	long := WatchMessage{Kind: WatchHits, Slice: 1}
	for range MaxWatchLine / 4 {
		long.Hits = append(long.Hits, KeyHits{"key", 12})
	}
	if _, err := AppendWatchMessage(nil, &long); !errors.Is(err, ErrMalformedWatch) {
		t.Errorf("a HITS line over MaxWatchLine was encoded: %v", err)
	}
}

func TestWatchOpen(t *testing.T) {
	for _, tc := range []struct {
		open WatchOpen
		wire string
	}{
		{WatchOpen{Name: "edge-1", Stamp: 42}, "watch edge-1 42\r\n"},
		{WatchOpen{Name: "edge-1", Stamp: 0, RingOnly: true}, "watch edge-1 0 ring\r\n"},
	} {
		b, err := AppendWatchOpen(nil, tc.open)
		if err != nil || string(b) != tc.wire {
			t.Fatalf("AppendWatchOpen(%+v) = %q, %v; want %q", tc.open, b, err, tc.wire)
		}
		var req Request
		if _, err := parseLine(trimLine(b), &req); err != nil || req.Cmd != CmdWatch {
			t.Fatalf("parseLine(%q): %v, cmd %v", b, err, req.Cmd)
		}
		if got, err := ParseWatchOpen(req.Args); err != nil || got != tc.open {
			t.Errorf("ParseWatchOpen(%q) = %+v, %v; want %+v", b, got, err, tc.open)
		}
	}
	for _, args := range [][][]byte{nil, {[]byte("e")}, {[]byte("e"), []byte("-1")}, {[]byte("e"), []byte("1"), []byte("x")},
		{[]byte("e"), []byte("1"), []byte("ring"), []byte("ring")}} {
		if _, err := ParseWatchOpen(args); err != ErrBadFormat {
			t.Errorf("ParseWatchOpen(%q): err = %v, want ErrBadFormat", args, err)
		}
	}
	if _, err := AppendWatchOpen(nil, WatchOpen{Name: "has space", Stamp: 1}); err == nil {
		t.Error("AppendWatchOpen accepted a name with a space")
	}
}

// FuzzReadWatchEvent checks that the event reader never panics or loops, and
// that every event it accepts encodes back to exactly the bytes it consumed:
// the grammar is one-to-one.
func FuzzReadWatchEvent(f *testing.F) {
	for _, tc := range watchEventCases {
		f.Add([]byte(tc.wire))
	}
	f.Add([]byte("SERVER_ERROR slow watcher\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(in), 16)
		consumed := 0
		for i := 0; ; i++ {
			if i > len(in) {
				t.Fatalf("no progress after %d events", i)
			}
			ev, err := ReadWatchEvent(r, 1<<16)
			if err != nil {
				return
			}
			out, err := AppendWatchEvent(nil, &ev)
			if err != nil {
				t.Fatalf("accepted %+v but cannot encode it: %v", ev, err)
			}
			if end := consumed + len(out); end > len(in) || !bytes.Equal(out, in[consumed:end]) {
				t.Fatalf("event %+v re-encodes as %q, not as the input %q", ev, out, in[consumed:])
			}
			consumed += len(out)
		}
	})
}

// FuzzReadWatchMessage does the same for the edge → node messages.
func FuzzReadWatchMessage(f *testing.F) {
	for _, s := range []string{"ACK 4\r\n", "HITS 17 a 3 b 0\r\n", "REFRESH user:1\r\n", "PING 123456\r\nACK 1\r\n", "HITS 1\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(in), 16)
		consumed := 0
		for {
			m, err := ReadWatchMessage(r)
			if err != nil {
				return
			}
			out, err := AppendWatchMessage(nil, &m)
			if err != nil {
				t.Fatalf("accepted %+v but cannot encode it: %v", m, err)
			}
			if end := consumed + len(out); end > len(in) || !bytes.Equal(out, in[consumed:end]) {
				t.Fatalf("message %+v re-encodes as %q, not as the input %q", m, out, in[consumed:])
			}
			consumed += len(out)
		}
	})
}
