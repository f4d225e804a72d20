package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// defaultDashboardStreamsPerIP is the documented default of
// SECKILL_DASHBOARD_STREAMS_PER_IP.
const defaultDashboardStreamsPerIP = 8

// openStreamFrom GETs a dashboard stream as client ip (X-Forwarded-For,
// believed only from a trusted proxy). A 200 stream stays open until the
// returned close (or the test's end); any other answer is read and closed.
func openStreamFrom(t *testing.T, base, activity, ip string) (status int, body map[string]any, closeStream func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/dashboard/activities/"+activity+"/stream", nil)
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, nil, func() { cancel(); resp.Body.Close() }
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &body)
	if body == nil {
		body = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, body, cancel
}

// wantPerIPRefusal checks the answer to one stream too many from one IP: the
// status and code of the total cap (503 BUSY), naming the per-IP limit.
func wantPerIPRefusal(t *testing.T, status int, body map[string]any, limit int) {
	t.Helper()
	msg, _ := body["message"].(string)
	if status != http.StatusServiceUnavailable || body["code"] != "BUSY" || !strings.Contains(msg, "per-IP") || !strings.Contains(msg, fmt.Sprint(limit)) {
		t.Fatalf("stream %d from one IP: %d %v, want 503 BUSY naming the per-IP limit of %d", limit+1, status, body, limit)
	}
}

// N streams from one client IP are served, the N+1st is refused, and another
// client IP still gets one: one address cannot take every dashboard slot.
func TestDashboardStreamsCappedPerClientIP(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: func(o *options) {
		fastDashboard(o)
		o.TrustedProxies = []string{"127.0.0.1"}
	}})
	t.Cleanup(f.srv.CloseStreams)
	act := openActivity(f, 1)
	for i := range defaultDashboardStreamsPerIP {
		if code, body, _ := openStreamFrom(t, f.ts.URL, act, "203.0.113.7"); code != http.StatusOK {
			t.Fatalf("stream %d from 203.0.113.7: %d %v, want 200", i+1, code, body)
		}
	}
	code, body, _ := openStreamFrom(t, f.ts.URL, act, "203.0.113.7")
	wantPerIPRefusal(t, code, body, defaultDashboardStreamsPerIP)
	if code, body, _ := openStreamFrom(t, f.ts.URL, act, "198.51.100.9"); code != http.StatusOK {
		t.Fatalf("a stream from another IP: %d %v, want 200", code, body)
	}
}

// The per-IP cap is configurable; a stream that ends gives its slot back;
// without a trusted proxy a spoofed X-Forwarded-For does not pick the key.
func TestDashboardStreamsPerIPOption(t *testing.T) {
	t.Run("configured, and released", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{tweak: func(o *options) {
			fastDashboard(o)
			o.TrustedProxies = []string{"127.0.0.1"}
			o.DashboardStreamsPerIP = 2
		}})
		t.Cleanup(f.srv.CloseStreams)
		act := openActivity(f, 1)
		var closers []func()
		for range 2 {
			code, body, closeStream := openStreamFrom(t, f.ts.URL, act, "203.0.113.7")
			if code != http.StatusOK {
				t.Fatalf("stream from 203.0.113.7: %d %v", code, body)
			}
			closers = append(closers, closeStream)
		}
		code, body, _ := openStreamFrom(t, f.ts.URL, act, "203.0.113.7")
		wantPerIPRefusal(t, code, body, 2)
		if code, body, _ := openStreamFrom(t, f.ts.URL, act, "198.51.100.9"); code != http.StatusOK {
			t.Fatalf("a stream from another IP: %d %v, want 200", code, body)
		}
		closers[0]()
		// The server notices the viewer left when its request context ends.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			code, body, _ := openStreamFrom(t, f.ts.URL, act, "203.0.113.7")
			if code == http.StatusOK {
				break
			}
			wantPerIPRefusal(t, code, body, 2)
			if time.Now().After(deadline) {
				t.Fatal("the closed stream's slot never came back")
			}
		}
	})
	t.Run("spoofed X-Forwarded-For from an untrusted peer", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{tweak: func(o *options) {
			fastDashboard(o)
			o.DashboardStreamsPerIP = 2
		}})
		t.Cleanup(f.srv.CloseStreams)
		act := openActivity(f, 1)
		for i := range 2 {
			if code, body, _ := openStreamFrom(t, f.ts.URL, act, fmt.Sprintf("203.0.113.%d", i+1)); code != http.StatusOK {
				t.Fatalf("stream %d: %d %v", i+1, code, body)
			}
		}
		code, body, _ := openStreamFrom(t, f.ts.URL, act, "203.0.113.99")
		wantPerIPRefusal(t, code, body, 2)
	})
}
