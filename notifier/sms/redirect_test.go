package sms_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/flashsale/seckill/notifier/sms"
)

// A provider answering with a redirect must not get the secret header
// carried to wherever it points: the webhook follows no redirect at all (to
// another host or to its own), and the send fails naming the Location.
func TestWebhookDoesNotFollowRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	var leaked atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		leaked.Store(r.Header.Get("X-Api-Key"))
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(other.Close)

	for _, tc := range []struct {
		name   string
		status int
		target func(provider string) string
	}{
		{"302 to another host", http.StatusFound, func(string) string { return other.URL + "/steal?x=1" }},
		{"307 to another host", http.StatusTemporaryRedirect, func(string) string { return other.URL + "/steal" }},
		{"308 to another host", http.StatusPermanentRedirect, func(string) string { return other.URL + "/steal" }},
		{"301 to its own host", http.StatusMovedPermanently, func(p string) string { return p + "/moved" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			var provider *httptest.Server
			provider = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) > 1 {
					w.WriteHeader(http.StatusAccepted) // a followed same-host redirect
					return
				}
				http.Redirect(w, r, tc.target(provider.URL), tc.status)
			}))
			t.Cleanup(provider.Close)
			w, err := sms.NewWebhook(sms.WebhookConfig{URL: provider.URL + "/send", AuthHeader: "X-Api-Key: top-secret-key", AllowHTTP: true})
			if err != nil {
				t.Fatal(err)
			}
			err = w.SendSMS(t.Context(), msg())
			if err == nil {
				t.Fatal("SendSMS succeeded through a redirect")
			}
			loc := tc.target(provider.URL)
			if i := strings.IndexByte(loc, '?'); i >= 0 {
				loc = loc[:i]
			}
			if !strings.Contains(err.Error(), "redirect") || !strings.Contains(err.Error(), loc) {
				t.Errorf("error %q does not say it was a redirect to %s", err, loc)
			}
			if strings.Contains(err.Error(), "top-secret-key") {
				t.Errorf("error shows the secret: %v", err)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("provider called %d times, want 1 (no redirect followed)", n)
			}
		})
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the redirect target got %d requests (auth header %q): the secret left for another host", n, leaked.Load())
	}
}

// A client passed in (tests, custom transports) follows no redirect either.
func TestWebhookWithOwnClientDoesNotFollowRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	provider := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(provider.Close)
	client := provider.Client() // trusts httptest's certificate, for both servers
	w, err := sms.NewWebhook(sms.WebhookConfig{URL: provider.URL, AuthHeader: "Authorization: Bearer top-secret", Client: client})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SendSMS(t.Context(), msg()); err == nil || !strings.Contains(err.Error(), other.URL+"/steal") {
		t.Fatalf("SendSMS: %v, want a failure naming the Location %s/steal", err, other.URL)
	}
	if elsewhere.Load() != 0 {
		t.Fatal("the redirect was followed to another host")
	}
	if client.CheckRedirect != nil {
		t.Error("NewWebhook changed the caller's client")
	}
}

// http:// sends the secret header and the buyers' numbers in clear: refused
// unless allowed (local tests against a plain-HTTP stub).
func TestWebhookRefusesPlainHTTPUnlessAllowed(t *testing.T) {
	_, err := sms.NewWebhook(sms.WebhookConfig{URL: "http://sms.example.com/send"})
	if err == nil || !strings.Contains(err.Error(), "https") {
		t.Fatalf("NewWebhook(http://): %v, want a refusal asking for https", err)
	}
	if _, err := sms.NewWebhook(sms.WebhookConfig{URL: "http://sms.example.com/send", AllowHTTP: true}); err != nil {
		t.Fatalf("NewWebhook(http://, AllowHTTP): %v", err)
	}
	if _, err := sms.NewWebhook(sms.WebhookConfig{URL: "https://sms.example.com/send"}); err != nil {
		t.Fatalf("NewWebhook(https://): %v", err)
	}
}
