package conformance

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCorpus_goldenFilesRoundTrip: every case of the corpus has a golden
// file, and writing it back gives the same transcript and version.
func TestCorpus_goldenFilesRoundTrip(t *testing.T) {
	cases, err := LoadCases("../../node/testdata/conformance")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range cases {
		tr, version, err := ReadGolden(GoldenPath("../../node/testdata/conformance/golden", c))
		if err != nil {
			t.Fatal(err)
		}
		if len(tr) != len(c.Steps) || version == "" {
			t.Fatalf("%s/%s: golden file has %d steps and version %q, want %d steps and a version", c.File, c.Name, len(tr), version, len(c.Steps))
		}
		path := GoldenPath(dir, c)
		if err := WriteGolden(path, version, tr); err != nil {
			t.Fatal(err)
		}
		tr2, version2, err := ReadGolden(path)
		if err != nil || version2 != version || tr2.String() != tr.String() {
			t.Fatalf("%s/%s: round trip gave version %q, err %v, transcript\n%s\nwant version %q, transcript\n%s", c.File, c.Name, version2, err, tr2, version, tr)
		}
	}
}

// TestPlay_normalizes plays a case against a tiny fake server and checks
// the sentinel handling and the normalization of cas uniques, the version
// and stats.
func TestPlay_normalizes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go fakeServer(c)
		}
	}()

	corpus := t.TempDir()
	text := "# a comment\n=== fake\nsend gets k\\r\\n\nsend gets k\\r\\n\nsend cas k 0 0 1 {cas:k}\\r\\nx\\r\\n\n" +
		"send version\\r\\n\nsend stats\\r\\n\n@b send quit\\r\\n\n"
	if err := os.WriteFile(filepath.Join(corpus, "f.txt"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cases, err := LoadCases(corpus)
	if err != nil {
		t.Fatal(err)
	}
	got := Play(ln.Addr().String(), cases[0]).DropStats("cmd_get")
	want := `send    gets k\r\n
recv    VALUE k 0 1 <cas1>\r\n
recv    x\r\n
recv    END\r\n
send    gets k\r\n
recv    VALUE k 0 1 <cas1>\r\n
recv    x\r\n
recv    END\r\n
send    cas k 0 0 1 {cas:k}\r\nx\r\n
recv    STORED\r\n
send    version\r\n
recv    VERSION <v>\r\n
send    stats\r\n
recv    STAT curr_items 1\r\n
recv    STAT pid <v>\r\n
recv    END\r\n
@b send    quit\r\n
recv    <closed>
`
	if got.String() != want {
		t.Errorf("transcript:\n%s", SideBySide(mustParse(want), got, "want", "got"))
	}
	if steps := got.TimedOut(); len(steps) != 0 {
		t.Errorf("TimedOut() = %v, want none", steps)
	}
}

// fakeServer answers the few commands TestPlay_normalizes sends.
func fakeServer(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		var reply string
		switch {
		case line == "mn\r\n":
			reply = "MN\r\n"
		case line == "gets k\r\n":
			reply = "VALUE k 0 1 12345\r\nx\r\nEND\r\n"
		case strings.HasPrefix(line, "cas k 0 0 1 "):
			r.ReadString('\n')
			reply = "EXISTS\r\n"
			if strings.Fields(line)[5] == "12345" { // {cas:k} expanded to the unique of the gets
				reply = "STORED\r\n"
			}
		case line == "version\r\n":
			reply = "VERSION 1.2.3\r\n"
		case line == "stats\r\n":
			reply = "STAT pid 42\r\nSTAT not_compared 1\r\nSTAT curr_items 1\r\nSTAT cmd_get 2\r\nEND\r\n"
		case line == "quit\r\n":
			return
		}
		c.Write([]byte(reply))
	}
}

func mustParse(s string) Transcript {
	var tr Transcript
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if strings.HasPrefix(l, recvPrefix) && len(tr) > 0 {
			tr[len(tr)-1] = append(tr[len(tr)-1], l)
			continue
		}
		tr = append(tr, []string{l})
	}
	return slices.Clip(tr)
}
