//go:build race

package ring

// raceEnabled thins TestNew_scales1to100 under -race: it is one goroutine
// calling consistent, where the detector finds nothing and slows New ~20x.
const raceEnabled = true
