package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestScenarioFile checks bench/scenarios.json: it parses, every command
// line parses with its command's flags, and every plot reads a file some
// scenario writes.
func TestScenarioFile(t *testing.T) {
	sf, err := readSuite("../../bench/scenarios.json")
	if err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	for _, sc := range sf.Scenarios {
		written[sc.Stdout] = true
		args := expand(sc.Args, "bin", "results")
		for i, a := range args {
			if strings.HasPrefix(a, "results/") {
				written[strings.TrimPrefix(a, "results/")] = true
			}
			if a == "-json" && i+1 < len(args) && strings.HasPrefix(args[i+1], "results/") {
				written[strings.TrimPrefix(args[i+1], "results/")] = true
			}
		}
		var perr error
		switch args[0] {
		case "compare":
			_, perr = parseCompare(args[1:], new(strings.Builder))
		case "hotkeys":
			_, perr = parseHotkeysFlags(args[1:], new(strings.Builder))
		case "failover":
			_, perr = parseFailover(args[1:], new(strings.Builder))
		case "gencheck":
			_, perr = parseGencheck(args[1:], new(strings.Builder))
		default:
			t.Errorf("scenario %s runs %q, which this test does not know", sc.Name, args[0])
		}
		if perr != nil {
			t.Errorf("scenario %s: %v", sc.Name, perr)
		}
	}
	if len(sf.Plots) < 3 {
		t.Errorf("%d plots, want at least 3", len(sf.Plots))
	}
	for _, p := range sf.Plots {
		if !written[p.In] {
			t.Errorf("plot %s reads %s, which no scenario writes", p.Out, p.In)
		}
	}
}

func TestReadSuite_rejects(t *testing.T) {
	dir := t.TempDir()
	for _, bad := range []string{
		`{"scenarios": [{"name": "a", "args": ["run"], "stdout": "a.json"}, {"name": "a", "args": ["run"], "stdout": "b.json"}]}`,
		`{"scenarios": [{"name": "a", "args": [], "stdout": "a.json"}]}`,
		`{"scenarios": [{"name": "a", "args": ["run"], "stdout": "../a.json"}]}`,
		`{"scenarios": [{"name": "a", "args": ["suite"], "stdout": "a.json"}]}`,
		`{"scenarios": [], "plots": [{"in": "a.json", "kind": "pie", "out": "a.svg"}]}`,
		`{"scenarios": [], "unknown": 1}`,
	} {
		path := filepath.Join(dir, "s.json")
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readSuite(path); err == nil {
			t.Errorf("readSuite accepted %s", bad)
		}
	}
}

// TestSuite_runsAndPlots runs a one-scenario suite against the in-test
// server and checks the results, the records and the plot.
func TestSuite_runsAndPlots(t *testing.T) {
	t.Parallel()
	srv := startSlowServer(t, 0)
	dir := t.TempDir()
	results, img := filepath.Join(dir, "results"), filepath.Join(dir, "img")
	sf := suiteFile{
		Scenarios: []suiteScenario{{Name: "tiny", Stdout: "tiny.json", Args: []string{"run", "-servers", srv.addr(), "-conns", "1",
			"-keys", "10", "-warmup", "0", "-duration", "1200ms", "-quiet", "-json"}}},
		Plots: []suitePlot{{In: "tiny.json", Kind: "timeseries", Out: "tiny.svg"}, {In: "tiny.json", Kind: "cdf", Out: "tiny-cdf.svg"}},
	}
	b, _ := json.Marshal(sf)
	file := filepath.Join(dir, "s.json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runCLI(t, t.Context(), "suite", "-f", file, "-results", results, "-img", img)
	if err != nil {
		t.Fatalf("suite: %v\n%s\n%s", err, out, stderr)
	}
	for _, f := range []string{"results/tiny.json", "results/suite.json", "results/machine.json", "img/tiny.svg", "img/tiny-cdf.svg"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	var recs []suiteRecord
	b, _ = os.ReadFile(filepath.Join(results, "suite.json"))
	if err := json.Unmarshal(b, &recs); err != nil || len(recs) != 1 || recs[0].Error != "" || recs[0].LoadBefore == "" || recs[0].Seconds < 1 {
		t.Errorf("suite.json %s (%v)", b, err)
	}
	var m machineFacts
	b, _ = os.ReadFile(filepath.Join(results, "machine.json"))
	if err := json.Unmarshal(b, &m); err != nil || m.Cores == 0 || m.Go == "" {
		t.Errorf("machine.json %s (%v)", b, err)
	}
	svg, _ := os.ReadFile(filepath.Join(img, "tiny.svg"))
	if st := parseSVG(t, string(svg)); st.lines != 3 || !slices.Contains(st.points, 1) {
		t.Errorf("timeseries of a 1.2 s run: %d lines with %v points, want 3 lines of 1 point", st.lines, st.points)
	}
	// -plots-only redraws without running, and fails on a missing input.
	if err := os.Remove(filepath.Join(img, "tiny.svg")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, t.Context(), "suite", "-f", file, "-results", results, "-img", img, "-plots-only"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(img, "tiny.svg")); err != nil {
		t.Error(err)
	}
	if _, _, err := runCLI(t, t.Context(), "suite", "-f", file, "-results", dir, "-img", img, "-plots-only"); err == nil {
		t.Error("plots from a directory without results: no error")
	}
	if _, _, err := runCLI(t, t.Context(), "suite", "-f", file, "-only", "nope"); err == nil {
		t.Error("-only of an unknown scenario: no error")
	}
}

func TestGencheckParsers(t *testing.T) {
	gets, secs, err := parseMemcslap("Time to start 10 threads: 0.003 seconds.\n----\nTime to get           20000 keys by   10 threads:     0.421 seconds.\n----\nTime total: 0.562 seconds.\n")
	if err != nil || gets != 20000 || secs != 0.421 {
		t.Errorf("memcslap: %d gets in %v s, %v", gets, secs, err)
	}
	ops, secs, err := parseMemaslap("cmd_get: 186929\n\nRun time: 10.0s Ops: 1 TPS: 1 Net_rate: 1M/s\nRun time: 3.0s Ops: 207709 TPS: 69209 Net_rate: 16.4M/s\n")
	if err != nil || ops != 207709 || secs != 3.0 {
		t.Errorf("memaslap: %d ops in %v s, %v", ops, secs, err)
	}
	for _, bad := range []string{"", "Time to get 1 keys by 1 threads: 0 seconds."} {
		if _, _, err := parseMemcslap(bad); err == nil {
			t.Errorf("memcslap parsed %q", bad)
		}
	}
	if _, _, err := parseMemaslap("nothing"); err == nil {
		t.Error("memaslap parsed nothing")
	}
}
