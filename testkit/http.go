package testkit

import (
	"io"
	"net/http"
	"testing"
)

// Get returns the status and body of GET url, failing the test when no
// answer comes: for tests of the ops listeners (/healthz, /readyz,
// /metrics).
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read the answer: %v", url, err)
	}
	return resp.StatusCode, string(b)
}
