package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestDeadLetterRoutesWithoutANATSQueue: on a queue that cannot be read
// without consuming (Kafka) the routes say so with 501 and how to do it
// instead, behind the admin token like every admin route.
func TestDeadLetterRoutesWithoutANATSQueue(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/api/v1/admin/dead-letters/orders", ""},
		{"POST", "/api/v1/admin/dead-letters/orders/replay", `{"all":true}`},
		{"POST", "/api/v1/admin/dead-letters/orders/discard", `{"seqs":[1]}`},
	} {
		if r := f.call(tc.method, tc.path, "", strings.NewReader(tc.body)); r.status != http.StatusUnauthorized {
			t.Errorf("%s %s without the admin token: %d, want 401", tc.method, tc.path, r.status)
		}
		r := f.call(tc.method, tc.path, adminToken, strings.NewReader(tc.body))
		if r.status != http.StatusNotImplemented || r.body["code"] != "NOT_IMPLEMENTED" || !strings.Contains(r.raw, "Kafka") {
			t.Errorf("%s %s: %d %v %q; want 501 NOT_IMPLEMENTED naming Kafka", tc.method, tc.path, r.status, r.body["code"], r.raw)
		}
	}
}
