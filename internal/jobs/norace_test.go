//go:build !race

package jobs_test

// raceEnabled is true when the tests run with the race detector.
const raceEnabled = false
