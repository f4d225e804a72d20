package app

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A dashboard viewer's stream never goes idle; Shutdown must end it and
// return promptly, not wait for its deadline.
func TestShutdownEndsDashboardStreams(t *testing.T) {
	a, c := startApp(t, nil)
	act := c.createActivity(t, 5, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	resp, err := http.Get(c.base + "/api/v1/dashboard/activities/" + act + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "event: history") {
	}
	// Keep reading, as a browser does, until the server ends the stream.
	ended := make(chan struct{})
	go func() {
		for sc.Scan() {
		}
		close(ended)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a dashboard open: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("shutdown took %v with a dashboard open", d)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream is still open after shutdown")
	}
}
