package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/hotcache/hotcache/internal/workload"
)

const replyKey = "user:0000042:profile"

// getReplyCases are replies to "get " + replyKey, for replyReader and parseGet.
var getReplyCases = []struct {
	name  string
	in    string
	want  replyKind
	err   error // errProtocol, io.EOF, or nil
	after string
}{
	{"miss", "END\r\n", replyMiss, nil, ""},
	{"hit", "VALUE " + replyKey + " 0 5\r\nhello\r\nEND\r\n", replyHit, nil, ""},
	{"hit with flags and cas", "VALUE " + replyKey + " 4294967295 3 99\r\nabc\r\nEND\r\nnext", replyHit, nil, "next"},
	{"empty value", "VALUE " + replyKey + " 0 0\r\n\r\nEND\r\n", replyHit, nil, ""},
	{"value containing CRLF", "VALUE " + replyKey + " 0 4\r\n\r\n\r\n\r\nEND\r\n", replyHit, nil, ""},
	{"server error", "SERVER_ERROR out of memory\r\nEND\r\n", replyError, nil, "END\r\n"},
	{"client error", "CLIENT_ERROR bad command line format\r\n", replyError, nil, ""},
	{"error", "ERROR\r\n", replyError, nil, ""},
	{"other key", "VALUE user:0000043:profile 0 1\r\nx\r\nEND\r\n", 0, errProtocol, ""},
	{"value too long", "VALUE " + replyKey + " 0 1\r\nxy\r\nEND\r\n", 0, errProtocol, ""},
	{"no END", "VALUE " + replyKey + " 0 1\r\nx\r\nVALUE " + replyKey + " 0 1\r\nx\r\nEND\r\n", 0, errProtocol, ""},
	{"bad size", "VALUE " + replyKey + " 0 -1\r\n", 0, errProtocol, ""},
	{"bad flags", "VALUE " + replyKey + " x 1\r\nx\r\nEND\r\n", 0, errProtocol, ""},
	{"bad cas", "VALUE " + replyKey + " 0 1 z\r\nx\r\nEND\r\n", 0, errProtocol, ""},
	{"missing size", "VALUE " + replyKey + " 0\r\n", 0, errProtocol, ""},
	{"stored to a get", "STORED\r\n", 0, errProtocol, ""},
	{"bare LF", "END\n", 0, errProtocol, ""},
	{"truncated line", "EN", 0, io.EOF, ""},
	{"truncated value", "VALUE " + replyKey + " 0 10\r\nabc", 0, io.EOF, ""},
	{"line longer than buffer", "VALUE " + strings.Repeat("k", 5000) + " 0 1\r\n", 0, errProtocol, ""},
}

func TestReplyReader_get(t *testing.T) {
	const key = replyKey
	for _, tc := range getReplyCases {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tc.in), 4096)
			rr := replyReader{br: br}
			got, err := rr.readGet([]byte(key))
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("readGet(%q) error = %v, want %v", tc.in, err, tc.err)
			}
			if err == nil && got != tc.want {
				t.Fatalf("readGet(%q) = %v, want %v", tc.in, got, tc.want)
			}
			if err == nil {
				rest, _ := io.ReadAll(br)
				if string(rest) != tc.after {
					t.Errorf("left %q unread, want %q", rest, tc.after)
				}
			}
		})
	}
}

// storeReplyCases are replies to a storage command or a delete.
var storeReplyCases = []struct {
	in   string
	want replyKind
	err  error
}{
	{"STORED\r\n", replyStored, nil},
	{"NOT_STORED\r\n", replyNotStored, nil},
	{"EXISTS\r\n", replyExists, nil},
	{"NOT_FOUND\r\n", replyNotFound, nil},
	{"SERVER_ERROR object too large for cache\r\n", replyError, nil},
	{"CLIENT_ERROR bad data chunk\r\n", replyError, nil},
	{"ERROR\r\n", replyError, nil},
	{"END\r\n", 0, errProtocol},
	{"STORED", 0, io.EOF},
	{"STORED \r\n", 0, errProtocol},
	{"SERVER_ERROR\r\n", 0, errProtocol}, // memcached always adds a message
	{"DELETED\r\n", replyDeleted, nil},
}

func TestReplyReader_store(t *testing.T) {
	for _, tc := range storeReplyCases {
		rr := replyReader{br: bufio.NewReader(strings.NewReader(tc.in))}
		got, err := rr.readStore()
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("readStore(%q) error = %v, want %v", tc.in, err, tc.err)
			continue
		}
		if err == nil && got != tc.want {
			t.Errorf("readStore(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestRequest_encode(t *testing.T) {
	r := newRequest(5)
	b, ks, ke := r.appendGet([]byte("x"), 42)
	if string(b) != "xget user:0000042:profile\r\n" || string(b[ks:ke]) != "user:0000042:profile" {
		t.Errorf("appendGet = %q, key %q", b, b[ks:ke])
	}
	if got := string(r.appendSet(nil, 7)); got != "set user:0000007:profile 0 0 5\r\nabcde\r\n" {
		t.Errorf("appendSet = %q", got)
	}
}

func TestParseUint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true}, {"42", 42, true}, {"18446744073709551615", 1<<64 - 1, true},
		{"18446744073709551616", 0, false}, {"", 0, false}, {"-1", 0, false}, {"1 ", 0, false}, {"+1", 0, false},
	} {
		if got, ok := parseUint([]byte(tc.in)); got != tc.want || ok != tc.ok {
			t.Errorf("parseUint(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// batchFixture is a pipelined batch of 16 requests (90% gets) and the replies
// memcached sends to it, for the allocation test and the benchmark.
type batchFixture struct {
	req     *request
	ids     []int
	isGet   []bool
	replies []byte
}

func newBatchFixture(valueSize int) *batchFixture {
	f := &batchFixture{req: newRequest(valueSize)}
	value := f.req.setTail[len(f.req.setTail)-valueSize-2:]
	var rep bytes.Buffer
	for i := range 16 {
		id := 1000 + i*37
		get := i%10 != 9
		f.ids, f.isGet = append(f.ids, id), append(f.isGet, get)
		if get {
			rep.WriteString("VALUE " + workload.Key(id) + " 0 " + strconv.Itoa(valueSize) + "\r\n")
			rep.Write(value)
			rep.WriteString("END\r\n")
		} else {
			rep.WriteString("STORED\r\n")
		}
	}
	f.replies = rep.Bytes()
	return f
}

// fixtureConn is the state one connection reuses across batches.
type fixtureConn struct {
	wbuf []byte
	src  *bytes.Reader
	rr   replyReader
	keys [][2]int
}

func (f *batchFixture) newConn() *fixtureConn {
	c := &fixtureConn{src: bytes.NewReader(f.replies), wbuf: make([]byte, 0, 4096), keys: make([][2]int, 0, 16)}
	c.rr.br = bufio.NewReaderSize(c.src, 64<<10)
	return c
}

// roundTrip encodes the batch and decodes its replies, as a worker does.
func (f *batchFixture) roundTrip(c *fixtureConn) (hits int, err error) {
	c.wbuf, c.keys = c.wbuf[:0], c.keys[:0]
	for i, id := range f.ids {
		if f.isGet[i] {
			var ks, ke int
			c.wbuf, ks, ke = f.req.appendGet(c.wbuf, id)
			c.keys = append(c.keys, [2]int{ks, ke})
		} else {
			c.wbuf = f.req.appendSet(c.wbuf, id)
			c.keys = append(c.keys, [2]int{})
		}
	}
	c.src.Reset(f.replies)
	c.rr.br.Reset(c.src)
	for i, k := range c.keys {
		var kind replyKind
		if f.isGet[i] {
			kind, err = c.rr.readGet(c.wbuf[k[0]:k[1]])
		} else {
			kind, err = c.rr.readStore()
		}
		if err != nil {
			return hits, err
		}
		if kind == replyHit {
			hits++
		}
	}
	return hits, nil
}

func TestRoundTrip_noAllocs(t *testing.T) {
	f := newBatchFixture(100)
	c := f.newConn()
	if hits, err := f.roundTrip(c); err != nil || hits != 15 {
		t.Fatalf("roundTrip = %d hits, %v; want 15 hits", hits, err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = f.roundTrip(c) }); n != 0 {
		t.Fatalf("encode+decode of a 16-request batch allocates %v times", n)
	}
}

// BenchmarkRoundTrip is the generator's per-batch CPU cost without the
// network: encode 16 requests, decode 16 replies (100-byte values).
func BenchmarkRoundTrip(b *testing.B) {
	f := newBatchFixture(100)
	c := f.newConn()
	b.ReportAllocs()
	b.SetBytes(int64(len(f.replies)))
	for b.Loop() {
		if _, err := f.roundTrip(c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(f.ids)), "ns/request")
}

func TestReplyReader_valueLargerThanBuffer(t *testing.T) {
	value := strings.Repeat("v", 40)
	for _, tc := range []struct {
		in  string
		err error
	}{
		{"VALUE k 0 40\r\n" + value + "\r\nEND\r\nEND\r\n", nil},
		{"VALUE k 0 40\r\n" + value + "x\r\nEND\r\n", errProtocol},
		{"VALUE k 0 40\r\n" + value + "\r\nENDX\r\n", errProtocol},
		{"VALUE k 0 40\r\n" + value[:30], io.EOF},
	} {
		rr := replyReader{br: bufio.NewReaderSize(strings.NewReader(tc.in), 16)}
		kind, err := rr.readGet([]byte("k"))
		if !errors.Is(err, tc.err) || (tc.err == nil && (err != nil || kind != replyHit)) {
			t.Errorf("readGet(%q) = %v, %v; want hit, %v", tc.in, kind, err, tc.err)
		}
		if tc.err == nil {
			if kind, err := rr.readGet([]byte("k")); kind != replyMiss || err != nil {
				t.Errorf("next reply = %v, %v; want miss", kind, err)
			}
		}
	}
}

// TestParseGet checks the buffer parser against the reader's cases: the
// same kinds and errors, a truncated reply is "not yet" rather than EOF,
// and every proper prefix of a good reply is "not yet".
func TestParseGet(t *testing.T) {
	for _, tc := range getReplyCases {
		kind, n, err := parseGet([]byte(tc.in), []byte(replyKey))
		switch {
		case tc.err == io.EOF:
			if n != 0 || err != nil {
				t.Errorf("%s: parseGet = %v, %d, %v; want not yet", tc.name, kind, n, err)
			}
		case tc.err != nil:
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: parseGet error %v, want %v", tc.name, err, tc.err)
			}
		default:
			if err != nil || kind != tc.want || n != len(tc.in)-len(tc.after) {
				t.Errorf("%s: parseGet = %v, %d, %v; want %v, %d", tc.name, kind, n, err, tc.want, len(tc.in)-len(tc.after))
			}
			for i := range len(tc.in) - len(tc.after) {
				if _, n, err := parseGet([]byte(tc.in[:i]), []byte(replyKey)); n != 0 || err != nil {
					t.Errorf("%s: the first %d bytes parse as %d, %v; want not yet", tc.name, i, n, err)
				}
			}
		}
	}
	big := "VALUE k 0 100000\r\n" + strings.Repeat("v", 100000) + "\r\nEND\r\n"
	if kind, n, err := parseGet([]byte(big), []byte("k")); kind != replyHit || n != len(big) || err != nil {
		t.Errorf("a 100000-byte value: %v, %d, %v", kind, n, err)
	}
	if _, _, err := parseGet([]byte(strings.Repeat("x", maxReplyLine+1)), []byte("k")); !errors.Is(err, errProtocol) {
		t.Errorf("a line longer than %d bytes: %v", maxReplyLine, err)
	}
}

func TestParseStore(t *testing.T) {
	for _, tc := range storeReplyCases {
		kind, n, err := parseStore([]byte(tc.in))
		switch {
		case tc.err == io.EOF:
			if n != 0 || err != nil {
				t.Errorf("parseStore(%q) = %v, %d, %v; want not yet", tc.in, kind, n, err)
			}
		case tc.err != nil:
			if !errors.Is(err, tc.err) {
				t.Errorf("parseStore(%q) error %v, want %v", tc.in, err, tc.err)
			}
		default:
			if err != nil || kind != tc.want || n != len(tc.in) {
				t.Errorf("parseStore(%q) = %v, %d, %v", tc.in, kind, n, err)
			}
		}
	}
}
