package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flashsale/seckill/gateway/httpapi"
)

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	name string
	data string
}

// openStream GETs a dashboard stream and returns its events as they come;
// the channel closes when the stream ends. The stream is closed at cleanup.
func openStream(t *testing.T, base, activity, bearer string) (int, <-chan sseEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/dashboard/activities/"+activity+"/stream", nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan sseEvent, 1024)
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		close(events)
		return resp.StatusCode, events
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	go func() {
		defer close(events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.data != "" {
					events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return resp.StatusCode, events
}

// nextSample waits for the next "sample" event.
func nextSample(t *testing.T, events <-chan sseEvent, within time.Duration) (httpapi.DashboardSample, bool) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return httpapi.DashboardSample{}, false
			}
			if ev.name != "sample" {
				continue
			}
			var s httpapi.DashboardSample
			if err := json.Unmarshal([]byte(ev.data), &s); err != nil {
				t.Fatalf("sample %q: %v", ev.data, err)
			}
			return s, true
		case <-deadline:
			t.Fatalf("no sample within %v", within)
		}
	}
}

func fastDashboard(o *options) { o.DashboardInterval = 20 * time.Millisecond }

func TestDashboardStreamAccess(t *testing.T) {
	tests := []struct {
		name     string
		demo     bool
		bearer   string
		activity string
		want     int
	}{
		{"demo mode is open", true, "", "", http.StatusOK},
		{"production needs the admin token", false, "", "", http.StatusUnauthorized},
		{"production refuses a user token", false, "user", "", http.StatusUnauthorized},
		{"production with the admin token", false, adminToken, "", http.StatusOK},
		{"unknown activity", true, "", "999", http.StatusNotFound},
		{"malformed activity", true, "", "x1", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{tweak: func(o *options) { fastDashboard(o); o.Demo = tt.demo }})
			t.Cleanup(f.srv.CloseStreams)
			act := openActivity(f, 3)
			if tt.activity != "" {
				act = tt.activity
			}
			bearer := tt.bearer
			if bearer == "user" {
				bearer = f.token("mallory")
			}
			code, events := openStream(t, f.ts.URL, act, bearer)
			if code != tt.want {
				t.Fatalf("status %d, want %d", code, tt.want)
			}
			if code != http.StatusOK {
				return
			}
			first := <-events
			if first.name != "history" || !strings.HasPrefix(first.data, "[") {
				t.Fatalf("first event %+v, want the history array", first)
			}
			if s, ok := nextSample(t, events, 5*time.Second); !ok || s.ActivityID != act || s.Stock != 3 {
				t.Fatalf("sample %+v (ok=%v), want activity %s with stock 3", s, ok, act)
			}
		})
	}
}

// The live numbers follow the buys: outcomes counted per activity, units
// left and queued orders from Redis and the database.
func TestDashboardCountsBuys(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: fastDashboard})
	t.Cleanup(f.srv.CloseStreams)
	act := openActivity(f, 3)
	other := openActivity(f, 3)
	_, events := openStream(t, f.ts.URL, act, "")

	buys := []struct {
		user string
		want int
	}{{"u0", 202}, {"u0", 409}, {"u1", 202}, {"u2", 202}, {"u3", 410}, {"u4", 410}}
	for i, b := range buys {
		if r := f.buy(act, b.user, ""); r.status != b.want {
			t.Fatalf("buy %d by %s: %d %s, want %d", i, b.user, r.status, r.raw, b.want)
		}
	}
	if r := f.buy(other, "u9", ""); r.status != http.StatusAccepted { // another activity: not counted here
		t.Fatalf("buy on the other activity: %d", r.status)
	}
	if r := f.call("POST", "/api/v1/activities/"+act+"/orders", "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("buy without a token: %d", r.status)
	}

	var s httpapi.DashboardSample
	for deadline := time.Now().Add(5 * time.Second); ; {
		var ok bool
		if s, ok = nextSample(t, events, 5*time.Second); !ok {
			t.Fatal("stream ended")
		}
		if s.IngressTotal["accepted"] == 3 && s.IngressTotal["sold_out"] == 2 && s.IngressTotal["already_purchased"] == 1 && s.IngressTotal["rejected"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts never matched: %+v", s.IngressTotal)
		}
	}
	// No worker consumes in this fixture: the three orders stay queued.
	if s.Remaining != 0 || s.Queued != 3 || s.Created != 0 || s.State != "sold_out" || s.Error != "" {
		t.Fatalf("sample %+v: want 0 left, 3 queued, 0 created, sold_out", s)
	}
	if s.QueueDepth != nil {
		t.Fatalf("queue depth %v without a queue depth reader", *s.QueueDepth)
	}
}

// The queue's depth, as its reader gives it, shows in every sample; an
// unknown depth (the queue unreadable) shows none.
func TestDashboardReadsQueueDepth(t *testing.T) {
	for _, tc := range []struct {
		name  string
		depth func() (int, bool)
		want  *float64
	}{
		{"known", func() (int, bool) { return 42, true }, ptr(42.0)},
		{"unknown", func() (int, bool) { return -1, false }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{tweak: func(o *options) { fastDashboard(o); o.QueueDepth = tc.depth }})
			t.Cleanup(f.srv.CloseStreams)
			_, events := openStream(t, f.ts.URL, openActivity(f, 1), "")
			s, ok := nextSample(t, events, 5*time.Second)
			if !ok || (s.QueueDepth == nil) != (tc.want == nil) || s.QueueDepth != nil && *s.QueueDepth != *tc.want {
				t.Fatalf("sample %+v, want queue depth %v", s, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// The server's WriteTimeout (30 s in the app) would cut a stream; every
// write moves the deadline, so the stream outlives it by far.
func TestDashboardStreamOutlivesWriteTimeout(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: fastDashboard})
	ts := httptest.NewUnstartedServer(f.srv)
	ts.Config.WriteTimeout = 200 * time.Millisecond
	ts.Start()
	t.Cleanup(ts.Close)
	t.Cleanup(f.srv.CloseStreams)
	_, events := openStream(t, ts.URL, openActivity(f, 1), "")
	start := time.Now()
	n := 0
	for time.Since(start) < 5*ts.Config.WriteTimeout {
		if _, ok := nextSample(t, events, 2*time.Second); !ok {
			t.Fatalf("the stream ended after %v and %d samples (WriteTimeout %v)", time.Since(start), n, ts.Config.WriteTimeout)
		}
		n++
	}
}

// CloseStreams (on shutdown) ends the open streams at once and refuses new
// ones, so http.Server.Shutdown does not wait for viewers to leave.
func TestDashboardCloseStreamsEndsThem(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: fastDashboard})
	act := openActivity(f, 1)
	_, events := openStream(t, f.ts.URL, act, "")
	if _, ok := nextSample(t, events, 5*time.Second); !ok {
		t.Fatal("no sample")
	}
	done := make(chan struct{})
	go func() { f.srv.CloseStreams(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("CloseStreams did not return")
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-events:
			if !ok {
				if code, _ := openStream(t, f.ts.URL, act, ""); code != http.StatusServiceUnavailable {
					t.Fatalf("a new stream after CloseStreams: %d, want 503", code)
				}
				f.srv.CloseStreams() // twice is fine
				return
			}
		case <-timeout:
			t.Fatal("the stream is still open after CloseStreams")
		}
	}
}

func TestListActivities(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	now := time.Now()
	old := f.createActivity(5, now.Add(-72*time.Hour), now.Add(-48*time.Hour))
	upcoming := f.createActivity(5, now.Add(time.Hour), now.Add(2*time.Hour))
	active := openActivity(f, 2)
	f.buy(active, "a", "")
	f.buy(active, "b", "")

	r := f.call("GET", "/api/v1/activities", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	var body struct {
		Activities []struct {
			ID        string `json:"id"`
			State     string `json:"state"`
			Remaining int64  `json:"remaining"`
		} `json:"activities"`
		ServerTime time.Time `json:"server_time"`
	}
	if err := json.Unmarshal([]byte(r.raw), &body); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range body.Activities {
		got = append(got, a.ID+":"+a.State)
		if a.ID == old {
			t.Errorf("activity %s ended two days ago and is still listed", old)
		}
	}
	want := []string{active + ":sold_out", upcoming + ":upcoming"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("listed %v, want %v (newest first)", got, want)
	}
	if body.ServerTime.IsZero() {
		t.Fatal("no server_time")
	}
}

func TestDashboardPageIsServed(t *testing.T) {
	pages := map[string]string{"dashboard.html": "<title>dash</title>", "index.html": "<title>sale</title>"}
	f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.Static = http.FS(mapFS(pages)) }})
	for path, want := range map[string]string{"/dashboard": "dash", "/": "sale"} {
		r := f.call("GET", path, "", nil)
		if r.status != http.StatusOK || !strings.Contains(r.raw, want) {
			t.Errorf("GET %s: %d %q, want the %s page", path, r.status, r.raw, want)
		}
	}
}

func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for name, text := range files {
		m[name] = &fstest.MapFile{Data: []byte(text)}
	}
	return m
}

// With Redis away, samples keep coming, say which backend failed, and keep
// the last numbers they could not refresh.
func TestDashboardSamplesThroughAnOutage(t *testing.T) {
	f := newFixture(t, fixtureOpts{tweak: fastDashboard})
	t.Cleanup(f.srv.CloseStreams)
	act := openActivity(f, 4)
	if r := f.buy(act, "a", ""); r.status != http.StatusAccepted {
		t.Fatalf("buy: %d", r.status)
	}
	_, events := openStream(t, f.ts.URL, act, "")
	for {
		s, ok := nextSample(t, events, 5*time.Second)
		if !ok {
			t.Fatal("stream ended")
		}
		if s.Remaining == 3 {
			break
		}
	}
	f.redis.Close()
	for deadline := time.Now().Add(5 * time.Second); ; {
		s, ok := nextSample(t, events, 5*time.Second)
		if !ok {
			t.Fatal("the stream ended during the outage")
		}
		if strings.Contains(s.Error, "redis") {
			if s.Remaining != 3 || s.Queued != 1 || s.Stock != 4 {
				t.Fatalf("sample during the outage %+v: want the last numbers (3 left, 1 queued)", s)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sample reported the Redis outage; last %+v", s)
		}
	}
}
