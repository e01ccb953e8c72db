package client

import (
	"errors"
	"strings"
)

var (
	// ErrCacheMiss means the key holds no item: a get that found nothing, or
	// a delete, touch, incr, decr or cas of a missing key. A read whose owner
	// could not be reached (Config.GetFailover) also matches it.
	ErrCacheMiss = errors.New("client: cache miss")
	// ErrNotStored means a conditional write's condition failed: add of an
	// existing key, replace, append or prepend of a missing one.
	ErrNotStored = errors.New("client: item not stored")
	// ErrCASConflict means a CompareAndSwap lost: the item changed since the
	// cas unique was read.
	ErrCASConflict = errors.New("client: compare-and-swap conflict")
	// ErrMalformedKey means a key is empty, longer than 250 bytes, or holds a
	// space, a control character or DEL. It is refused before anything is
	// sent.
	ErrMalformedKey = errors.New("client: malformed key: empty, over 250 bytes, or holds spaces or control characters")
	// ErrNoServers means there is no server to send to: no Servers or Seeds,
	// an empty ring, or no ring learned yet from the seeds.
	ErrNoServers = errors.New("client: no servers")
	// ErrServerDown matches the *NodeError of a call that failed at once
	// because its server failed repeatedly and is in backoff.
	ErrServerDown = errors.New("client: server marked down after repeated failures")
	// ErrClosed is returned by calls after Close.
	ErrClosed = errors.New("client: closed")
	// ErrNonNumeric matches the *ServerError of an Increment or Decrement of
	// a value that is not a decimal number.
	ErrNonNumeric = errors.New("client: cannot increment or decrement a non-numeric value")
	// ErrTooLarge matches the *ServerError of a write whose item exceeds the
	// server's item size limit.
	ErrTooLarge = errors.New("client: item too large for the server")
)

// A ServerError is an error reply from a server: "ERROR", "CLIENT_ERROR ..."
// or "SERVER_ERROR ...". It matches ErrNonNumeric or ErrTooLarge when its
// text is memcached's for those cases.
type ServerError struct {
	// Addr is the server that replied.
	Addr string
	// Reply is the reply line without "\r\n", e.g. "SERVER_ERROR out of memory storing object".
	Reply string
}

// Error returns the reply with the server's address.
func (e *ServerError) Error() string { return "client: server " + e.Addr + " replied " + e.Reply }

// Is reports whether the reply is memcached's wording for target.
func (e *ServerError) Is(target error) bool {
	switch target {
	case ErrNonNumeric:
		return e.Reply == "CLIENT_ERROR cannot increment or decrement non-numeric value"
	case ErrTooLarge:
		return e.Reply == "SERVER_ERROR object too large for cache"
	}
	return false
}

// A NodeError is a call that failed because a server could not be reached or
// did not answer in time. It names the node (its ring member name; the
// address in static mode) and wraps the cause: a dial or I/O error,
// ErrServerDown, or the ctx's error.
type NodeError struct {
	// Node is the member name of the server.
	Node string
	// Addr is its memcache address.
	Addr string
	// Op is the call that failed: "get", "set", ...
	Op string
	// Err is the cause.
	Err error

	miss bool // a read answered as a miss
}

// Error says which call failed on which node, and why.
func (e *NodeError) Error() string {
	var b strings.Builder
	b.WriteString("client: ")
	b.WriteString(e.Op)
	b.WriteString(" on node ")
	b.WriteString(e.Node)
	if e.Addr != e.Node {
		b.WriteString(" (" + e.Addr + ")")
	}
	b.WriteString(" failed: ")
	b.WriteString(e.Err.Error())
	if e.miss {
		b.WriteString("; answered as a miss")
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *NodeError) Unwrap() error { return e.Err }

// Is reports true for ErrCacheMiss when the failed call was a read answered
// as a miss (see Config.GetFailover).
func (e *NodeError) Is(target error) bool { return e.miss && target == ErrCacheMiss }
