//go:build race

package event

// raceEnabled: under the race detector sync.Pool drops a random share of Puts on purpose, so
// allocation counts of pooled paths say nothing there.
const raceEnabled = true
