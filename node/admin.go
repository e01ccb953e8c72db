package node

import (
	"encoding/json"

	"github.com/hashicorp/memberlist"
	"net/http"
	"net/http/pprof"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ClusterInfo is the node's view of the cluster, as /cluster serves it.
type ClusterInfo struct {
	Self       string       `json:"self"`
	Identity   string       `json:"identity"`
	Generation uint64       `json:"generation"`
	Members    []MemberInfo `json:"members"`
}

// MemberInfo is one member of a ClusterInfo.
type MemberInfo struct {
	Name       string `json:"name"`
	Addr       string `json:"addr"`
	Admin      string `json:"admin,omitempty"`
	State      string `json:"state"`
	Partitions int    `json:"partitions"`
}

// Cluster returns the node's current view of the cluster.
func (n *Node) Cluster() ClusterInfo {
	r := n.view.ring.Load()
	counts := r.PartitionCounts()
	states := map[string]string{}
	if n.members != nil {
		for _, m := range n.members.ml.Members() {
			states[m.Name] = stateName(m.State)
		}
	}
	info := ClusterInfo{Self: n.cfg.Name, Identity: r.Identity(), Generation: n.view.generation.Load()}
	for _, m := range r.Members() {
		st := states[m.Name]
		if st == "" {
			st = "alive"
		}
		info.Members = append(info.Members, MemberInfo{Name: m.Name, Addr: m.Addr, Admin: m.Admin, State: st, Partitions: counts[m.Name]})
	}
	sort.Slice(info.Members, func(i, j int) bool { return info.Members[i].Name < info.Members[j].Name })
	return info
}

// Ready reports whether the node serves: started, with a ring, and (in a
// cluster) past the lease of its start, so that writes are acknowledged.
func (n *Node) Ready() bool {
	n.mu.Lock()
	running := n.running && !n.stopped
	n.mu.Unlock()
	return running && n.view.ring.Load() != nil
}

func (n *Node) newAdminServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !n.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /cluster", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(n.Cluster())
	})
	mux.HandleFunc("GET /hotkeys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(n.HotKeys())
	})
	n.handleDrain(mux)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), n.collector())
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	n.registerDashboard(mux) // "/", /dashboard/, /api/overview, /api/counters: dashboard.go
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

func stateName(s memberlist.NodeStateType) string {
	switch s {
	case memberlist.StateAlive:
		return "alive"
	case memberlist.StateSuspect:
		return "suspect"
	case memberlist.StateDead:
		return "dead"
	case memberlist.StateLeft:
		return "left"
	}
	return "unknown"
}
