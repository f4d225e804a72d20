//go:build race

package httpapi_test

// raceDetector: under the race detector sync.Pool drops a quarter of what
// is put back, at random, so allocation counts of pooled paths jitter.
const raceDetector = true
