//go:build !race

package hotspot

// raceEnabled is false in builds without -race.
const raceEnabled = false
