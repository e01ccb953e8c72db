package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// readTimeout bounds every read of a step. It is only reached when a
	// server misbehaves (or a corpus step swallows its sentinel), so it can be
	// generous for slow, shared machines.
	readTimeout = 10 * time.Second

	// sentinel is sent after every "send" step: memcached's meta no-op, which
	// answers "MN\r\n" once everything before it has been answered. Reading up
	// to its reply captures "no reply" exactly, without timing guesses.
	sentinel      = "mn\r\n"
	sentinelReply = "MN\r\n"
)

// A Transcript is a case's normalized exchange, one block per step: the
// step line, then the "recv" lines of its reply.
type Transcript [][]string

// String renders the transcript as the text of a golden file (without its
// header): every line followed by a newline. Two transcripts are equal when
// their Strings are.
func (tr Transcript) String() string {
	var b strings.Builder
	for _, block := range tr {
		for _, l := range block {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// TimedOut returns the indexes of the steps whose read hit the deadline
// without an answer to the sentinel or a close.
func (tr Transcript) TimedOut() []int {
	var steps []int
	for i, block := range tr {
		if slices.Contains(block, recvPrefix+markTimeout) {
			steps = append(steps, i)
		}
	}
	return steps
}

// DropStats returns a copy of tr without the reply lines "STAT name ..." of
// the given stat names.
func (tr Transcript) DropStats(names ...string) Transcript {
	out := make(Transcript, 0, len(tr))
	for _, block := range tr {
		block = slices.DeleteFunc(slices.Clone(block), func(l string) bool {
			for _, f := range names {
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

// Play runs c's steps against the server at addr, on connections of its own
// (dialed on first use, closed when it returns), and returns the normalized
// transcript. Failures to dial, to write or to read are part of the
// transcript, as are the server's replies, so Play itself cannot fail.
func Play(addr string, c *Case) Transcript {
	s := &session{addr: addr, conns: map[string]*clientConn{}, lastCas: map[string]string{}, labels: map[string]string{}}
	defer func() {
		for _, cc := range s.conns {
			cc.c.Close()
		}
	}()
	tr := make(Transcript, 0, len(c.Steps))
	for _, st := range c.Steps {
		tr = append(tr, s.run(st))
	}
	return tr
}

func (s *session) run(st Step) []string {
	head := st.Verb
	if st.Arg != "" {
		head = fmt.Sprintf("%-7s %s", st.Verb, st.Arg)
	}
	if st.Conn != "a" {
		head = "@" + st.Conn + " " + head
	}
	block := []string{head}
	recv := func(lines ...string) []string {
		for _, l := range lines {
			block = append(block, recvPrefix+l)
		}
		return block
	}

	switch st.Verb {
	case "sleep":
		time.Sleep(st.Dur)
		return block
	case "close":
		if cc := s.conns[st.Conn]; cc != nil {
			cc.c.Close()
			delete(s.conns, st.Conn)
		}
		return block
	}

	cc, err := s.conn(st.Conn)
	if err != nil {
		return recv("<dial: " + err.Error() + ">")
	}
	if st.Verb == "send" || st.Verb == "partial" {
		data, err := expand(st.Arg, s)
		if err != nil {
			return recv("<harness: " + err.Error() + ">")
		}
		if st.Verb == "send" {
			data = append(data, sentinel...) // one write, so the server reads them together
		}
		cc.c.SetWriteDeadline(time.Now().Add(readTimeout))
		if _, err := cc.c.Write(data); err != nil {
			s.drop(st.Conn)
			return recv(markClosed)
		}
		if st.Verb == "partial" {
			return block
		}
	}

	reply, end := s.read(cc, st.Verb == "send")
	if end != "" {
		s.drop(st.Conn)
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
