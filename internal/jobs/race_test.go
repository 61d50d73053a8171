//go:build race

package jobs_test

// raceEnabled is true when the tests run with the race detector, which
// makes a finish about ten times slower: the property test then keeps to
// smaller histories (the full ones run without it).
const raceEnabled = true
