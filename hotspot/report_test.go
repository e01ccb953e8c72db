package hotspot

import (
	"fmt"
	"io"
	"slices"
	"testing"
	"text/tabwriter"
	"time"
)

// Gates from HOTKEYS.md §7.1, checked on every skew.
const (
	gateBandedPrecision = 0.98
	gateBandedRecall    = 0.96
	gateDetectMedian    = 400 * time.Millisecond
	gateDetectP95       = time.Second
	gateDetectMax       = 1500 * time.Millisecond
	gateCoolSlack       = 500 * time.Millisecond
)

// skewSummary is the worst case over the seeds of one skew.
type skewSummary struct {
	skew                 float64
	minBP, minBR         float64
	minSP, minSR         float64
	det                  []time.Duration // gated rising events, all seeds
	detMiss              int
	slowDet              []time.Duration // (1+eps)x..2x rising events
	slowMiss             int
	cool, oracleCool     []time.Duration // gated falling events
	coolMiss             int
	oracleDet            []time.Duration
	worstRise            int // max over seeds of ours - oracle rising transitions
	rising, oracleRising int // summed over seeds
}

func summarize(rs []*runResult, skew float64, name string) skewSummary {
	s := skewSummary{skew: skew, minBP: 1, minBR: 1, minSP: 1, minSR: 1, worstRise: -1 << 30}
	for _, r := range rs {
		st := r.stats[name]
		if r.skew != skew || st == nil {
			continue
		}
		s.minBP, s.minBR = min(s.minBP, st.bp.value()), min(s.minBR, st.br.value())
		s.minSP, s.minSR = min(s.minSP, st.sp.value()), min(s.minSR, st.sr.value())
		s.worstRise = max(s.worstRise, st.rising-r.stats["oracle"].rising)
		s.rising += st.rising
		s.oracleRising += r.stats["oracle"].rising
	}
	trs := pooled(rs, skew, name)
	s.det, s.detMiss = latencies(trs, classGated, true)
	s.slowDet, s.slowMiss = latencies(trs, classSlow, true)
	s.cool, s.coolMiss = latencies(trs, classGated, false)
	s.oracleDet, _ = latencies(pooled(rs, skew, "oracle"), classGated, true)
	s.oracleCool, _ = latencies(pooled(rs, skew, "oracle"), classGated, false)
	return s
}

// gate fails t for every skew that misses a target.
func gate(t *testing.T, rs []*runResult) {
	t.Helper()
	for _, skew := range skews(rs) {
		s := summarize(rs, skew, "ours")
		check := func(ok bool, format string, args ...any) {
			if !ok {
				t.Errorf("s=%.2f: "+format, append([]any{skew}, args...)...)
			}
		}
		check(s.minBP >= gateBandedPrecision, "banded precision %.4f < %.2f", s.minBP, gateBandedPrecision)
		check(s.minBR >= gateBandedRecall, "banded recall %.4f < %.2f", s.minBR, gateBandedRecall)
		check(len(s.det) > 0, "no gated rising events")
		check(quantile(s.det, 0.5) <= gateDetectMedian, "detect median %v", quantile(s.det, 0.5))
		check(quantile(s.det, 0.95) <= gateDetectP95, "detect p95 %v", quantile(s.det, 0.95))
		check(quantile(s.det, 1) <= gateDetectMax, "detect max %v", quantile(s.det, 1))
		check(s.detMiss == 0, "%d missed detections", s.detMiss)
		check(s.coolMiss == 0, "%d missed cools", s.coolMiss)
		check(quantile(s.cool, 0.95) <= quantile(s.oracleCool, 0.95)+gateCoolSlack,
			"cool p95 %v > oracle %v + %v", quantile(s.cool, 0.95), quantile(s.oracleCool, 0.95), gateCoolSlack)
		check(s.worstRise <= 0, "%d more rising transitions than the oracle in one run", s.worstRise)
	}
}

// report writes one row per run and a worst-case row per skew.
func report(w io.Writer, rs []*runResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "skew\tseed\tdetector\tbandP\tbandR\tstrictP\tstrictR\tdetect p50/p95/max (n, miss)\tslow detect p50/p95/max (n, miss)\tcool p50/p95/max (n, miss)\trising\t")
	for _, skew := range skews(rs) {
		for _, r := range rs {
			if r.skew != skew {
				continue
			}
			for _, name := range detectorNames {
				if st := r.stats[name]; st != nil {
					fmt.Fprintf(tw, "%.2f\t%d\t%s\t%s\t\n", skew, r.seed, name, row(st.tracks, st))
				}
			}
		}
		for _, name := range detectorNames {
			if trs := pooled(rs, skew, name); trs != nil {
				s := summarize(rs, skew, name)
				fmt.Fprintf(tw, "%.2f\tworst\t%s\t%.4f\t%.4f\t%.4f\t%.4f\t%s\t%s\t%s\t%d (max +%d)\t\n", skew, name,
					s.minBP, s.minBR, s.minSP, s.minSR, lat(s.det, s.detMiss), lat(s.slowDet, s.slowMiss), lat(s.cool, s.coolMiss), s.rising, s.worstRise)
			}
		}
	}
	tw.Flush()
}

func row(trs []*evTrack, st *detStats) string {
	det, dm := latencies(trs, classGated, true)
	slow, sm := latencies(trs, classSlow, true)
	cool, cm := latencies(trs, classGated, false)
	return fmt.Sprintf("%.4f\t%.4f\t%.4f\t%.4f\t%s\t%s\t%s\t%d", st.bp.value(), st.br.value(), st.sp.value(), st.sr.value(),
		lat(det, dm), lat(slow, sm), lat(cool, cm), st.rising)
}

func lat(d []time.Duration, miss int) string {
	if len(d) == 0 && miss == 0 {
		return "-"
	}
	d = slices.Clone(d)
	return fmt.Sprintf("%s/%s/%s (%d, %d)", secs(quantile(d, 0.5)), secs(quantile(d, 0.95)), secs(quantile(d, 1)), len(d)+miss, miss)
}
