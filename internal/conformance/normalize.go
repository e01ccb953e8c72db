package conformance

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
)

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
