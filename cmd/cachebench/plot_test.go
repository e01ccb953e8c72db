package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// svgStats parses an SVG as XML, failing the test if it is not well
// formed, and counts the data elements by class and the points of every
// polyline.
type svgStats struct {
	bars, lines, markers int
	points               []int // per polyline
	texts                []string
}

func parseSVG(t *testing.T, svg string) svgStats {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	var st svgStats
	root := ""
	inText := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Local
				if e.Name.Space != "http://www.w3.org/2000/svg" {
					t.Fatalf("root element in namespace %q", e.Name.Space)
				}
			}
			attr := map[string]string{}
			for _, a := range e.Attr {
				attr[a.Name.Local] = a.Value
			}
			switch attr["class"] {
			case "bar":
				st.bars++
			case "line":
				st.lines++
				st.points = append(st.points, len(strings.Fields(attr["points"])))
			case "marker":
				st.markers++
			}
			inText = e.Name.Local == "text"
		case xml.CharData:
			if inText {
				st.texts = append(st.texts, string(e))
			}
		case xml.EndElement:
			inText = false
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return st
}

// compareFixture is compare JSON: 2 depths, 3 targets, 2 rounds each.
func compareFixture() []byte {
	var depths []depthSummary
	for _, p := range []int{1, 16} {
		d := depthSummary{Pipeline: p}
		for i, name := range []string{"memcached", "cached", "a <&> b"} {
			base := float64(10_000 * (i + 1) * p)
			var h histogram
			for v := int64(1); v <= 1000; v++ {
				h.record(v * 1000 * int64(i+1))
			}
			d.Targets = append(d.Targets, targetSummary{
				Name: name, OpsPerSec: spread{Median: base, Min: base * 0.9, Max: base * 1.1},
				Percentiles: percentiles(&h),
				Nodes:       []nodeLoad{{Name: "node1", Share: 0.5}, {Name: "node2", Share: 0.3}, {Name: "node3", Share: 0.2}},
			})
		}
		depths = append(depths, d)
	}
	b, _ := json.Marshal(struct {
		Depths []depthSummary `json:"depths"`
	}{depths})
	return b
}

func TestPlot_compare(t *testing.T) {
	data := compareFixture()
	st := parseSVG(t, mustPlot(t, data, "throughput"))
	if st.bars != 6 || st.lines != 0 {
		t.Errorf("throughput: %d bars, %d lines; want 6 bars (2 depths x 3 targets)", st.bars, st.lines)
	}
	if !contains(st.texts, "pipeline 16") || !contains(st.texts, "a <&> b") || !contains(st.texts, "160.0k") {
		t.Errorf("throughput labels %q lack the depth, an escaped name or a value", st.texts)
	}
	st = parseSVG(t, mustPlot(t, data, "cdf"))
	if st.lines != 6 {
		t.Fatalf("cdf: %d lines, want 6", st.lines)
	}
	for _, n := range st.points {
		if n != len(cdfQuantiles) {
			t.Errorf("cdf line with %d points, want %d", n, len(cdfQuantiles))
		}
	}
	if !contains(st.texts, "1 ms") || !contains(st.texts, "100%") {
		t.Errorf("cdf axis labels %q", st.texts)
	}
	st = parseSVG(t, mustPlot(t, data, "nodes"))
	if st.bars != 9 {
		t.Errorf("nodes: %d bars, want 9 (3 nodes x 3 targets)", st.bars)
	}
	if _, err := renderPlot(data, "timeseries", ""); err == nil {
		t.Error("timeseries of a compare result: no error")
	}
}

func TestPlot_failoverSeries(t *testing.T) {
	rep := failoverReport{KillAt: 5, Killed: "node2", Result: &result{Pipeline: 1}}
	for i := range 10 {
		errs := int64(0)
		if i >= 5 && i < 8 {
			errs = 100
		}
		rep.Result.Series = append(rep.Result.Series, second{T: float64(i + 1), Seconds: 1, Ops: 1000, OpsPerSec: 1000, Errors: errs, Gets: 900, Hits: 850})
	}
	rep.Result.Nodes = []nodeLoad{{Name: "node1", Share: 0.5}, {Name: "node2", Error: "no stats"}, {Name: "node3", Share: 0.5}}
	rep.analyze()
	if rep.RecoveredAt != 8 || rep.Recovery != 3 || rep.ErrorsAfter != 300 || rep.Before != 1000 {
		t.Fatalf("analyze: recovered at %v after %v s, %d errors, before %v", rep.RecoveredAt, rep.Recovery, rep.ErrorsAfter, rep.Before)
	}
	data, _ := json.Marshal(rep)
	st := parseSVG(t, mustPlot(t, data, "timeseries"))
	if st.lines != 3 || st.markers != 6 {
		t.Fatalf("timeseries: %d lines, %d markers; want 3 panels, a kill and a recovery marker in each", st.lines, st.markers)
	}
	for _, n := range st.points {
		if n != 10 {
			t.Errorf("a series line has %d points, want 10", n)
		}
	}
	if !contains(st.texts, "node2 killed") || !contains(st.texts, "recovered") {
		t.Errorf("labels %q lack the markers", st.texts)
	}
	st = parseSVG(t, mustPlot(t, data, "nodes"))
	if st.bars != 2 || !contains(st.texts, "node2 (no stats)") {
		t.Errorf("nodes: %d bars, labels %q; want 2 bars and node2 marked without stats", st.bars, st.texts)
	}
}

func TestPlot_hotkeys(t *testing.T) {
	rep := hotkeysReport{Phases: []*hotkeysPhase{
		{Name: "off", OpsPerSec: 20_000, Nodes: []nodeLoad{{Name: "node1", Share: 0.25}, {Name: "node2", Share: 0.42}, {Name: "node3", Share: 0.33}}},
		{Name: "on", OpsPerSec: 24_000, Nodes: []nodeLoad{{Name: "node1", Share: 0.36}, {Name: "node2", Share: 0.35}, {Name: "node3", Share: 0.29}}},
	}}
	data, _ := json.Marshal(rep)
	if st := parseSVG(t, mustPlot(t, data, "nodes")); st.bars != 6 || !contains(st.texts, "replication on") {
		t.Errorf("nodes: %d bars, labels %q", st.bars, st.texts)
	}
	if st := parseSVG(t, mustPlot(t, data, "throughput")); st.bars != 2 {
		t.Errorf("throughput: %d bars, want 2", st.bars)
	}
	if _, err := renderPlot(data, "cdf", ""); err == nil {
		t.Error("cdf of hotkeys: no error")
	}
}

func TestPlot_cli(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "c.json"), filepath.Join(dir, "c.svg")
	if err := os.WriteFile(in, compareFixture(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runCLI(t, t.Context(), "plot", "-in", in, "-kind", "throughput", "-o", out, "-title", "T"); err != nil {
		t.Fatalf("plot: %v\n%s", err, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if st := parseSVG(t, string(b)); st.bars != 6 || !contains(st.texts, "T") {
		t.Errorf("%d bars, texts %q", st.bars, st.texts)
	}
	for _, args := range [][]string{{"plot"}, {"plot", "-in", in, "-kind", "pie"}, {"plot", "-in", filepath.Join(dir, "none.json")}} {
		if _, _, err := runCLI(t, t.Context(), args...); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	if err := os.WriteFile(in, []byte(`{"x": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, t.Context(), "plot", "-in", in); err == nil {
		t.Error("plot of a JSON that is no result: no error")
	}
}

func mustPlot(t *testing.T, data []byte, kind string) string {
	t.Helper()
	svg, err := renderPlot(data, kind, "")
	if err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
	return svg
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		first  float64
		last   float64
	}{{0, 97, 0, 100}, {0, 1, 0, 1}, {0, 0, 0, 1}, {0, 312_000, 0, 400_000}, {0, 1.05, 0, 1.25}} {
		ts := niceTicks(tc.lo, tc.hi, 5)
		if ts[0] != tc.first || ts[len(ts)-1] != tc.last || len(ts) < 3 || len(ts) > 12 {
			t.Errorf("niceTicks(%v, %v) = %v", tc.lo, tc.hi, ts)
		}
	}
}
