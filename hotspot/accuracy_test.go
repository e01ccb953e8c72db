package hotspot

import (
	"strings"
	"testing"
)

// TestDynamic_ciStream gates accuracy, latency and flapping on ciSpec: 4
// skews x 5 seeds of 3M requests with the default Config, against the exact
// oracle (HOTKEYS.md §5.3), recording through Analyzer.Record and through
// a Recorder. The full-size table is TestEvalTable (-tags eval).
func TestDynamic_ciStream(t *testing.T) {
	if raceEnabled {
		t.Skip("single-goroutine evaluation; nothing for the race detector (run without -race)")
	}
	for _, recorder := range []bool{false, true} {
		t.Run(map[bool]string{false: "Record", true: "Recorder"}[recorder], func(t *testing.T) {
			spec := ciSpec
			spec.Recorder = recorder
			rs := runEval(t, &spec)
			var b strings.Builder
			report(&b, rs)
			t.Log("\n" + b.String())
			gate(t, rs)
		})
	}
}
