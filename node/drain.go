package node

import (
	"net/http"
	"sync"
)

// Draining a node from outside: POST /drain on the admin HTTP port asks the
// node to leave the cluster and stop, as SIGTERM does to cmd/cached. The
// endpoint only signals: it closes the channel Drained returns, and the
// program that owns the node (cmd/cached selects on it next to its signals)
// runs its usual Shutdown, which leaves the cluster and drains connections.
// A program that embeds a Node and serves admin HTTP must watch Drained
// itself, or a drain request does nothing.
//
// The admin port binds to loopback by default; the endpoint refuses
// cross-origin browser requests (http.CrossOriginProtection), so a web page
// open on the node's host cannot drain it. When the node authenticates its
// memcache clients (Config.Authenticate, cached's -Y), the endpoint wants
// the same credentials as HTTP Basic authentication.

// drainSignal is closed once, by the first drain request. Its zero value is
// ready to use.
type drainSignal struct {
	mu sync.Mutex
	ch chan struct{}
	on bool
}

// c returns the channel, making it on first use.
func (d *drainSignal) c() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch
}

// fire closes the channel; it reports whether this call did.
func (d *drainSignal) fire() bool {
	ch := d.c()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.on {
		return false
	}
	d.on = true
	close(ch)
	return true
}

// Drained returns a channel that is closed when a drain of the node has
// been requested (POST /drain on the admin HTTP port, or RequestDrain).
// The node keeps serving: the caller is expected to call Shutdown, which
// leaves the cluster and drains connections, as cmd/cached does on SIGTERM.
func (n *Node) Drained() <-chan struct{} { return n.drain.c() }

// RequestDrain closes the channel Drained returns, as POST /drain does. It
// is safe to call more than once and from any goroutine.
func (n *Node) RequestDrain() {
	if n.drain.fire() {
		n.cfg.Logger.Info("drain requested: leaving the cluster and shutting down", "name", n.cfg.Name)
	}
}

// handleDrain registers POST /drain on the admin mux: it answers 202
// Accepted and requests a drain (again 202 if one was already requested).
// Other methods get 405 from the mux; cross-origin browser requests 403;
// requests without valid credentials, when the node wants them, 401.
func (n *Node) handleDrain(mux *http.ServeMux) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth := n.cfg.Authenticate; auth != nil {
			user, pass, ok := r.BasicAuth()
			if !ok || !auth([]byte(user), []byte(pass)) {
				w.Header().Set("WWW-Authenticate", `Basic realm="cached admin", charset="UTF-8"`)
				http.Error(w, "authentication required: the credentials of the node's -Y file", http.StatusUnauthorized)
				return
			}
		}
		// Answer first: the drain shuts the admin server down, and a reply
		// still in its buffer would reach the caller as an EOF.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte("draining " + n.cfg.Name + "\n"))
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		n.RequestDrain()
	})
	mux.Handle("POST /drain", http.NewCrossOriginProtection().Handler(h))
}
