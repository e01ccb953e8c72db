package cliflag

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"1m", 1 << 20, true}, {"512K", 512 << 10, true}, {"100", 100, true}, {"1024m", 1 << 30, true},
		{"", 0, false}, {"m", 0, false}, {"0", 0, false}, {"-1", 0, false}, {"1025m", 0, false}, {"1x", 0, false},
	} {
		var b ByteSize
		err := b.Set(tc.in)
		if (err == nil) != tc.ok || tc.ok && int(b) != tc.want {
			t.Errorf("Set(%q) = %d, %v; want %d, ok %v", tc.in, b, err, tc.want, tc.ok)
		}
	}
}

func TestVerbosity(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{{nil, 0}, {[]string{"-v"}, 1}, {[]string{"-v", "-v"}, 2}, {[]string{"-vv"}, 2}, {[]string{"-v=3"}, 3}} {
		var v Verbosity
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Var(&v, "v", "")
		fs.Var(VerbosityAlias{&v, 2}, "vv", "")
		if err := fs.Parse(tc.args); err != nil || int(v) != tc.want {
			t.Errorf("%v: %d, %v; want %d", tc.args, v, err, tc.want)
		}
	}
}

func TestSplitList(t *testing.T) {
	if got := SplitList(" a:1, ,b:2,"); !slices.Equal(got, []string{"a:1", "b:2"}) {
		t.Errorf("SplitList = %q", got)
	}
	if got := SplitList(""); got != nil {
		t.Errorf("SplitList(\"\") = %q", got)
	}
}
