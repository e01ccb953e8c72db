// Package hotspot finds the keys that take a disproportionate share of a
// node's reads, within a fraction of a second, in bounded memory and at a
// cost per read small enough to leave on in production.
//
// An Analyzer keeps a time-decayed HeavyKeeper sketch (Depth x Width
// buckets of a 32-bit fingerprint and a saturating count) that admits
// heavy keys into a small candidate table, where their reads, writes and
// edge-reported reads are counted exactly. Reads are sampled at a rate that
// adapts to traffic so that a key at the threshold still gets about
// Config.MinSamples samples per window. Once per Config.Tick the owner calls
// Tick: counts decay by exp(-Tick/Window), so a count is the read rate over
// a window of Config.Window, and a key is hot when that rate is at least
// max(Config.MinRate, Config.Share x node read rate). At most Config.MaxHot
// keys are hot; a hot key stays hot until its count falls below
// Config.Hysteresis times the threshold and it has been hot for
// Config.MinHot; a key whose writes exceed Config.MaxWriteRatio of its reads
// is never hot. docs/hotspot.md has the algorithm, the parameters, and the
// evaluation against an exact sliding window.
//
// The package never reads the clock (time is passed to Tick), starts no
// goroutines and opens no sockets.
//
// Concurrency: Record, RecordWrite and Report are safe for concurrent use
// by any number of goroutines and take no lock on the common path (atomics
// only; a lock only when a key first enters the candidate table). A
// Recorder (NewRecorder) is a cheaper per-goroutine front end: use one per
// connection goroutine, never one from two goroutines at once. Tick, Hot
// and Stats must be called from one goroutine, the owner's, and may run
// concurrently with the recorders.
package hotspot
