package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// memberMeta is what a node tells the cluster about itself in its gossip
// metadata: where its memcache and admin endpoints are.
type memberMeta struct {
	Addr  string `json:"addr"`
	Admin string `json:"admin,omitempty"`
}

// membership adapts memberlist. Its callbacks run on memberlist's goroutines
// and only copy and signal: the ring is rebuilt by the Node's own goroutine.
type membership struct {
	ml      *memberlist.Memberlist
	meta    atomic.Pointer[[]byte]
	changed chan struct{} // capacity 1: bursts of events coalesce
	logger  *slog.Logger

	mu    sync.Mutex
	peers map[string]memberMeta // name -> meta, every node memberlist reports alive or suspect

	// refuted is set when memberlist refutes a dead message about this node:
	// the others may have dropped it from their rings and moved its
	// partitions. memberlist has no callback for that, so it is read from
	// its log (see refuteWatcher).
	refuted atomic.Bool
}

// refuteWatcher is memberlist's log writer. It watches for the line
// memberlist writes when it refutes a death of this node ("Refuting a dead
// message": memberlist v0.7.0, state.go) and passes everything on to next.
// A refuted suspicion does not count: suspect members stay in every ring
// (peers holds alive and suspect nodes), so nobody moved this node's
// partitions, and fencing them would only turn acknowledged writes into
// misses, which a loaded machine's passing suspicions did after healed
// partitions.
type refuteWatcher struct {
	m    *membership
	next io.Writer
}

func (w refuteWatcher) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("Refuting a dead message")) {
		w.m.refuted.Store(true)
	}
	return w.next.Write(p)
}

func newMembership(logger *slog.Logger) *membership {
	return &membership{changed: make(chan struct{}, 1), logger: logger, peers: map[string]memberMeta{}}
}

func (m *membership) signal() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

func (m *membership) setMeta(meta memberMeta) {
	b, _ := json.Marshal(meta)
	m.meta.Store(&b)
}

// NotifyJoin, NotifyLeave and NotifyUpdate make membership a
// memberlist.EventDelegate.
// They log every change at info: memberlist calls them once per change of
// a member's state, and a ring rebuild follows ("ring changed").
func (m *membership) NotifyJoin(n *memberlist.Node) {
	m.record(n, true, "member joined")
	m.signal()
}

// NotifyLeave is called both for a member that left (shut down) and for
// one the cluster declared dead: memberlist v0.7.0 does not say which (the
// Node it passes has no state set), so the line says "left or failed".
func (m *membership) NotifyLeave(n *memberlist.Node) {
	m.record(n, false, "member left or failed")
	m.signal()
}

func (m *membership) NotifyUpdate(n *memberlist.Node) {
	m.record(n, true, "member updated")
	m.signal()
}

func (m *membership) record(n *memberlist.Node, alive bool, event string) {
	var meta memberMeta
	metaErr := json.Unmarshal(n.Meta, &meta)
	if alive && (metaErr != nil || meta.Addr == "") {
		m.logger.Warn("ignoring member with unreadable metadata", "member", n.Name, "gossip", n.Address(), "err", metaErr)
		alive = false
	} else {
		m.logger.Info(event, "member", n.Name, "gossip", n.Address(), "addr", meta.Addr, "admin", meta.Admin)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if alive {
		m.peers[n.Name] = meta
	} else {
		delete(m.peers, n.Name)
	}
}

// snapshot returns a copy of the live member set.
func (m *membership) snapshot() map[string]memberMeta {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]memberMeta, len(m.peers))
	for k, v := range m.peers {
		out[k] = v
	}
	return out
}

// NodeMeta, NotifyMsg, GetBroadcasts, LocalState and MergeRemoteState make
// membership a memberlist.Delegate; only the metadata is used.
func (m *membership) NodeMeta(limit int) []byte {
	if b := m.meta.Load(); b != nil && len(*b) <= limit {
		return *b
	}
	return nil
}
func (m *membership) NotifyMsg([]byte)                           {}
func (m *membership) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (m *membership) LocalState(join bool) []byte                { return nil }
func (m *membership) MergeRemoteState(buf []byte, join bool)     {}

// gossipConfig builds memberlist's configuration for a node.
func gossipConfig(cfg Config, m *membership) (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	host, port, err := net.SplitHostPort(cfg.GossipAddr)
	if err != nil {
		return nil, fmt.Errorf("node: gossip address %q: %w", cfg.GossipAddr, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("node: gossip port %q: %w", port, err)
	}
	mc.BindAddr, mc.BindPort = host, p
	mc.AdvertisePort = p
	// A node restarted under the same name on a new address may take its
	// name back once the old incarnation has been dead this long.
	mc.DeadNodeReclaimTime = cfg.DeadNodeReclaimTime
	mc.Delegate = m
	mc.Events = m
	mc.SecretKey = cfg.GossipKey
	if len(cfg.GossipKeyring) > 0 {
		kr, err := memberlist.NewKeyring(cfg.GossipKeyring, cfg.GossipKey)
		if err != nil {
			return nil, fmt.Errorf("gossip keyring: %w", err)
		}
		mc.Keyring = kr
	}
	var next io.Writer = io.Discard
	if cfg.Verbosity > 1 {
		next = slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug).Writer()
	}
	mc.Logger = log.New(refuteWatcher{m: m, next: next}, "", 0)
	if cfg.GossipTuning != nil {
		cfg.GossipTuning(mc)
	}
	return mc, nil
}

// join contacts the seeds; a failure is logged, not fatal: the node keeps
// trying from its rejoin loop.
func (m *membership) join(seeds []string) {
	if len(seeds) == 0 {
		return
	}
	if n, err := m.ml.Join(seeds); err != nil && n == 0 {
		// Alone, a node serves every key itself: worth a warning (once per
		// RejoinInterval). With others around it is the usual state of a
		// seed list that names a node which is down.
		level := slog.LevelDebug
		if m.ml.NumMembers() <= 1 {
			level = slog.LevelWarn
		}
		m.logger.Log(context.Background(), level, "cannot reach any seed; will retry", "seeds", seeds, "err", err)
	}
}

// rejoinEvery keeps contacting the seeds so that the two sides of a healed
// partition merge again; memberlist alone never re-contacts a node it has
// declared dead.
func (m *membership) rejoinEvery(interval time.Duration, seeds []string, stop <-chan struct{}) {
	if len(seeds) == 0 || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			m.join(seeds)
		}
	}
}
