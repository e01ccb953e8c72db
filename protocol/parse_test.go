package protocol

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseNumbers(t *testing.T) {
	u64 := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true}, {"42", 42, true}, {"+5", 5, true}, {"007", 7, true},
		{"18446744073709551615", 1<<64 - 1, true}, {"18446744073709551616", 0, false},
		{"-1", 0, false}, {"-0", 0, true}, {"abc", 0, false}, {"5a", 0, false},
		{"0x10", 0, false}, {"", 0, false}, {"\t7", 7, true}, {"7\t", 7, true}, {"+", 0, false},
	}
	for _, c := range u64 {
		got, ok := ParseUint64([]byte(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("ParseUint64(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
	u32 := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"4294967295", 1<<32 - 1, true}, {"4294967296", 0, true}, {"4294967297", 1, true},
		{"18446744073709551615", 1<<32 - 1, true}, {"-1", 0, false},
	}
	for _, c := range u32 {
		got, ok := ParseUint32([]byte(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("ParseUint32(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
	i32 := []struct {
		in   string
		want int32
		ok   bool
	}{
		{"-1", -1, true}, {"2147483647", 2147483647, true}, {"2147483648", -2147483648, true},
		{"4294967297", 1, true}, {"9223372036854775808", 0, false}, {"1.5", 0, false},
	}
	for _, c := range i32 {
		got, ok := ParseInt32([]byte(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("ParseInt32(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestParseLine(t *testing.T) {
	type want struct {
		cmd     Command
		keys    []string
		dataLen int
		noreply bool
		err     error
	}
	cases := []struct {
		line string
		want want
	}{
		{"get a b a", want{cmd: CmdGet, keys: []string{"a", "b", "a"}}},
		{"  gets   a  ", want{cmd: CmdGets, keys: []string{"a"}}},
		{"get", want{err: ErrUnknownCommand}},
		{"GET a", want{err: ErrUnknownCommand}},
		{"", want{err: ErrUnknownCommand}},
		{"x", want{err: ErrUnknownCommand}},
		{"get a\tb", want{cmd: CmdGet, keys: []string{"a\tb"}}},
		{"get noreply", want{cmd: CmdGet, keys: []string{"noreply"}}},
		{"gat 10", want{cmd: CmdGat}},
		{"gat k", want{err: ErrBadExptime}},
		{"gats 0 a b", want{cmd: CmdGats, keys: []string{"a", "b"}}},
		{"set k 0 0 5", want{cmd: CmdSet, keys: []string{"k"}, dataLen: 5}},
		{"set k 0 0 5 noreply", want{cmd: CmdSet, keys: []string{"k"}, dataLen: 5, noreply: true}},
		{"set k 0 0 5 garbage", want{cmd: CmdSet, keys: []string{"k"}, dataLen: 5}},
		{"set k 0 0 5 noreply extra", want{err: ErrUnknownCommand}},
		{"set k 0 0", want{err: ErrUnknownCommand}},
		{"set k 0 0 -1", want{cmd: CmdSet, err: ErrBadFormat}},
		{"set k 0 0 2147483647", want{cmd: CmdSet, err: ErrBadFormat}},
		{"set k abc 0 1 noreply", want{cmd: CmdSet, noreply: true, err: ErrBadFormat}},
		{"cas k 0 0 1", want{err: ErrUnknownCommand}},
		{"cas k 0 0 1 -1", want{cmd: CmdCas, err: ErrBadFormat}},
		{"incr k abc", want{cmd: CmdIncr, err: ErrBadDelta}},
		{"decr k 5 noreply", want{cmd: CmdDecr, keys: []string{"k"}, noreply: true}},
		{"delete k", want{cmd: CmdDelete, keys: []string{"k"}}},
		{"delete k 0", want{cmd: CmdDelete, keys: []string{"k"}}},
		{"delete k 0 noreply", want{cmd: CmdDelete, keys: []string{"k"}, noreply: true}},
		{"delete k 1", want{cmd: CmdDelete, err: ErrBadDelete}},
		{"touch k x", want{cmd: CmdTouch, err: ErrBadExptime}},
		{"flush_all", want{cmd: CmdFlushAll}},
		{"flush_all noreply", want{cmd: CmdFlushAll, noreply: true}},
		{"flush_all x", want{cmd: CmdFlushAll, err: ErrBadExptime}},
		{"flush_all 0 noreply x", want{err: ErrUnknownCommand}},
		{"verbosity", want{err: ErrUnknownCommand}},
		{"verbosity noreply", want{cmd: CmdVerbosity, noreply: true, err: ErrBadFormat}},
		{"version noreply", want{cmd: CmdVersion}},
		{"mn", want{cmd: CmdMetaNoop}},
		{"GET / HTTP/1.1", want{err: errCloseConn}},
	}
	for _, c := range cases {
		var req Request
		req.reset()
		n, err := parseLine([]byte(c.line), &req)
		var keys []string
		for _, k := range req.Keys {
			keys = append(keys, string(k))
		}
		got := want{cmd: req.Cmd, keys: keys, dataLen: n, noreply: req.NoReply, err: err}
		if c.want.err != nil {
			if !errors.Is(err, c.want.err) || got.noreply != c.want.noreply {
				t.Errorf("parseLine(%q): err %v noreply %v; want err %v noreply %v", c.line, err, got.noreply, c.want.err, c.want.noreply)
			}
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseLine(%q) = %+v; want %+v", c.line, got, c.want)
		}
	}
}

func TestTrimLine(t *testing.T) {
	for in, want := range map[string]string{
		"get a\r\n": "get a", "get a\n": "get a", "get a\r\r\n": "get a\r", "get a\x00b\r\n": "get a", "\n": "",
	} {
		if got := string(trimLine([]byte(in))); got != want {
			t.Errorf("trimLine(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestItemSizeOK(t *testing.T) {
	const max = 1 << 20
	if !ItemSizeOK(1, 0, 1048516, max) || ItemSizeOK(1, 0, 1048517, max) {
		t.Error("key k, flags 0: the largest value must be 1048516 bytes")
	}
	if !ItemSizeOK(1, 1, 1048512, max) || ItemSizeOK(1, 1, 1048513, max) {
		t.Error("key k, flags 1: the largest value must be 1048512 bytes")
	}
}
