package chaos

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestFiredAlerts(t *testing.T) {
	from := time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)
	to := from.Add(90 * time.Second)
	var query, at string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		query, at = r.URL.Query().Get("query"), r.URL.Query().Get("time")
		s := func(d time.Duration) float64 { return float64(from.Add(d).UnixMilli()) / 1000 }
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"matrix","result":[
{"metric":{"__name__":"ALERTS","alertname":"SeckillOrderQueueBehind","alertstate":"firing","severity":"warning"},"values":[[%.3f,"1"],[%.3f,"1"],[%.3f,"1"]]},
{"metric":{"__name__":"ALERTS","alertname":"SeckillReserveErrors","alertstate":"firing","severity":"critical","instance":"127.0.0.1:18011"},"values":[[%.3f,"1"]]}]}}`,
			s(20*time.Second), s(21*time.Second), s(30*time.Second), s(9*time.Second))
	}))
	t.Cleanup(srv.Close)

	alerts, err := FiredAlerts(context.Background(), srv.Client(), srv.URL, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if query != `ALERTS{alertstate="firing"}[90001ms]` || at != fmt.Sprintf("%.3f", float64(to.UnixMilli())/1000) {
		t.Errorf("query %q at %s", query, at)
	}
	if len(alerts) != 2 {
		t.Fatalf("%d alerts: %+v", len(alerts), alerts)
	}
	// In the order they first fired.
	if a := alerts[0]; a.String() != "SeckillReserveErrors (critical) instance=127.0.0.1:18011" || !a.First.Equal(from.Add(9*time.Second)) || !a.Last.Equal(a.First) {
		t.Errorf("first alert %s from %v to %v", a, a.First, a.Last)
	}
	if a := alerts[1]; a.Name != "SeckillOrderQueueBehind" || len(a.Labels) != 0 || !a.First.Equal(from.Add(20*time.Second)) || !a.Last.Equal(from.Add(30*time.Second)) {
		t.Errorf("second alert %s from %v to %v", a, a.First, a.Last)
	}

	if _, err := FiredAlerts(context.Background(), srv.Client(), srv.URL, to, from); err == nil {
		t.Error("a window that ends before it starts was accepted")
	}
	if _, err := FiredAlerts(context.Background(), srv.Client(), "127.0.0.1:9090", from, to); err == nil || !strings.Contains(err.Error(), "want http://host:port") {
		t.Errorf("a URL without a scheme: %v", err)
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"parse error"}`)
	}))
	t.Cleanup(bad.Close)
	if _, err := FiredAlerts(context.Background(), bad.Client(), bad.URL, from, to); err == nil || !strings.Contains(err.Error(), "parse error") {
		t.Errorf("an error answer: %v", err)
	}
}
