// Package workload generates deterministic key streams for tests, benchmarks
// and cmd/cachebench.
//
// Every stream is a pure function of its parameters and seed: the same seed
// yields the same sequence of key ids on every machine and Go release (the
// generator is a self-contained splitmix64, not math/rand). Streams read no
// clock: Scenario runs on a virtual clock that advances by request count
// (Rate requests per virtual second), so shifts and flash crowds happen at the
// same request index in every run. A load generator that wants wall time
// instead calls Scenario.AdvanceTo with the elapsed time before each batch
// (the stream is then a pure function of its calls), and gives every
// connection the same Seed and its own DrawSeed, so that all of them see one
// hot set.
//
// Key ids map to canonical key strings with Key and AppendKey.
//
// Concurrency: a ZipfTable is immutable and may be shared by any number of
// goroutines. Every stream (Zipf, Uniform, Scenario) holds mutable generator
// state and is NOT safe for concurrent use: give each goroutine its own,
// e.g. table.NewStream(seed+uint64(i)).
//
// The package imports only the standard library.
package workload

// Stream yields key ids.
type Stream interface{ Next() int }
