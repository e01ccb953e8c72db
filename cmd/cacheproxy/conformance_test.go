package main

// TestConformance replays node/testdata/conformance/*.txt through the proxy
// (started as main starts it, in front of one standalone node) and requires
// the normalized transcripts to equal memcached's golden ones, except for the
// stats of a store the proxy does not have (see proxyOnlyDrops). The harness
// (corpus, playing, normalization, golden files) is internal/conformance,
// shared with node's TestConformance; docs/conformance.md describes it.

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hotcache/hotcache/internal/conformance"
	"github.com/hotcache/hotcache/node"
	"github.com/hotcache/hotcache/node/nodetest"
)

const (
	corpusDir = "../../node/testdata/conformance"
	goldenDir = "../../node/testdata/conformance/golden"
)

// proxyOnlyDrops are the stats the proxy cannot report, having no store of
// its own (items, bytes, evictions, memory limit, and get_expired: a miss
// does not say why) or no notion of its port in the handler. They are dropped
// from both transcripts; every other compared field, the request counters
// included, must match memcached's.
var proxyOnlyDrops = []string{"bytes", "curr_items", "total_items", "evictions", "limit_maxbytes", "get_expired", "maxbytes", "tcpport"}

func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("replays the whole corpus")
	}
	cases, err := conformance.LoadCases(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	// Cases that sleep start first, so their waits overlap with the rest.
	conformance.SleepersFirst(cases)
	for _, c := range cases {
		t.Run(c.File+"/"+c.Name, func(t *testing.T) {
			t.Parallel()
			ref, _, err := conformance.ReadGolden(conformance.GoldenPath(goldenDir, c))
			if err != nil {
				t.Fatal(err)
			}
			got := conformance.Play(startProxyForCase(t), c)
			ref, got = ref.DropStats(proxyOnlyDrops...), got.DropStats(proxyOnlyDrops...)
			if ref.String() != got.String() {
				t.Errorf("%s.txt:%d: the proxy differs from memcached (normalized transcripts side by side, ! marks a difference):\n%s",
					c.File, c.Line, conformance.SideBySide(ref, got, "memcached", "cacheproxy"))
			}
		})
	}
}

// startProxyForCase starts a fresh standalone node (memcached's defaults)
// and a proxy in front of it, as main starts one, for one case, and returns
// the proxy's memcache address once it routes by the node's ring.
func startProxyForCase(t *testing.T) string {
	t.Helper()
	n := nodetest.Standalone(t, node.Config{Name: "solo"})
	o, err := parseFlags([]string{"-l", "127.0.0.1", "-p", "0", "-admin", "", "-seeds", n.Addr()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p, err := start(o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.shutdown(ctx)
	})
	waitFor(t, "the proxy's ring", func() (bool, any) { return p.c.Ring() != nil, nil })
	return p.ln.Addr().String()
}
