//go:build !race

package ring

// raceEnabled is false: TestNew_scales1to100 builds every size, 1 to 100.
const raceEnabled = false
