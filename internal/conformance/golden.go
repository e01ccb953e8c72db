package conformance

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// SideBySide lays two transcripts out in columns headed leftName and
// rightName, step by step, for a test failure. A step whose replies agree is
// shown by its first line only; a line that differs is marked "!", and the
// first difference is repeated in full at the end.
func SideBySide(left, right Transcript, leftName, rightName string) string {
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

// GoldenPath returns the golden transcript file of c under dir:
// dir/FILE/NAME.txt.
func GoldenPath(dir string, c *Case) string {
	return filepath.Join(dir, c.File, c.Name+".txt")
}

const goldenHeader = "# memcached %s normalized transcript, written by: go test ./node -run TestConformance -conformance.golden\n"

// WriteGolden writes tr as a golden transcript file at path, creating its
// directory, under a header naming the memcached version that produced it.
func WriteGolden(path, version string, tr Transcript) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(fmt.Sprintf(goldenHeader, version)+tr.String()), 0o644)
}

// ReadGolden parses a golden file written by WriteGolden back into a
// transcript (every line that is not a recv line starts a step block) and
// returns the memcached version of its header.
func ReadGolden(path string) (tr Transcript, version string, err error) {
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
