package node

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// The dashboard is a page on the admin port ("/") that polls
// /api/overview every second. The node assembles the overview server-side:
// its own view of the cluster, plus each member's /api/counters and
// /hotkeys, fetched in parallel with a short timeout, so the browser needs
// to reach one node only and a member that is down costs one marked row,
// never the page. The browser computes rates from successive overviews.

//go:embed dashboard
var dashboardFiles embed.FS

// overviewTimeout bounds how long an overview waits for the members.
const overviewTimeout = 500 * time.Millisecond

// maxAdminBody bounds what the overview reads from a member: /hotkeys lists
// at most hotspot's MaxHot keys of at most 250 bytes each.
const maxAdminBody = 4 << 20

// Counters is a small summary of a node's counters, as /api/counters
// serves it. Rates are computed by whoever polls it, from successive
// readings: delta Requests over delta TimeMS.
type Counters struct {
	Node string `json:"node"`
	// Requests counts the commands the node served from its own store:
	// gets, touches, stores (set, add, replace, append, prepend, cas),
	// deletes, incr/decr and flush_all. A request forwarded to a key's
	// owner is counted there (and in Forwarded here).
	Requests uint64 `json:"requests"`
	// Gets counts keys read by get and gets (cmd_get); Sets the store
	// commands (cmd_set); Hits and Misses the gets' results.
	Gets   uint64 `json:"gets"`
	Sets   uint64 `json:"sets"`
	Hits   uint64 `json:"hits"`
	Misses uint64 `json:"misses"`
	// Items and Bytes are curr_items and bytes.
	Items uint64 `json:"items"`
	Bytes uint64 `json:"bytes"`
	// Forwarded counts requests sent on to their keys' owners.
	Forwarded uint64 `json:"forwarded"`
	// TimeMS is the node's wall clock when the counters were read, in unix
	// milliseconds.
	TimeMS int64 `json:"time_ms"`
}

// Counters reads the node's counters.
func (n *Node) Counters() Counters {
	c := &n.counters
	return Counters{
		Node: n.cfg.Name,
		Requests: c.cmdGet.Load() + c.cmdSet.Load() + c.cmdTouch.Load() + c.cmdFlush.Load() +
			c.deleteHits.Load() + c.deleteMisses.Load() + c.incrHits.Load() + c.incrMisses.Load() +
			c.decrHits.Load() + c.decrMisses.Load(),
		Gets:      c.cmdGet.Load(),
		Sets:      c.cmdSet.Load(),
		Hits:      c.getHits.Load(),
		Misses:    c.getMisses.Load(),
		Items:     uint64(max(n.store.items.Load(), 0)),
		Bytes:     uint64(max(n.store.bytes.Load(), 0)),
		Forwarded: n.fwd.requests.Load(),
		TimeMS:    time.Now().UnixMilli(),
	}
}

// Overview is the cluster as one node sees it, with each member's counters
// and hot keys: what /api/overview serves and the dashboard shows.
type Overview struct {
	// Self, Identity and Generation are the serving node's Cluster().
	Self       string `json:"self"`
	Identity   string `json:"identity"`
	Generation uint64 `json:"generation"`
	// Partitions is the ring's partition count; a member's share of the
	// ring is its Partitions over this.
	Partitions int `json:"partitions"`
	// TimeMS is the serving node's wall clock, in unix milliseconds.
	TimeMS  int64            `json:"time_ms"`
	Members []MemberOverview `json:"members"`
}

// MemberOverview is one member of an Overview: its ClusterInfo entry and
// what its admin endpoint reported. Counters and HotKeys are null when they
// could not be fetched, and Error then says why.
type MemberOverview struct {
	MemberInfo
	// Reachable reports whether the member's admin endpoint answered at
	// least one of the two requests.
	Reachable bool      `json:"reachable"`
	Error     string    `json:"error,omitempty"`
	Counters  *Counters `json:"counters"`
	HotKeys   *HotKeys  `json:"hotkeys"`
}

// dashboard serves the page and its API for one node.
type dashboard struct {
	client *http.Client // to the members' admin endpoints
	static http.Handler // the embedded files
}

// registerDashboard adds the dashboard's page, files and API to the admin
// mux.
func (n *Node) registerDashboard(mux *http.ServeMux) {
	d := &dashboard{
		client: &http.Client{
			Timeout: overviewTimeout,
			Transport: &http.Transport{
				DialContext:           (&net.Dialer{Timeout: overviewTimeout}).DialContext,
				MaxConnsPerHost:       4,
				MaxIdleConnsPerHost:   2,
				IdleConnTimeout:       10 * time.Second,
				ResponseHeaderTimeout: overviewTimeout,
			},
		},
	}
	sub, _ := fs.Sub(dashboardFiles, "dashboard") // cannot fail: the directory is embedded
	d.static = http.FileServerFS(sub)
	go func() { // keep-alive connections to members must not outlive the node
		<-n.stop
		d.client.CloseIdleConnections()
	}()
	mux.HandleFunc("GET /{$}", d.serveIndex)
	mux.Handle("GET /dashboard/", http.StripPrefix("/dashboard", d.withHeaders(d.static)))
	mux.HandleFunc("GET /api/overview", func(w http.ResponseWriter, r *http.Request) {
		writeDashboardJSON(w, n.overview(r.Context(), d.client))
	})
	mux.HandleFunc("GET /api/counters", func(w http.ResponseWriter, r *http.Request) {
		writeDashboardJSON(w, n.Counters())
	})
}

// withHeaders sets the headers every dashboard file carries: a content
// security policy that allows nothing but this origin's own files, so that
// a key rendered by mistake as markup could not run or load anything.
func (d *dashboard) withHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

func (d *dashboard) serveIndex(w http.ResponseWriter, r *http.Request) {
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/" // the file server answers "/" with index.html
	d.withHeaders(d.static).ServeHTTP(w, r2)
}

// writeDashboardJSON writes v as an API answer.
func writeDashboardJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// overview assembles an Overview: the node's own counters and hot keys are
// read directly, every other member's are fetched from its admin endpoint
// in parallel, each fetch bounded by overviewTimeout.
func (n *Node) overview(ctx context.Context, client *http.Client) Overview {
	info := n.Cluster()
	ov := Overview{Self: info.Self, Identity: info.Identity, Generation: info.Generation,
		TimeMS: time.Now().UnixMilli(), Members: make([]MemberOverview, len(info.Members))}
	if r := n.view.ring.Load(); r != nil {
		ov.Partitions = r.Partitions()
	}
	ctx, cancel := context.WithTimeout(ctx, overviewTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([][2]error, len(info.Members)) // counters, hot keys
	for i, m := range info.Members {
		mo := &ov.Members[i]
		mo.MemberInfo = m
		switch {
		case m.Name == n.cfg.Name:
			c, hk := n.Counters(), n.HotKeys()
			mo.Counters, mo.HotKeys = &c, &hk
		case m.Admin == "":
			errs[i][0] = errors.New("admin address unknown")
			errs[i][1] = errs[i][0]
		default:
			wg.Go(func() {
				var c Counters
				if errs[i][0] = fetchMemberJSON(ctx, client, m.Admin, "/api/counters", &c); errs[i][0] == nil {
					mo.Counters = &c
				}
			})
			wg.Go(func() {
				var hk HotKeys
				if errs[i][1] = fetchMemberJSON(ctx, client, m.Admin, "/hotkeys", &hk); errs[i][1] == nil {
					mo.HotKeys = &hk
				}
			})
		}
	}
	wg.Wait()
	for i := range ov.Members {
		mo, cerr, herr := &ov.Members[i], errs[i][0], errs[i][1]
		mo.Reachable = cerr == nil || herr == nil
		switch {
		case cerr != nil && herr != nil && cerr.Error() == herr.Error():
			mo.Error = cerr.Error()
		case cerr != nil:
			mo.Error = "counters: " + cerr.Error()
		case herr != nil:
			mo.Error = "hot keys: " + herr.Error()
		}
	}
	return ov
}

// fetchMemberJSON gets http://admin+path into v.
func fetchMemberJSON(ctx context.Context, client *http.Client, admin, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() {
				return fmt.Errorf("no answer within %v", overviewTimeout)
			}
			err = ue.Err
		}
		return fmt.Errorf("unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxAdminBody))
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAdminBody)).Decode(v); err != nil {
		return fmt.Errorf("bad answer: %w", err)
	}
	return nil
}
