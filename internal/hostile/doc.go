// Package hostile holds the bad-input test of the node and the proxy: a
// corpus of hostile inputs (oversized lines and blocks, wrong lengths, NULs,
// negative and overflowing numbers, garbage, abuse of the watch stream, slow
// drips, half-closed sockets, 10,000 idle connections) sent to real cached
// and cacheproxy processes, which must answer each with an error or a close,
// stay up, stay under a memory bound and keep serving other clients. The
// package has no code of its own; see hostile_test.go and docs/security.md.
package hostile
