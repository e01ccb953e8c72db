package ring

import (
	"encoding"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The text form, one header line and one line per member in Name order,
// each ending in "\n" (ParseText also accepts "\r\n"):
//
//	ring id=<Identity> members=<n> partitions=<P> replication=<RF> load=<Load> hash=xxhash64
//	member <name> <addr> <admin> <partitions owned>
//
// An empty address is written "-". Numbers are in their shortest decimal
// form, so a Ring has exactly one text form.
const (
	emptyField  = "-"
	hashDefault = "xxhash64"
	hashCustom  = "custom" // Config.Hasher was set; ParseText refuses it
)

var (
	_ encoding.TextAppender  = (*Ring)(nil)
	_ encoding.TextMarshaler = (*Ring)(nil)
	_ fmt.Stringer           = (*Ring)(nil)
)

// field returns the text form of an address.
func field(s string) string {
	if s == "" {
		return emptyField
	}
	return s
}

// unfield is the inverse of field.
func unfield(s string) string {
	if s == emptyField {
		return ""
	}
	return s
}

// appendParams appends the Config part of the header.
func (r *Ring) appendParams(b []byte) []byte {
	b = strconv.AppendInt(append(b, "partitions="...), int64(r.cfg.PartitionCount), 10)
	b = strconv.AppendInt(append(b, " replication="...), int64(r.cfg.ReplicationFactor), 10)
	b = strconv.AppendFloat(append(b, " load="...), r.cfg.Load, 'g', -1, 64)
	hash := hashDefault
	if r.cfg.Hasher != nil {
		hash = hashCustom
	}
	return append(append(b, " hash="...), hash...)
}

// AppendText appends the text form of r (see MarshalText) to b. It never
// fails.
func (r *Ring) AppendText(b []byte) ([]byte, error) {
	b = append(append(b, "ring id="...), r.identity...)
	b = strconv.AppendInt(append(b, " members="...), int64(len(r.members)), 10)
	b = append(r.appendParams(append(b, ' ')), '\n')
	for i, m := range r.members {
		b = append(append(b, "member "...), m.Name...)
		b = append(append(b, ' '), field(m.Addr)...)
		b = append(append(b, ' '), field(m.Admin)...)
		b = strconv.AppendInt(append(b, ' '), int64(r.counts[i]), 10)
		b = append(b, '\n')
	}
	return b, nil
}

// MarshalText returns the text form of r: a header line with the identity,
// member count and Config, then one line per member in Name order with its
// name, memcache address, admin address and number of partitions. Rings with
// the same members and Config have the same text. It never fails.
func (r *Ring) MarshalText() ([]byte, error) { return r.AppendText(nil) }

// String returns the text form of r; see MarshalText.
func (r *Ring) String() string {
	b, _ := r.AppendText(nil)
	return string(b)
}

// ParseText rebuilds a Ring from its text form (MarshalText). It recomputes
// the placement with the Config named in the header and fails if the
// identity or any member's partition count differs from the text, so a peer
// that places partitions differently is detected rather than followed. The
// text must be canonical, exactly as MarshalText writes it, except that lines
// may end in "\r\n". A Ring with a custom Hasher cannot be parsed.
//
// NB: there is no UnmarshalText: it would have to modify a Ring in place,
// and Rings are never modified once built.
func ParseText(text []byte) (*Ring, error) {
	lines, err := splitLines(string(text))
	if err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, errors.New("ring: empty text")
	}
	h, err := parseHeader(lines[0])
	if err != nil {
		return nil, err
	}
	if h.members != len(lines)-1 {
		return nil, fmt.Errorf("ring: header says %d members, text has %d member lines", h.members, len(lines)-1)
	}
	ms := make([]Member, h.members)
	counts := make([]int, h.members)
	for i, line := range lines[1:] {
		if ms[i], counts[i], err = parseMember(line); err != nil {
			return nil, fmt.Errorf("ring: line %d: %w", i+2, err)
		}
		if i > 0 && ms[i-1].Name >= ms[i].Name {
			return nil, fmt.Errorf("ring: line %d: member %q is not after %q (members must be in Name order)", i+2, ms[i].Name, ms[i-1].Name)
		}
	}
	r, err := New(ms, h.cfg)
	if err != nil {
		return nil, err
	}
	for i, c := range counts {
		if int(r.counts[i]) != c {
			return nil, fmt.Errorf("ring: member %q owns %d partitions here but %d in the text: the sender places partitions differently",
				ms[i].Name, r.counts[i], c)
		}
	}
	if r.identity != h.id {
		return nil, fmt.Errorf("ring: identity is %s here but %s in the text: the sender places partitions differently", r.identity, h.id)
	}
	return r, nil
}

// splitLines splits s into lines that each ended in "\n" or "\r\n".
func splitLines(s string) ([]string, error) {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return nil, errors.New("ring: text does not end in a newline")
	}
	lines := strings.SplitAfter(s, "\n")
	lines = lines[:len(lines)-1] // the empty string after the last "\n"
	for i, l := range lines {
		l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
		if strings.ContainsAny(l, "\r") {
			return nil, fmt.Errorf("ring: line %d contains a carriage return", i+1)
		}
		lines[i] = l
	}
	return lines, nil
}

// header is a parsed header line.
type header struct {
	id      string
	members int
	cfg     Config
}

// parseHeader parses the first line of the text form.
func parseHeader(line string) (header, error) {
	var h header
	f := strings.Split(line, " ")
	if len(f) != 7 || f[0] != "ring" {
		return h, fmt.Errorf("ring: header %.80q is not \"ring id=... members=... partitions=... replication=... load=... hash=...\"", line)
	}
	var ok [6]bool
	h.id, ok[0] = value(f[1], "id")
	h.members, ok[1] = intValue(f[2], "members")
	h.cfg.PartitionCount, ok[2] = intValue(f[3], "partitions")
	h.cfg.ReplicationFactor, ok[3] = intValue(f[4], "replication")
	var load string
	load, ok[4] = value(f[5], "load")
	hash, ok5 := value(f[6], "hash")
	ok[5] = ok5 && hash == hashDefault
	var err error
	if h.cfg.Load, err = strconv.ParseFloat(load, 64); err != nil || strconv.FormatFloat(h.cfg.Load, 'g', -1, 64) != load {
		ok[4] = false
	}
	for i, good := range ok {
		if !good {
			return h, fmt.Errorf("ring: header field %.40q is malformed or unsupported", f[i+1])
		}
	}
	// A zero field would be defaulted by New and so not match its text.
	if h.members < 0 || h.cfg.PartitionCount == 0 || h.cfg.ReplicationFactor == 0 || h.cfg.Load == 0 {
		return h, fmt.Errorf("ring: header %.80q has a zero or negative field", line)
	}
	return h, nil
}

// parseMember parses a member line.
func parseMember(line string) (Member, int, error) {
	f := strings.Split(line, " ")
	if len(f) != 5 || f[0] != "member" || slices.Contains(f, "") {
		return Member{}, 0, fmt.Errorf("%.80q is not \"member <name> <addr> <admin> <partitions>\"", line)
	}
	n, ok := canonicalInt(f[4])
	if !ok || n < 0 {
		return Member{}, 0, fmt.Errorf("partition count %.20q is not a number", f[4])
	}
	return Member{Name: f[1], Addr: unfield(f[2]), Admin: unfield(f[3])}, n, nil
}

// value returns the value of a "key=value" field.
func value(f, key string) (string, bool) {
	return strings.CutPrefix(f, key+"=")
}

// intValue returns the canonical integer value of a "key=value" field.
func intValue(f, key string) (int, bool) {
	v, ok := value(f, key)
	if !ok {
		return 0, false
	}
	return canonicalInt(v)
}

// canonicalInt parses s if it is an integer in shortest form ("7", not "07"
// or "+7").
func canonicalInt(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && strconv.Itoa(n) == s
}
