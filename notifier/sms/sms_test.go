package sms_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/seckill/notifier/channel"
	"github.com/flashsale/seckill/notifier/sms"
)

func msg() channel.SMSMessage {
	return channel.SMSMessage{To: "+15550123", Text: `Order 42 "Kopfhörer" reserved`, IdempotencyKey: "evt-1:sms"}
}

// The default body is JSON with the number, the text and the idempotency
// key; the auth header and the Idempotency-Key header go along.
func TestWebhookPostsJSON(t *testing.T) {
	var got struct {
		To, Text, Key string
		Auth, IdemKey string
		ContentType   string
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			To   string `json:"to"`
			Text string `json:"text"`
			Key  string `json:"idempotency_key"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("body is not the default JSON: %v", err)
		}
		got.To, got.Text, got.Key = body.To, body.Text, body.Key
		got.Auth, got.IdemKey, got.ContentType = r.Header.Get("X-Api-Key"), r.Header.Get(sms.IdempotencyHeader), r.Header.Get("Content-Type")
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	w, err := sms.NewWebhook(sms.WebhookConfig{AllowHTTP: true, URL: srv.URL + "/send", AuthHeader: "X-Api-Key: k-123"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SendSMS(t.Context(), msg()); err != nil {
		t.Fatalf("SendSMS: %v", err)
	}
	m := msg()
	if got.To != m.To || got.Text != m.Text || got.Key != m.IdempotencyKey {
		t.Errorf("provider got to=%q text=%q key=%q, want %q %q %q", got.To, got.Text, got.Key, m.To, m.Text, m.IdempotencyKey)
	}
	if got.Auth != "k-123" || got.IdemKey != m.IdempotencyKey || got.ContentType != "application/json" {
		t.Errorf("headers: auth %q, idempotency %q, content-type %q", got.Auth, got.IdemKey, got.ContentType)
	}
}

// A custom body template shapes the provider's JSON.
func TestWebhookCustomBody(t *testing.T) {
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
	}))
	t.Cleanup(srv.Close)
	w, err := sms.NewWebhook(sms.WebhookConfig{AllowHTTP: true, URL: srv.URL, Body: `{"messages":[{"destination":{{json .To}},"content":{{json .Text}}}]}`})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SendSMS(t.Context(), msg()); err != nil {
		t.Fatal(err)
	}
	want := `{"messages":[{"destination":"+15550123","content":"Order 42 \"Kopfhörer\" reserved"}]}`
	if string(body) != want {
		t.Errorf("body %s, want %s", body, want)
	}
}

// 2xx is accepted; 5xx, 408, 425 and 429 are transient; other 4xx are
// permanent; a provider that does not answer in time is transient.
func TestWebhookClassifiesResponses(t *testing.T) {
	tests := []struct {
		status    int
		ok        bool
		permanent bool
	}{
		{200, true, false}, {202, true, false}, {204, true, false},
		{400, false, true}, {401, false, true}, {403, false, true}, {404, false, true}, {422, false, true},
		{408, false, false}, {425, false, false}, {429, false, false},
		{500, false, false}, {502, false, false}, {503, false, false},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				calls.Add(1)
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(`{"error":"details"}`))
			}))
			t.Cleanup(srv.Close)
			w, err := sms.NewWebhook(sms.WebhookConfig{AllowHTTP: true, URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			err = w.SendSMS(t.Context(), msg())
			if (err == nil) != tt.ok {
				t.Fatalf("status %d: err = %v, want ok=%v", tt.status, err, tt.ok)
			}
			if err != nil && channel.IsPermanent(err) != tt.permanent {
				t.Errorf("status %d: IsPermanent(%v) = %v, want %v", tt.status, err, !tt.permanent, tt.permanent)
			}
			if err != nil && !strings.Contains(err.Error(), "details") {
				t.Errorf("error %q does not carry the provider's answer", err)
			}
			if calls.Load() != 1 {
				t.Errorf("%d calls, want 1 (the texter never retries by itself)", calls.Load())
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(func() { close(release); srv.Close() })
		w, err := sms.NewWebhook(sms.WebhookConfig{AllowHTTP: true, URL: srv.URL + "/?token=SECRET-IN-QUERY", Timeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		err = w.SendSMS(t.Context(), msg())
		if err == nil || channel.IsPermanent(err) {
			t.Fatalf("err = %v, want a transient timeout", err)
		}
		if strings.Contains(err.Error(), "SECRET-IN-QUERY") {
			t.Errorf("error shows the URL's query: %v", err)
		}
	})
}

func TestNewWebhookRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  sms.WebhookConfig
		want string
	}{
		{"relative URL", sms.WebhookConfig{URL: "/send"}, "URL"},
		{"ftp URL", sms.WebhookConfig{URL: "ftp://x/send"}, "URL"},
		{"auth header without colon", sms.WebhookConfig{AllowHTTP: true, URL: "http://x", AuthHeader: "Bearer abc"}, "auth header"},
		{"auth header without value", sms.WebhookConfig{AllowHTTP: true, URL: "http://x", AuthHeader: "Authorization:"}, "auth header"},
		{"body not a template", sms.WebhookConfig{AllowHTTP: true, URL: "http://x", Body: `{"to":{{json .To}`}, "body template"},
		{"body not JSON", sms.WebhookConfig{AllowHTTP: true, URL: "http://x", Body: `to={{.To}}`}, "invalid JSON"},
		{"body unknown field", sms.WebhookConfig{AllowHTTP: true, URL: "http://x", Body: `{"to":{{json .Phone}}}`}, "body template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sms.NewWebhook(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewWebhook: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	_, err := sms.NewWebhook(sms.WebhookConfig{AllowHTTP: true, URL: "http://x", AuthHeader: "Bad Name: top-secret"})
	if err == nil || strings.Contains(err.Error(), "top-secret") {
		t.Errorf("bad auth header: %v (must fail without showing the value)", err)
	}
}

func TestLogTexter(t *testing.T) {
	var buf bytes.Buffer
	if err := sms.NewLog(slog.New(slog.NewTextHandler(&buf, nil))).SendSMS(t.Context(), msg()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "+15550123") || !strings.Contains(buf.String(), "Order 42") {
		t.Errorf("log %q lacks the number or the text", buf.String())
	}
}
