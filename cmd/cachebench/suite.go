package main

// The suite command: runs the scenarios of a file (bench/scenarios.json)
// in one process, writes each one's output into a results directory with
// the machine's facts and load, and renders the plots the file lists.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// suiteFile is the scenario file.
type suiteFile struct {
	Comment   string          `json:"comment,omitempty"`
	Scenarios []suiteScenario `json:"scenarios"`
	Plots     []suitePlot     `json:"plots"`
}

// suiteScenario is one cachebench command line. In args, {bin} is the
// -bin directory and {results} the -results directory. Its stdout goes to
// the file Stdout in the results directory.
type suiteScenario struct {
	Name   string   `json:"name"`
	About  string   `json:"about,omitempty"`
	Args   []string `json:"args"`
	Stdout string   `json:"stdout"`
}

// suitePlot is one chart: plot -in results/In -kind Kind -o img/Out.
type suitePlot struct {
	In    string `json:"in"`
	Kind  string `json:"kind"`
	Out   string `json:"out"`
	Title string `json:"title,omitempty"`
}

// suiteRecord is what the suite records of one scenario.
type suiteRecord struct {
	Name        string    `json:"name"`
	Command     string    `json:"command"`
	Start       time.Time `json:"start"`
	Seconds     float64   `json:"seconds"`
	LoadBefore  string    `json:"loadavg_before"`
	LoadAfter   string    `json:"loadavg_after"`
	Error       string    `json:"error,omitempty"`
	Stdout      string    `json:"stdout"`
	StderrTail  string    `json:"stderr_tail,omitempty"`
	Interrupted bool      `json:"interrupted,omitempty"`
}

// machineFacts describe where the suite ran.
type machineFacts struct {
	Date       time.Time `json:"date"`
	Cores      int       `json:"cores"`
	CPUModel   string    `json:"cpu_model"`
	Kernel     string    `json:"kernel"`
	Go         string    `json:"go"`
	Memcached  string    `json:"memcached"`
	Nutcracker string    `json:"nutcracker"`
	LoadAvg    string    `json:"loadavg_at_start"`
}

func suiteCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cachebench suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "bench/scenarios.json", "scenario file")
	results := fs.String("results", "bench/results", "directory for the results")
	bin := fs.String("bin", "bin", "directory of cached and cacheproxy, for {bin}")
	img := fs.String("img", "docs/img", "directory for the plots")
	only := fs.String("only", "", "comma-separated scenario names to run (default all)")
	plotsOnly := fs.Bool("plots-only", false, "run no scenario, only render the plots from the results directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	sf, err := readSuite(*file)
	if err != nil {
		return err
	}
	var want []string
	if *only != "" {
		want = strings.Split(*only, ",")
		for _, n := range want {
			if !slices.ContainsFunc(sf.Scenarios, func(s suiteScenario) bool { return s.Name == n }) {
				return fmt.Errorf("-only %s: no such scenario in %s", n, *file)
			}
		}
	}
	if err := os.MkdirAll(*results, 0o755); err != nil {
		return err
	}
	if !*plotsOnly {
		facts := gatherFacts()
		if err := writeJSONFile(filepath.Join(*results, "machine.json"), facts); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "cachebench suite: %d cores, %s, %s, %s, load %s\n", facts.Cores, facts.CPUModel, facts.Kernel, facts.Go, facts.LoadAvg)
		var recs []suiteRecord
		for _, sc := range sf.Scenarios {
			if want != nil && !slices.Contains(want, sc.Name) {
				continue
			}
			rec := runScenario(ctx, sc, *bin, *results, stderr)
			recs = append(recs, rec)
			// Keep the records of every run of a scenario file, newest last.
			if err := appendRecords(filepath.Join(*results, "suite.json"), rec); err != nil {
				return err
			}
			if rec.Interrupted {
				return context.Cause(ctx)
			}
		}
		for _, r := range recs {
			status := "ok"
			if r.Error != "" {
				status = "FAILED: " + r.Error
			}
			fmt.Fprintf(stdout, "%-10s %6.0fs  load %s -> %s  %s\n", r.Name, r.Seconds, r.LoadBefore, r.LoadAfter, status)
		}
	}
	if err := os.MkdirAll(*img, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, p := range sf.Plots {
		in := filepath.Join(*results, p.In)
		data, err := os.ReadFile(in)
		if err != nil {
			errs = append(errs, fmt.Errorf("plot %s: %w", p.Out, err))
			continue
		}
		svg, err := renderPlot(data, p.Kind, p.Title)
		if err != nil {
			errs = append(errs, fmt.Errorf("plot %s from %s: %w", p.Out, in, err))
			continue
		}
		out := filepath.Join(*img, p.Out)
		if err := os.WriteFile(out, []byte(svg), 0o644); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(stdout, "plot %s (%s of %s)\n", out, p.Kind, in)
	}
	return errors.Join(errs...)
}

func readSuite(path string) (*suiteFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var sf suiteFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sf); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	names := map[string]bool{}
	for _, s := range sf.Scenarios {
		switch {
		case s.Name == "" || names[s.Name]:
			return nil, fmt.Errorf("%s: scenario name %q is empty or repeated", path, s.Name)
		case len(s.Args) == 0 || s.Stdout == "" || filepath.Base(s.Stdout) != s.Stdout:
			return nil, fmt.Errorf("%s: scenario %s needs args and a plain stdout file name", path, s.Name)
		case s.Args[0] == "suite":
			return nil, fmt.Errorf("%s: scenario %s runs suite", path, s.Name)
		}
		names[s.Name] = true
	}
	for _, p := range sf.Plots {
		if p.In == "" || p.Out == "" || !slices.Contains(plotKinds, p.Kind) {
			return nil, fmt.Errorf("%s: plot %+v needs in, out and a kind of %v", path, p, plotKinds)
		}
	}
	return &sf, nil
}

// expand replaces {bin} and {results} in args.
func expand(args []string, bin, results string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.NewReplacer("{bin}", bin, "{results}", results).Replace(a)
	}
	return out
}

func runScenario(ctx context.Context, sc suiteScenario, bin, results string, stderr io.Writer) suiteRecord {
	args := expand(sc.Args, bin, results)
	rec := suiteRecord{Name: sc.Name, Command: "cachebench " + strings.Join(args, " "), Start: time.Now(), LoadBefore: loadAvg(), Stdout: sc.Stdout}
	fmt.Fprintf(stderr, "\ncachebench suite: scenario %s (load %s): %s\n", sc.Name, rec.LoadBefore, rec.Command)
	var out bytes.Buffer
	tail := &tailBuffer{}
	err := cli(ctx, args, &out, io.MultiWriter(stderr, tail))
	rec.Seconds = time.Since(rec.Start).Seconds()
	rec.LoadAfter = loadAvg()
	if werr := os.WriteFile(filepath.Join(results, sc.Stdout), out.Bytes(), 0o644); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		rec.Error = err.Error()
		rec.StderrTail = tail.String()
		rec.Interrupted = ctx.Err() != nil
		fmt.Fprintf(stderr, "cachebench suite: scenario %s FAILED: %v\n", sc.Name, err)
	}
	return rec
}

func appendRecords(path string, rec suiteRecord) error {
	var all []suiteRecord
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &all) // a damaged file starts over
	}
	return writeJSONFile(path, append(all, rec))
}

// loadAvg is the first three fields of /proc/loadavg, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func gatherFacts() machineFacts {
	m := machineFacts{Date: time.Now().UTC(), Cores: runtime.NumCPU(), Go: runtime.Version(), LoadAvg: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	version := func(path string, args ...string) string {
		out, err := exec.Command(path, args...).CombinedOutput()
		if err != nil {
			return "not found"
		}
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	m.Memcached = version("/usr/bin/memcached", "-V")
	m.Nutcracker = version("/usr/sbin/nutcracker", "-V")
	return m
}
