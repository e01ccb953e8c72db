// Package connpool keeps per-address pools of memcache text-protocol
// connections, shared by node (forwarding to peers) and client (talking to
// owners).
//
// A Pool bounds, per address, the connections kept idle (Config.MaxIdle) and
// the connections open at once (Config.MaxActive): a Get past the bound waits
// for a Put under its ctx and never queues unbounded work. A failed dial puts
// the address in a full-jitter exponential backoff during which Get fails fast
// with a *DialError that matches ErrBackoff, so a fleet of clients does not
// redial a restarted node in the same instant. A connection that sat idle for
// longer than Config.HealthAfter is checked with the meta no-op ("mn", which
// must be answered "MN") before Get hands it out, so a server that keeps the
// TCP connection alive but no longer answers is found and replaced.
//
// Whether a connection goes back to the pool after a request is decided by one
// function, Reusable, applied by Put to the request's error.
//
// All methods of Pool are safe for concurrent use. A Conn belongs to the one
// goroutine that got it until it is Put. The pool starts no goroutine per
// connection; its one background goroutine, which closes connections idle past
// Config.IdleTimeout, is started by New and stopped (and waited for) by Close.
// See docs/connpool.md for the defaults and the reasons behind them.
package connpool
