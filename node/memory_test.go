//go:build memory

package node

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// TestItemOverhead measures the Go heap one stored item costs beyond its
// key and value, with DESIGN.md's reference shape: 1M items, 100-byte values,
// ~12-byte keys. memcached 1.6 uses about 202 bytes of RSS per such item.
// Run with `make memory`.
func TestItemOverhead(t *testing.T) {
	const n = 1_000_000
	st, err := newStore(4<<30, func() int64 { return time.Now().Unix() })
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	value := make([]byte, 100)
	before := heapInUse()
	payload := 0
	for i := range n {
		key := fmt.Appendf(nil, "key:%08d", i)
		block := append(append(append(make([]byte, 0, len(key)+len(value)+2), key...), value...), "\r\n"...)
		payload += len(key) + len(value)
		it := newItem(block, len(key), 0, 0)
		it.cas = st.nextCas()
		if err := st.put(it, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	after := heapInUse()
	per := float64(after-before) / n
	over := float64(int64(after-before)-int64(payload)) / n
	t.Logf("%d items: %.0f bytes of heap per item, %.0f bytes beyond key+value (charged estimate: %d); curr_items=%d",
		n, per, over, itemOverhead, st.items.Load())
	if st.items.Load() != n {
		t.Fatalf("kept %d of %d items in a cache with room for all", st.items.Load(), n)
	}
	runtime.KeepAlive(st)
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
