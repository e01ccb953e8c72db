package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
)

// All output goes through this file: tables for people (aligned columns,
// rows in a fixed order, no timestamps), JSON for scripts.

// A table is rows of cells, written with columns aligned by two spaces.
// Cells must not be empty or hold two spaces in a row ("-" stands for
// nothing), so that a table can be read back by splitting on runs of
// spaces.
type table struct{ rows [][]string }

func newTable(header ...string) *table { return &table{rows: [][]string{header}} }

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// blank adds an empty line, which ends the column alignment above it.
func (t *table) blank() { t.rows = append(t.rows, nil) }

// write writes the table to w, without trailing spaces.
func (t *table) write(w io.Writer) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	var out strings.Builder
	for line := range strings.Lines(buf.String()) {
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// writeJSON writes v indented, or on one line when compact (a stream of
// objects, as hot -watch writes).
func writeJSON(w io.Writer, v any, compact bool) error {
	enc := json.NewEncoder(w)
	if !compact {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}

// percent is part/total in percent, rounded to two decimals for JSON.
func percent(part, total int) float64 {
	if total == 0 {
		return 0
	}
	return math.Round(10000*float64(part)/float64(total)) / 100
}

// pct formats part/total as "33.3%".
func pct(part, total int) string {
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(total))
}

// bar is a bar of up to width '#': v of top.
func bar(v, top, width int) string {
	if top <= 0 || v <= 0 {
		return "-"
	}
	n := int(math.Round(float64(width) * float64(v) / float64(top)))
	return strings.Repeat("#", max(n, 1))
}

// cell makes s fit in a table cell.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Join(strings.Fields(s), " ")
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// clearScreen moves the cursor home and clears the terminal (ANSI).
const clearScreen = "\x1b[H\x1b[2J"
