package node_test

// TestConformance replays the corpus in testdata/conformance/*.txt against a
// real memcached and against our node, and requires identical normalized
// transcripts. docs/conformance.md describes the corpus format, the
// normalization and the memcached behaviours the corpus pins down; the
// harness is internal/conformance.

import (
	"errors"
	"flag"
	"os"
	"sync"
	"testing"

	"github.com/hotcache/hotcache/internal/conformance"
	"github.com/hotcache/hotcache/internal/memcachedtest"
)

var updateGolden = flag.Bool("conformance.golden", false,
	"write memcached's normalized transcripts to testdata/conformance/golden")

const (
	corpusDir = "testdata/conformance"
	goldenDir = "testdata/conformance/golden"
)

func TestConformance(t *testing.T) {
	cases, err := conformance.LoadCases(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	_, live := memcachedtest.Path()
	switch {
	case !live && memcachedtest.Required():
		t.Fatalf("memcached not found and %s=1", memcachedtest.RequireEnv)
	case !live && *updateGolden:
		t.Fatal("-conformance.golden needs memcached")
	case !live:
		t.Logf("memcached not found: comparing with the golden transcripts in %s", goldenDir)
	}
	conformance.SleepersFirst(cases)
	for _, c := range cases {
		t.Run(c.File+"/"+c.Name, func(t *testing.T) {
			t.Parallel()
			if live {
				runLive(t, c)
			} else {
				runAgainstGolden(t, c)
			}
		})
	}
}

// runLive plays c against a fresh memcached and a fresh node at the same time.
func runLive(t *testing.T, c *conformance.Case) {
	refAddr := memcachedtest.Start(t)
	ourAddr := startCached(t)
	var ref, got conformance.Transcript
	var wg sync.WaitGroup
	wg.Go(func() { ref = conformance.Play(refAddr, c) })
	wg.Go(func() { got = conformance.Play(ourAddr, c) })
	wg.Wait()

	for _, i := range ref.TimedOut() {
		t.Errorf("%s.txt:%d: memcached did not answer the sentinel of step %d; mark the step \"partial\" (corpus bug)",
			c.File, c.Steps[i].Line, i+1)
	}
	compare(t, c, ref, got)

	version := memcachedVersion(t, refAddr)
	path := conformance.GoldenPath(goldenDir, c)
	if *updateGolden {
		if err := conformance.WriteGolden(path, version, ref); err != nil {
			t.Fatal(err)
		}
		return
	}
	golden, goldenVersion, err := conformance.ReadGolden(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		t.Errorf("no golden transcript %s; run: go test ./node -run TestConformance -conformance.golden", path)
	case err != nil:
		t.Error(err)
	case goldenVersion == version && golden.String() != ref.String():
		t.Errorf("golden transcript %s is stale for memcached %s; run: go test ./node -run TestConformance -conformance.golden", path, version)
	}
}

// runAgainstGolden plays c against a fresh node only and compares it with
// the transcript memcached produced when the golden files were written.
func runAgainstGolden(t *testing.T, c *conformance.Case) {
	ref, _, err := conformance.ReadGolden(conformance.GoldenPath(goldenDir, c))
	if err != nil {
		t.Fatal(err)
	}
	compare(t, c, ref, conformance.Play(startCached(t), c))
}

// compare reports a side-by-side diff of memcached's transcript (ref) and
// ours (got) if they differ.
func compare(t *testing.T, c *conformance.Case, ref, got conformance.Transcript) {
	t.Helper()
	if ref.String() == got.String() {
		return
	}
	t.Errorf("%s.txt:%d: cached differs from memcached (normalized transcripts side by side, ! marks a difference):\n%s",
		c.File, c.Line, conformance.SideBySide(ref, got, "memcached", "cached"))
}

func memcachedVersion(t *testing.T, addr string) string {
	stats, err := memcachedtest.Stats(addr, "")
	if err != nil {
		t.Fatalf("reading memcached's version: %v", err)
	}
	return stats["version"]
}
