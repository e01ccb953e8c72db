package ring

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// TestText_roundTrip: ParseText(MarshalText(r)) is r: same text, identity,
// members and owners, also with "\r\n" line ends.
func TestText_roundTrip(t *testing.T) {
	noAddrs := cluster(4)
	noAddrs[1].Addr, noAddrs[2].Admin = "", ""
	for _, tc := range []struct {
		name    string
		members []Member
		cfg     Config
	}{
		{"empty", nil, Config{}},
		{"one", cluster(1), Config{}},
		{"three", cluster(3), Config{}},
		{"fifty", cluster(50), Config{}},
		{"missing addresses", noAddrs, Config{}},
		{"tuned", cluster(5), Config{PartitionCount: 257, ReplicationFactor: 7, Load: 1.1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustNew(t, tc.members, tc.cfg)
			text, err := r.MarshalText()
			if err != nil || string(text) != r.String() {
				t.Fatalf("MarshalText = %q, %v; String = %q", text, err, r)
			}
			for _, in := range [][]byte{text, bytes.ReplaceAll(text, []byte("\n"), []byte("\r\n"))} {
				got, err := ParseText(in)
				if err != nil {
					t.Fatalf("ParseText(%q): %v", in, err)
				}
				if got.String() != r.String() || got.Identity() != r.Identity() || got.Len() != r.Len() {
					t.Fatalf("round trip changed the ring:\n%s\nvs\n%s", got, r)
				}
				for _, k := range testKeys()[:10_000] {
					a, _ := r.Owner(k)
					b, _ := got.Owner(k)
					if a != b {
						t.Fatalf("key %q: owner %+v before, %+v after", k, a, b)
					}
				}
			}
		})
	}
}

// TestText_format pins the text form of a small ring.
func TestText_format(t *testing.T) {
	r := mustNew(t, []Member{{Name: "b", Addr: "10.0.0.2:11211"}, {Name: "a", Addr: "10.0.0.1:11211", Admin: "10.0.0.1:9100"}}, Config{PartitionCount: 11})
	want := "ring id=" + r.Identity() + " members=2 partitions=11 replication=100 load=1.25 hash=xxhash64\n" +
		"member a 10.0.0.1:11211 10.0.0.1:9100 " + strconv.Itoa(r.PartitionCounts()["a"]) + "\n" +
		"member b 10.0.0.2:11211 - " + strconv.Itoa(r.PartitionCounts()["b"]) + "\n"
	if got := r.String(); got != want {
		t.Fatalf("String =\n%s\nwant\n%s", got, want)
	}
	custom := mustNew(t, []Member{{Name: "1"}}, Config{Hasher: toyHash{}, PartitionCount: 3})
	if !strings.Contains(custom.String(), " hash=custom\n") {
		t.Fatalf("custom hasher not marked: %s", custom)
	}
	if _, err := ParseText([]byte(custom.String())); err == nil {
		t.Fatal("ParseText accepted a ring with a custom hasher")
	}
}

// TestParseText_rejects: every way the text can be wrong is an error.
func TestParseText_rejects(t *testing.T) {
	r := mustNew(t, cluster(3), Config{})
	good := r.String()
	header, rest, _ := strings.Cut(good, "\n")
	lines := strings.Split(strings.TrimSuffix(rest, "\n"), "\n")
	swapped := header + "\n" + lines[1] + "\n" + lines[0] + "\n" + lines[2] + "\n"
	for _, tc := range []struct {
		name, text, want string
	}{
		{"empty", "", "empty text"},
		{"no final newline", strings.TrimSuffix(good, "\n"), "newline"},
		{"lone CR", strings.Replace(good, "ring ", "ring\r", 1), "carriage return"},
		{"bad header word", strings.Replace(good, "ring ", "rung ", 1), "header"},
		{"double space", strings.Replace(good, " members=", "  members=", 1), "header"},
		{"missing member line", header + "\n" + lines[0] + "\n" + lines[1] + "\n", "header says 3 members, text has 2"},
		{"extra member line", good + "member zz - - 0\n", "header says 3 members, text has 4"},
		{"members not a number", strings.Replace(good, "members=3", "members=three", 1), `"members=three"`},
		{"padded number", strings.Replace(good, "partitions=4093", "partitions=04093", 1), `"partitions=04093"`},
		{"plus sign", strings.Replace(good, "replication=100", "replication=+100", 1), `"replication=+100"`},
		{"non-canonical load", strings.Replace(good, "load=1.25", "load=1.250", 1), `"load=1.250"`},
		{"zero partitions", strings.Replace(good, "partitions=4093", "partitions=0", 1), "zero or negative"},
		{"bad partitions", strings.Replace(good, "partitions=4093", "partitions=1", 1), "room for only"},
		{"unknown hash", strings.Replace(good, "hash=xxhash64", "hash=md5", 1), `"hash=md5"`},
		{"wrong identity", strings.Replace(good, r.Identity(), "0000000000000000", 1), "identity is"},
		{"wrong count", strings.Replace(good, " "+strconv.Itoa(r.PartitionCounts()["cached-0"])+"\n", " 7\n", 1), `"cached-0" owns`},
		{"unsorted members", swapped, "Name order"},
		{"duplicate member", header + "\n" + lines[0] + "\n" + lines[0] + "\n" + lines[1] + "\n", "Name order"},
		{"short member line", strings.Replace(good, "member cached-0 ", "member ", 1), "is not \"member"},
		{"empty field", strings.Replace(good, "member cached-0 ", "member cached-0  ", 1), "is not \"member"},
		{"negative count", strings.Replace(good, " "+strconv.Itoa(r.PartitionCounts()["cached-1"])+"\n", " -1\n", 1), "not a number"},
		{"bad member", strings.Replace(good, "cached-0 10.0.0.1:11211", "cached-0 10.0.0.1:11211\x01", 1), "control"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseText([]byte(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseText(%q) = %v, %v; want an error containing %q", tc.text, got, err, tc.want)
			}
		})
	}
}

// FuzzParseText: ParseText never panics, and whatever it accepts is
// canonical: MarshalText writes the input back (modulo "\r\n").
func FuzzParseText(f *testing.F) {
	for _, ms := range [][]Member{nil, cluster(1), cluster(3)} {
		r, err := New(ms, Config{PartitionCount: 31, ReplicationFactor: 3})
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(r.String()))
	}
	f.Add([]byte("ring id=0 members=0 partitions=1 replication=2 load=1 hash=xxhash64\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ParseText(in)
		if err != nil {
			return
		}
		out, _ := r.MarshalText()
		if norm := bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n")); !bytes.Equal(out, norm) {
			t.Fatalf("accepted non-canonical text:\n%q\nwrites back as\n%q", in, out)
		}
		r.Owner(in)
		r.Owners(in, 2)
	})
}

// FuzzText_roundTrip: whatever New accepts, ParseText accepts in text form,
// and rebuilds with the same identity.
func FuzzText_roundTrip(f *testing.F) {
	f.Add("cached-0", "10.0.0.1:11211", "cached-1", "", uint16(31), uint8(3), 1.25)
	f.Add("a", "-", "b", "x", uint16(0), uint8(0), 0.0)
	f.Add("n1", "h:1", "n11", "h:2", uint16(2), uint8(11), 1.0)
	f.Fuzz(func(t *testing.T, name1, addr, name2, admin string, partitions uint16, rf uint8, load float64) {
		ms := []Member{{Name: name1, Addr: addr}, {Name: name2, Admin: admin}}
		r, err := New(ms, Config{PartitionCount: int(partitions % 1024), ReplicationFactor: int(rf % 32), Load: load})
		if err != nil {
			return
		}
		got, err := ParseText([]byte(r.String()))
		if err != nil {
			t.Fatalf("ParseText(%q): %v", r, err)
		}
		if got.Identity() != r.Identity() || got.String() != r.String() {
			t.Fatalf("round trip changed\n%s\ninto\n%s", r, got)
		}
	})
}
