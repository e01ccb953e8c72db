// Package protocol implements the memcache text protocol as memcached 1.6
// speaks it: request parsing, response writing, and a Server that runs the
// accept loop and one goroutine per connection, dispatching each parsed
// request to a Handler, as net/http does.
//
// The parser follows memcached's own tokenizer and number parsing, so a
// request that memcached rejects is rejected here with the same words
// ("ERROR", "CLIENT_ERROR bad command line format", ...), and a request it
// accepts is accepted. Pipelined requests are answered in order; replies are
// buffered and written once the connection has no more buffered input, so a
// batch of pipelined requests costs one write.
//
// protocol imports nothing else of this module. It starts goroutines only in
// Server.Serve, and Server.Shutdown stops and waits for all of them. A Handler
// may take over its connection for a long-lived stream with
// ResponseWriter.Hijack, as http.Hijacker does.
package protocol
