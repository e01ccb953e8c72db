// Package memcachedtest starts a real memcached on a loopback port for tests,
// in the style of net/http/httptest.
//
// Start finds the memcached binary (on PATH, else /usr/bin/memcached), runs it
// in the text protocol only (-B ascii, so input starting with byte 0x80 is not
// taken for the binary protocol), waits until it answers "version", and
// registers a cleanup that kills the process by pid and waits for it. When the
// binary is missing, Start skips the test, unless the environment variable
// CACHE_REQUIRE_MEMCACHED is "1" (set by .ci/run), in which case it fails it:
// in CI a missing reference is an error, never a silent skip.
//
// The package uses the standard library only. Each call starts its own
// process, so tests using it may run in parallel.
package memcachedtest
