//go:build race

package cdc

// raceDetector: the race detector is on, and sync.Pool drops items at
// random, so a decode's allocation count is not the decoder's.
const raceDetector = true
