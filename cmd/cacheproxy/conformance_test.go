package main

// TestConformance replays node/testdata/conformance/*.txt through the proxy
// (started as main starts it, in front of one standalone node) and requires
// the normalized transcripts to equal memcached's golden ones, except for the
// stats of a store the proxy does not have (see proxyOnlyDrops). The corpus
// machinery below the test is a copy of node/conformance_test.go's (without
// its live-memcached mode and golden writing): the corpus format and the
// normalization are described in docs/conformance.md. Keep the two in step;
// when node/ is free to edit, they belong in one internal package.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

const (
	corpusDir = "../../node/testdata/conformance"
	goldenDir = "../../node/testdata/conformance/golden"

	// readTimeout bounds every read of a step; only a misbehaving server
	// reaches it.
	readTimeout = 10 * time.Second

	// sentinel is sent after every "send" step: memcached's meta no-op. Its
	// reply "MN\r\n" marks the end of the step's replies.
	sentinel      = "mn\r\n"
	sentinelReply = "MN\r\n"
)

// proxyOnlyDrops are the stats the proxy cannot report, having no store of
// its own (items, bytes, evictions, memory limit, and get_expired: a miss
// does not say why) or no notion of its port in the handler. They are dropped from both transcripts; every other
// compared field, the request counters included, must match memcached's.
var proxyOnlyDrops = []string{"bytes", "curr_items", "total_items", "evictions", "limit_maxbytes", "get_expired", "maxbytes", "tcpport"}

func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("replays the whole corpus")
	}
	cases, err := loadCorpus(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	// Cases that sleep start first, so their waits overlap with the rest.
	slices.SortStableFunc(cases, func(x, y *corpusCase) int { return cmpBool(y.sleeps(), x.sleeps()) })
	for _, c := range cases {
		t.Run(c.file+"/"+c.name, func(t *testing.T) {
			t.Parallel()
			ref, _, err := readGolden(goldenPath(c))
			if err != nil {
				t.Fatal(err)
			}
			got := play(c, startProxyForCase(t))
			ref, got = dropStats(ref), dropStats(got)
			if ref.String() != got.String() {
				t.Errorf("%s.txt:%d: the proxy differs from memcached (normalized transcripts side by side, ! marks a difference):\n%s",
					c.file, c.line, sideBySide(ref, got, "memcached", "cacheproxy"))
			}
		})
	}
}

// startProxyForCase starts a fresh standalone node (memcached's defaults)
// and a proxy in front of it, as main starts one, for one case, and returns
// the proxy's memcache address once it routes by the node's ring.
func startProxyForCase(t *testing.T) string {
	t.Helper()
	n := nodetest.Standalone(t, node.Config{Name: "solo"})
	o, err := parseFlags([]string{"-l", "127.0.0.1", "-p", "0", "-admin", "", "-seeds", n.Addr()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p, err := start(o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.shutdown(ctx)
	})
	waitFor(t, "the proxy's ring", func() (bool, any) { return p.c.Ring() != nil, nil })
	return p.ln.Addr().String()
}

// dropStats removes the proxyOnlyDrops lines from a transcript.
func dropStats(tr transcript) transcript {
	out := make(transcript, 0, len(tr))
	for _, block := range tr {
		block = slices.DeleteFunc(slices.Clone(block), func(l string) bool {
			for _, f := range proxyOnlyDrops {
				if strings.HasPrefix(l, recvPrefix+"STAT "+f+" ") {
					return true
				}
			}
			return false
		})
		out = append(out, block)
	}
	return out
}

// --- corpus ---------------------------------------------------------------

// A corpusCase is one scripted exchange: steps on one or more connections.
type corpusCase struct {
	file  string // corpus file name without .txt
	name  string
	line  int
	steps []step
}

func (c *corpusCase) sleeps() bool {
	return slices.ContainsFunc(c.steps, func(s step) bool { return s.verb == "sleep" })
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	default:
		return -1
	}
}

// A step is one line of a case.
type step struct {
	line int
	conn string // connection name, "a" unless the line starts with @name
	verb string // send, partial, eof, close, sleep
	arg  string // the bytes to send, as written (escapes unexpanded)
	dur  time.Duration
}

var caseName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

func loadCorpus(dir string) ([]*corpusCase, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no corpus files in %s", dir)
	}
	var cases []*corpusCase
	seen := make(map[string]bool)
	for _, f := range files {
		cs, err := parseCorpus(f)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if seen[c.name] {
				return nil, fmt.Errorf("%s:%d: duplicate case name %q", f, c.line, c.name)
			}
			seen[c.name] = true
		}
		cases = append(cases, cs...)
	}
	return cases, nil
}

func parseCorpus(path string) ([]*corpusCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	file := strings.TrimSuffix(filepath.Base(path), ".txt")
	var cases []*corpusCase
	var cur *corpusCase
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		fail := func(format string, args ...any) error {
			return fmt.Errorf("%s:%d: %s", path, n, fmt.Sprintf(format, args...))
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if name, ok := strings.CutPrefix(line, "=== "); ok {
			if !caseName.MatchString(name) {
				return nil, fail("case name %q: use lower case letters, digits, _ . -", name)
			}
			cur = &corpusCase{file: file, name: name, line: n}
			cases = append(cases, cur)
			continue
		}
		if cur == nil {
			return nil, fail("step before the first \"=== name\" line")
		}
		st := step{line: n, conn: "a"}
		if rest, ok := strings.CutPrefix(line, "@"); ok {
			name, after, found := strings.Cut(rest, " ")
			if !found || name == "" {
				return nil, fail("want \"@conn verb ...\"")
			}
			st.conn, line = name, after
		}
		st.verb, st.arg, _ = strings.Cut(line, " ")
		switch st.verb {
		case "send", "partial":
			if st.arg == "" {
				return nil, fail("%s needs bytes", st.verb)
			}
			if _, err := expand(st.arg, nil); err != nil {
				return nil, fail("%v", err)
			}
		case "eof", "close":
			if st.arg != "" {
				return nil, fail("%s takes no argument", st.verb)
			}
		case "sleep":
			if st.dur, err = time.ParseDuration(st.arg); err != nil {
				return nil, fail("%v", err)
			}
		default:
			return nil, fail("unknown verb %q (want send, partial, eof, close, sleep)", st.verb)
		}
		cur.steps = append(cur.steps, st)
	}
	for _, c := range cases {
		if len(c.steps) == 0 {
			return nil, fmt.Errorf("%s:%d: case %s has no steps", path, c.line, c.name)
		}
	}
	return cases, nil
}

// expand turns a step's text into bytes. Escapes: \r \n \t \0 \\ \{ \xHH.
// Braces: {s*N} repeats s (itself with escapes) N times; {cas:KEY} is the cas
// unique most recently returned for KEY in this case; {now+N} and {now-N} are
// the current unix time plus or minus N seconds. s is nil when only checking
// the syntax.
func expand(text string, s *session) ([]byte, error) {
	var out []byte
	for i := 0; i < len(text); i++ {
		switch ch := text[i]; ch {
		case '\\':
			if i+1 >= len(text) {
				return nil, errors.New("trailing backslash")
			}
			i++
			switch text[i] {
			case 'r':
				out = append(out, '\r')
			case 'n':
				out = append(out, '\n')
			case 't':
				out = append(out, '\t')
			case '0':
				out = append(out, 0)
			case '\\', '{':
				out = append(out, text[i])
			case 'x':
				if i+2 >= len(text) {
					return nil, errors.New(`short \x escape`)
				}
				b, err := strconv.ParseUint(text[i+1:i+3], 16, 8)
				if err != nil {
					return nil, fmt.Errorf(`bad \x escape %q`, text[i-1:i+3])
				}
				out = append(out, byte(b))
				i += 2
			default:
				return nil, fmt.Errorf(`unknown escape \%c`, text[i])
			}
		case '{':
			end := strings.IndexByte(text[i:], '}')
			if end < 0 {
				return nil, errors.New("unclosed {")
			}
			b, err := expandBraces(text[i+1:i+end], s)
			if err != nil {
				return nil, err
			}
			out = append(out, b...)
			i += end
		default:
			out = append(out, ch)
		}
	}
	return out, nil
}

func expandBraces(inner string, s *session) ([]byte, error) {
	if key, ok := strings.CutPrefix(inner, "cas:"); ok {
		if s == nil {
			return []byte("0"), nil
		}
		cas, ok := s.lastCas[key]
		if !ok {
			return nil, fmt.Errorf("{cas:%s}: no cas unique seen for %q yet", key, key)
		}
		return []byte(cas), nil
	}
	if off, ok := strings.CutPrefix(inner, "now"); ok {
		d, err := strconv.ParseInt(off, 10, 64)
		if err != nil || off == "" || (off[0] != '+' && off[0] != '-') {
			return nil, fmt.Errorf("{%s}: want {now+N} or {now-N}", inner)
		}
		return strconv.AppendInt(nil, time.Now().Unix()+d, 10), nil
	}
	star := strings.LastIndexByte(inner, '*')
	if star < 1 {
		return nil, fmt.Errorf("{%s}: want {s*N}, {cas:KEY} or {now±N}", inner)
	}
	n, err := strconv.Atoi(inner[star+1:])
	if err != nil || n < 0 {
		return nil, fmt.Errorf("{%s}: bad count", inner)
	}
	unit, err := expand(inner[:star], nil)
	if err != nil {
		return nil, err
	}
	return bytes.Repeat(unit, n), nil
}

// --- playing a case -------------------------------------------------------

// A transcript is a case's normalized exchange, one block per step: the
// step line, then the "recv" lines of its reply.
type transcript [][]string

func (tr transcript) String() string {
	var b strings.Builder
	for _, block := range tr {
		for _, l := range block {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

const (
	recvPrefix  = "recv    "
	markNothing = "(nothing)"
	markClosed  = "<closed>"
	markTimeout = "<timeout>"
)

// session is one play of a case against one server.
type session struct {
	addr    string
	conns   map[string]*clientConn
	lastCas map[string]string // key -> cas unique last seen in a VALUE line
	labels  map[string]string // cas unique -> <casN>, numbered in order of appearance
}

type clientConn struct {
	c   net.Conn
	buf []byte // bytes read but not yet consumed by a step
}

func play(c *corpusCase, addr string) transcript {
	s := &session{addr: addr, conns: map[string]*clientConn{}, lastCas: map[string]string{}, labels: map[string]string{}}
	defer func() {
		for _, cc := range s.conns {
			cc.c.Close()
		}
	}()
	tr := make(transcript, 0, len(c.steps))
	for _, st := range c.steps {
		tr = append(tr, s.run(st))
	}
	return tr
}

func (s *session) run(st step) []string {
	head := st.verb
	if st.arg != "" {
		head = fmt.Sprintf("%-7s %s", st.verb, st.arg)
	}
	if st.conn != "a" {
		head = "@" + st.conn + " " + head
	}
	block := []string{head}
	recv := func(lines ...string) []string {
		for _, l := range lines {
			block = append(block, recvPrefix+l)
		}
		return block
	}

	switch st.verb {
	case "sleep":
		time.Sleep(st.dur)
		return block
	case "close":
		if cc := s.conns[st.conn]; cc != nil {
			cc.c.Close()
			delete(s.conns, st.conn)
		}
		return block
	}

	cc, err := s.conn(st.conn)
	if err != nil {
		return recv("<dial: " + err.Error() + ">")
	}
	if st.verb == "send" || st.verb == "partial" {
		data, err := expand(st.arg, s)
		if err != nil {
			return recv("<harness: " + err.Error() + ">")
		}
		if st.verb == "send" {
			data = append(data, sentinel...) // one write, so the server reads them together
		}
		cc.c.SetWriteDeadline(time.Now().Add(readTimeout))
		if _, err := cc.c.Write(data); err != nil {
			s.drop(st.conn)
			return recv(markClosed)
		}
		if st.verb == "partial" {
			return block
		}
	}

	reply, end := s.read(cc, st.verb == "send")
	if end != "" {
		s.drop(st.conn)
	}
	lines := s.normalize(reply)
	if end != "" {
		lines = append(lines, end)
	}
	if len(lines) == 0 {
		lines = []string{markNothing}
	}
	return recv(lines...)
}

// conn returns the named connection, dialing it on first use or after it
// was closed.
func (s *session) conn(name string) (*clientConn, error) {
	if cc := s.conns[name]; cc != nil {
		return cc, nil
	}
	c, err := net.DialTimeout("tcp", s.addr, readTimeout)
	if err != nil {
		return nil, err
	}
	cc := &clientConn{c: c}
	s.conns[name] = cc
	return cc, nil
}

func (s *session) drop(name string) {
	if cc := s.conns[name]; cc != nil {
		cc.c.Close()
		delete(s.conns, name)
	}
}

// read reads until the sentinel's reply (untilSentinel) or until the server
// closes the connection, whichever the step expects. It returns the reply
// before the sentinel and "" if the sentinel came, else the reply so far and
// markClosed or markTimeout.
func (s *session) read(cc *clientConn, untilSentinel bool) ([]byte, string) {
	cc.c.SetReadDeadline(time.Now().Add(readTimeout))
	chunk := make([]byte, 64<<10)
	for {
		if untilSentinel {
			if i, ok := findSentinel(cc.buf); ok {
				reply := bytes.Clone(cc.buf[:i])
				cc.buf = cc.buf[i+len(sentinelReply):]
				return reply, ""
			}
		}
		n, err := cc.c.Read(chunk)
		cc.buf = append(cc.buf, chunk[:n]...)
		if err != nil {
			reply := cc.buf
			cc.buf = nil
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return reply, markTimeout
			}
			return reply, markClosed // io.EOF, or a reset after the server closed
		}
	}
}

// findSentinel returns the offset of the sentinel's reply in b once b holds
// complete replies followed by it. It walks the replies line by line and steps
// over VALUE data blocks, so data that looks like "MN\r\n" is not mistaken
// for it.
func findSentinel(b []byte) (int, bool) {
	for i := 0; i < len(b); {
		nl := bytes.IndexByte(b[i:], '\n')
		if nl < 0 {
			return 0, false
		}
		line := b[i : i+nl+1]
		if string(line) == sentinelReply {
			return i, true
		}
		i += len(line)
		if _, n, ok := parseValueLine(line); ok {
			i += n + 2
		}
	}
	return 0, false
}

// parseValueLine parses "VALUE key flags bytes [cas]\r\n".
func parseValueLine(line []byte) (fields []string, n int, ok bool) {
	l, found := bytes.CutSuffix(line, []byte("\r\n"))
	if !found || !bytes.HasPrefix(l, []byte("VALUE ")) {
		return nil, 0, false
	}
	fields = strings.Split(string(l), " ")
	if len(fields) != 4 && len(fields) != 5 {
		return nil, 0, false
	}
	n, err := strconv.Atoi(fields[3])
	if err != nil || n < 0 {
		return nil, 0, false
	}
	return fields, n, true
}

// --- normalization --------------------------------------------------------

// statFields lists the "stats" and "stats settings" fields that are compared;
// all others are dropped (memcached has ~90 that our node does not). true
// marks a value that legitimately differs between servers or runs and is
// shown as <v>; the others are compared exactly, which is sound because every
// case runs on freshly started servers that saw the same commands.
var statFields = map[string]bool{
	// stats
	"pid": true, "uptime": true, "time": true, "version": true,
	"curr_connections": true, "total_connections": true, // memcachedtest's readiness probe counts; closes are asynchronous
	"rejected_connections": false,
	"cmd_get":              false, "cmd_set": false, "cmd_flush": false, "cmd_touch": false,
	"get_hits": false, "get_misses": false, "get_expired": false,
	"delete_hits": false, "delete_misses": false,
	"incr_hits": false, "incr_misses": false, "decr_hits": false, "decr_misses": false,
	"cas_hits": false, "cas_misses": false, "cas_badval": false,
	"touch_hits": false, "touch_misses": false,
	"curr_items": false, "total_items": false, "evictions": false, // "evictions" is also a setting ("on")
	"bytes":          true, // per-item overhead is implementation-specific
	"limit_maxbytes": false,
	"bytes_read":     true, "bytes_written": true, "threads": true,
	// stats settings
	"maxbytes": false, "maxconns": false, "tcpport": true, "verbosity": false,
	"cas_enabled": false, "item_size_max": false, "num_threads": true,
}

// normalize splits a reply into lines and data blocks and rewrites what may
// legitimately differ: cas uniques become <cas1>, <cas2>... in order of first
// appearance (so equal uniques stay equal), the version becomes <v>, and STAT
// lines are filtered by statFields and sorted within their block.
func (s *session) normalize(reply []byte) []string {
	var out, stats []string
	flushStats := func() {
		slices.Sort(stats)
		out = append(out, stats...)
		stats = nil
	}
	for len(reply) > 0 {
		nl := bytes.IndexByte(reply, '\n')
		if nl < 0 {
			flushStats()
			out = append(out, render(reply))
			break
		}
		line := reply[:nl+1]
		reply = reply[nl+1:]
		if name, _, ok := cutStat(line); ok {
			if volatile, keep := statFields[name]; keep {
				if volatile {
					line = []byte("STAT " + name + " <v>\r\n")
				}
				stats = append(stats, render(line))
			}
			continue
		}
		flushStats()
		if fields, n, ok := parseValueLine(line); ok {
			if len(fields) == 5 {
				s.lastCas[fields[1]] = fields[4]
				fields[4] = s.label(fields[4])
				line = []byte(strings.Join(fields, " ") + "\r\n")
			}
			out = append(out, render(line))
			data := reply[:min(n+2, len(reply))]
			reply = reply[len(data):]
			out = append(out, render(data))
			continue
		}
		if bytes.HasPrefix(line, []byte("VERSION ")) && bytes.HasSuffix(line, []byte("\r\n")) {
			line = []byte("VERSION <v>\r\n")
		}
		out = append(out, render(line))
	}
	flushStats()
	return out
}

func cutStat(line []byte) (name, value string, ok bool) {
	l, found := bytes.CutSuffix(line, []byte("\r\n"))
	if !found || !bytes.HasPrefix(l, []byte("STAT ")) {
		return "", "", false
	}
	name, value, _ = strings.Cut(string(l[len("STAT "):]), " ")
	return name, value, true
}

func (s *session) label(cas string) string {
	l, ok := s.labels[cas]
	if !ok {
		l = fmt.Sprintf("<cas%d>", len(s.labels)+1)
		s.labels[cas] = l
	}
	return l
}

// render escapes b for a transcript: printable ASCII stays, \r \n \t \\ \{
// are escaped, other bytes become \xHH, runs of 16 or more equal bytes become
// {c*N}, and a rendering longer than 300 characters keeps its head and tail
// around its length and SHA-256 (still exact for comparison).
func render(b []byte) string {
	var out strings.Builder
	for i := 0; i < len(b); {
		j := i
		for j < len(b) && b[j] == b[i] {
			j++
		}
		if j-i >= 16 {
			fmt.Fprintf(&out, "{%s*%d}", escapeByte(b[i]), j-i)
			i = j
			continue
		}
		out.WriteString(escapeByte(b[i]))
		i++
	}
	r := out.String()
	if len(r) > 300 {
		r = fmt.Sprintf("%s…[%d bytes, sha256 %x]…%s", r[:120], len(b), sha256.Sum256(b), r[len(r)-60:])
	}
	return r
}

func escapeByte(c byte) string {
	switch {
	case c == '\r':
		return `\r`
	case c == '\n':
		return `\n`
	case c == '\t':
		return `\t`
	case c == '\\' || c == '{':
		return `\` + string(c)
	case c >= 0x20 && c < 0x7f:
		return string(c)
	default:
		return fmt.Sprintf(`\x%02x`, c)
	}
}

// --- reporting and golden files --------------------------------------------

// sideBySide lays two transcripts out in columns, step by step. A step whose
// replies agree is shown by its first line only.
func sideBySide(left, right transcript, leftName, rightName string) string {
	const width = 64
	clip := func(s string) string {
		if len(s) > width {
			return s[:width-1] + "…"
		}
		return s
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  %-*s | %s\n", width, leftName, rightName)
	var firstL, firstR string
	for i := range max(len(left), len(right)) {
		var l, r []string
		if i < len(left) {
			l = left[i]
		}
		if i < len(right) {
			r = right[i]
		}
		if slices.Equal(l, r) {
			fmt.Fprintf(&b, "  %-*s | %s\n", width, clip(l[0]), clip(r[0]))
			continue
		}
		for j := range max(len(l), len(r)) {
			var x, y string
			if j < len(l) {
				x = l[j]
			}
			if j < len(r) {
				y = r[j]
			}
			mark := " "
			if x != y {
				mark = "!"
				if firstL == "" && firstR == "" {
					firstL, firstR = x, y
				}
			}
			fmt.Fprintf(&b, "%s %-*s | %s\n", mark, width, clip(x), clip(y))
		}
	}
	fmt.Fprintf(&b, "first difference in full:\n  %s: %s\n  %s: %s\n", leftName, firstL, rightName, firstR)
	return b.String()
}

func goldenPath(c *corpusCase) string {
	return filepath.Join(goldenDir, c.file, c.name+".txt")
}

// readGolden parses a golden file back into step blocks: every line that is
// not a recv line starts a block.
func readGolden(path string) (tr transcript, version string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "# memcached "); ok && tr == nil {
			version, _, _ = strings.Cut(v, " ")
			continue
		}
		if strings.HasPrefix(line, recvPrefix) && len(tr) > 0 {
			tr[len(tr)-1] = append(tr[len(tr)-1], line)
			continue
		}
		tr = append(tr, []string{line})
	}
	return tr, version, sc.Err()
}
