package node_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hotcache/hotcache/node"
)

// TestStatsHotFindsTheHotKey reads one key far more than the others and
// waits until "stats hot" names it, and only it.
func TestStatsHotFindsTheHotKey(t *testing.T) {
	n := startNode(t, node.Config{})
	c := dial(t, n.Addr())
	c.set("celebrity", "v", 0)
	deadline := time.Now().Add(30 * time.Second)
	var last []string
	for round := 0; time.Now().Before(deadline); round++ {
		// 200 reads of the celebrity, and 10 of keys no other round reads.
		var batch strings.Builder
		for i := range 200 {
			batch.WriteString("get celebrity\r\n")
			if i%20 == 0 {
				batch.WriteString("get " + clusterKey(round*10+i/20) + "\r\n")
			}
		}
		c.send(batch.String())
		for range 210 {
			for c.line() != "END" {
			}
		}
		last = hotKeys(c)
		if len(last) == 1 && last[0] == "celebrity" {
			return
		}
	}
	t.Fatalf("stats hot never named only the celebrity key; last saw %v", last)
}

func hotKeys(c *conn) []string {
	c.send("stats hot\r\n")
	var keys []string
	for {
		l := c.line()
		if l == "END" {
			return keys
		}
		if f := strings.Fields(l); len(f) > 2 && f[1] == "hot" {
			keys = append(keys, f[2])
		}
	}
}
