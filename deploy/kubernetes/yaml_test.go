package kubernetes

// A reader for the subset of YAML the manifests here are written in, so the
// test needs nothing beyond the standard library (the house rule for
// deploy/...): documents separated by "---", block mappings and block
// sequences indented with spaces, plain, 'single' or "double" quoted
// scalars on one line, and # comments. Anchors, flow collections ({} and
// []), tags and multi-line scalars are refused rather than misread, so a
// manifest edited past this subset fails the test loudly.

import (
	"fmt"
	"strconv"
	"strings"
)

// A yline is one significant line: its indentation and its text without
// the indentation and any comment.
type yline struct {
	no     int // 1-based, in the file
	indent int
	text   string
}

// parseDocs reads every non-empty document of src.
func parseDocs(src string) ([]map[string]any, error) {
	var docs []map[string]any
	var cur []yline
	flush := func() error {
		if len(cur) == 0 {
			return nil
		}
		p := &yparser{lines: cur}
		v, err := p.block(cur[0].indent)
		if err != nil {
			return err
		}
		if p.i != len(p.lines) {
			return p.errf("unexpected indentation")
		}
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("line %d: a document must be a mapping", cur[0].no)
		}
		docs = append(docs, m)
		cur = nil
		return nil
	}
	for i, raw := range strings.Split(src, "\n") {
		raw = strings.TrimRight(raw, " \r")
		if raw == "---" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		if strings.Contains(raw, "\t") {
			return nil, fmt.Errorf("line %d: a tab", i+1)
		}
		text := strings.TrimLeft(raw, " ")
		text = stripComment(text)
		if text == "" {
			continue
		}
		cur = append(cur, yline{no: i + 1, indent: len(raw) - len(strings.TrimLeft(raw, " ")), text: text})
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return docs, nil
}

// stripComment removes a # comment that is not inside quotes.
func stripComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || s[i-1] == ' '):
			return strings.TrimRight(s[:i], " ")
		}
	}
	return s
}

type yparser struct {
	lines []yline
	i     int
}

func (p *yparser) errf(format string, a ...any) error {
	no := 0
	if p.i < len(p.lines) {
		no = p.lines[p.i].no
	} else if len(p.lines) > 0 {
		no = p.lines[len(p.lines)-1].no
	}
	return fmt.Errorf("line %d: %s", no, fmt.Sprintf(format, a...))
}

// block reads the mapping or sequence whose lines are at indent.
func (p *yparser) block(indent int) (any, error) {
	if p.i >= len(p.lines) || p.lines[p.i].indent != indent {
		return nil, p.errf("expected a block at indentation %d", indent)
	}
	if isItem(p.lines[p.i].text) {
		return p.sequence(indent)
	}
	return p.mapping(indent)
}

func isItem(text string) bool { return text == "-" || strings.HasPrefix(text, "- ") }

func (p *yparser) sequence(indent int) ([]any, error) {
	var out []any
	for p.i < len(p.lines) && p.lines[p.i].indent == indent && isItem(p.lines[p.i].text) {
		l := p.lines[p.i]
		rest := strings.TrimLeft(strings.TrimPrefix(l.text, "-"), " ")
		switch {
		case rest == "":
			p.i++
			if p.i >= len(p.lines) || p.lines[p.i].indent <= indent {
				return nil, p.errf("empty sequence item")
			}
			v, err := p.block(p.lines[p.i].indent)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		case isKey(rest) || isItem(rest):
			// "- key: value" opens a mapping whose keys sit where "key" is.
			col := indent + (len(l.text) - len(rest))
			p.lines[p.i] = yline{no: l.no, indent: col, text: rest}
			v, err := p.block(col)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		default:
			s, err := scalar(rest)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", l.no, err)
			}
			out = append(out, s)
			p.i++
		}
	}
	return out, nil
}

// isKey reports whether text is "key:" or "key: value".
func isKey(text string) bool {
	k, _, ok := cutKey(text)
	return ok && k != ""
}

// cutKey splits "key: value" at its first ": " (or a final ":") outside
// quotes.
func cutKey(text string) (key, value string, ok bool) {
	if text[0] == '"' || text[0] == '\'' {
		end := strings.IndexByte(text[1:], text[0])
		if end < 0 {
			return "", "", false
		}
		rest := text[end+2:]
		if rest == ":" || strings.HasPrefix(rest, ": ") {
			return text[1 : end+1], strings.TrimSpace(rest[1:]), true
		}
		return "", "", false
	}
	if i := strings.Index(text, ": "); i >= 0 {
		return text[:i], strings.TrimSpace(text[i+2:]), true
	}
	if strings.HasSuffix(text, ":") {
		return text[:len(text)-1], "", true
	}
	return "", "", false
}

func (p *yparser) mapping(indent int) (map[string]any, error) {
	out := map[string]any{}
	for p.i < len(p.lines) && p.lines[p.i].indent == indent && !isItem(p.lines[p.i].text) {
		l := p.lines[p.i]
		key, value, ok := cutKey(l.text)
		if !ok {
			return nil, p.errf("expected key: value, got %q", l.text)
		}
		if _, dup := out[key]; dup {
			return nil, p.errf("duplicate key %q", key)
		}
		p.i++
		if value != "" {
			s, err := scalar(value)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", l.no, err)
			}
			out[key] = s
			continue
		}
		// A nested block: deeper, or a sequence at the key's own indentation.
		if p.i < len(p.lines) && (p.lines[p.i].indent > indent || p.lines[p.i].indent == indent && isItem(p.lines[p.i].text)) {
			v, err := p.block(p.lines[p.i].indent)
			if err != nil {
				return nil, err
			}
			out[key] = v
			continue
		}
		out[key] = ""
	}
	return out, nil
}

// scalar reads a one-line scalar as a string.
func scalar(s string) (string, error) {
	switch s[0] {
	case '"':
		return strconv.Unquote(s)
	case '\'':
		if len(s) < 2 || s[len(s)-1] != '\'' {
			return "", fmt.Errorf("unterminated quote in %q", s)
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	case '{', '[', '&', '*', '!', '|', '>':
		return "", fmt.Errorf("%q is outside the YAML subset this test reads", s)
	}
	return s, nil
}
