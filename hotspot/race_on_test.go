//go:build race

package hotspot

// raceEnabled skips the heavy, single-goroutine evaluation under -race: it
// finds nothing there and would take minutes.
const raceEnabled = true
