//go:build !race

package cdc

// raceDetector: see race_on_test.go.
const raceDetector = false
