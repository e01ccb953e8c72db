package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A Case is one scripted exchange of the corpus: steps on one or more
// connections, played against a freshly started server.
type Case struct {
	File  string // corpus file name without .txt
	Name  string // the case's name, unique across the corpus
	Line  int    // line of the case's "=== name" header in its file
	Steps []Step
}

// Sleeps reports whether the case has a sleep step, so that it takes at
// least as long as its sleeps.
func (c *Case) Sleeps() bool {
	return slices.ContainsFunc(c.Steps, func(s Step) bool { return s.Verb == "sleep" })
}

// SleepersFirst stably moves the cases that sleep to the front, so that the
// parallel test slots they hold while sleeping overlap with the many short
// cases.
func SleepersFirst(cases []*Case) {
	slices.SortStableFunc(cases, func(x, y *Case) int { return cmpBool(y.Sleeps(), x.Sleeps()) })
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

// A Step is one line of a case.
type Step struct {
	Line int           // line in the corpus file
	Conn string        // connection name, "a" unless the line starts with @name
	Verb string        // send, partial, eof, close, sleep
	Arg  string        // the bytes to send, as written (escapes unexpanded)
	Dur  time.Duration // how long a sleep step waits
}

var caseName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// LoadCases parses every *.txt corpus file in dir, in file name order, and
// returns their cases in order. It fails on a syntax error, on a case name
// used twice across the files, and when dir holds no corpus file.
func LoadCases(dir string) ([]*Case, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no corpus files in %s", dir)
	}
	var cases []*Case
	seen := make(map[string]bool)
	for _, f := range files {
		cs, err := parseCorpus(f)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if seen[c.Name] {
				return nil, fmt.Errorf("%s:%d: duplicate case name %q", f, c.Line, c.Name)
			}
			seen[c.Name] = true
		}
		cases = append(cases, cs...)
	}
	return cases, nil
}

// parseCorpus parses one corpus file.
func parseCorpus(path string) ([]*Case, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	file := strings.TrimSuffix(filepath.Base(path), ".txt")
	var cases []*Case
	var cur *Case
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
			cur = &Case{File: file, Name: name, Line: n}
			cases = append(cases, cur)
			continue
		}
		if cur == nil {
			return nil, fail("step before the first \"=== name\" line")
		}
		st := Step{Line: n, Conn: "a"}
		if rest, ok := strings.CutPrefix(line, "@"); ok {
			name, after, found := strings.Cut(rest, " ")
			if !found || name == "" {
				return nil, fail("want \"@conn verb ...\"")
			}
			st.Conn, line = name, after
		}
		st.Verb, st.Arg, _ = strings.Cut(line, " ")
		switch st.Verb {
		case "send", "partial":
			if st.Arg == "" {
				return nil, fail("%s needs bytes", st.Verb)
			}
			if _, err := expand(st.Arg, nil); err != nil {
				return nil, fail("%v", err)
			}
		case "eof", "close":
			if st.Arg != "" {
				return nil, fail("%s takes no argument", st.Verb)
			}
		case "sleep":
			if st.Dur, err = time.ParseDuration(st.Arg); err != nil {
				return nil, fail("%v", err)
			}
		default:
			return nil, fail("unknown verb %q (want send, partial, eof, close, sleep)", st.Verb)
		}
		cur.Steps = append(cur.Steps, st)
	}
	for _, c := range cases {
		if len(c.Steps) == 0 {
			return nil, fmt.Errorf("%s:%d: case %s has no steps", path, c.Line, c.Name)
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
