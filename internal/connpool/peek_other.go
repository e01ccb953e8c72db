//go:build !unix

package connpool

// peerClosed cannot look at the socket without waiting on this platform;
// ok false sends the caller to its fallback.
func (c *Conn) peerClosed() (closed, ok bool) { return false, false }
