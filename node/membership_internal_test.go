package node

import (
	"io"
	"testing"
)

// TestRefuteWatcher: only a refuted death fences the node's partitions; a
// refuted suspicion (the node stayed in every ring) does not.
func TestRefuteWatcher(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{"[WARN] memberlist: Refuting a suspect message (from: n1)", false},
		{"[WARN] memberlist: Refuting an alive message for 'n0' (127.0.0.1:7946)", false},
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:5555", false},
		{"[WARN] memberlist: Refuting a dead message (from: n1)", true},
	} {
		m := &membership{}
		w := refuteWatcher{m: m, next: io.Discard}
		if _, err := w.Write([]byte(tc.line)); err != nil {
			t.Fatal(err)
		}
		if got := m.refuted.Load(); got != tc.want {
			t.Errorf("%q: refuted = %v, want %v", tc.line, got, tc.want)
		}
	}
}
