// Package conformance is the harness of the memcached conformance corpus
// (node/testdata/conformance, described in docs/conformance.md): it parses
// the corpus files into cases (LoadCases), plays a case against a server over
// TCP (Play) and returns its normalized transcript (cas uniques, the version
// and volatile stats rewritten, stats fields memcached has and our servers do
// not dropped), and reads and writes the golden transcripts memcached
// produced (ReadGolden, WriteGolden), so that a test can compare any server
// with memcached, live or through the golden files.
//
// The package uses the standard library only; starting the servers is up to
// its users (node's and cmd/cacheproxy's TestConformance).
package conformance
