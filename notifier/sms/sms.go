// Package sms delivers the notifier's text messages through an HTTP
// provider. Providers differ in URL, authentication and body, so the one
// implementation here is a generic JSON webhook configured by those three
// things; a provider with a real SDK gets its own channel.Texter. A logging
// texter stands in when no provider is configured (demo mode).
//
// The webhook carries a secret (the auth header) and the buyers' phone
// numbers, so it only talks to the configured URL: it refuses an http:// URL
// unless WebhookConfig.AllowHTTP says so (local tests against a stub), and it
// follows no redirect at all. A redirect answer is a failed send that names
// the Location; fix the configured URL to the one it points at.
package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"text/template"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/flashsale/seckill/notifier/channel"
)

// DefaultBody is the webhook body when none is configured. The template
// sees .To, .Text and .Key (the idempotency key); the json function quotes
// a value as a JSON string.
const DefaultBody = `{"to":{{json .To}},"text":{{json .Text}},"idempotency_key":{{json .Key}}}`

// IdempotencyHeader carries SMSMessage.IdempotencyKey on every request, so
// providers that support it drop a resend.
const IdempotencyHeader = "Idempotency-Key"

// WebhookConfig configures a Webhook.
type WebhookConfig struct {
	// URL receives a POST per message: https, or http when AllowHTTP.
	URL string
	// AllowHTTP accepts an http:// URL, which sends the auth header and the
	// message in clear: for local tests against a plain-HTTP stub only
	// (SECKILL_SMS_WEBHOOK_ALLOW_HTTP).
	AllowHTTP bool
	// AuthHeader is "Name: value", e.g. "Authorization: Bearer abc" or
	// "X-Api-Key: abc"; empty sends none. It is a secret.
	AuthHeader string
	// Body is a text/template producing the JSON body; empty selects
	// DefaultBody.
	Body string
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration
	// Client overrides the HTTP client (tests); its Timeout is left alone.
	// The webhook uses a copy of it that follows no redirect.
	Client *http.Client
	// TracerProvider, unless nil or noop, makes each request a client
	// span (otelhttp) under the notifier's "notify sms" span. The span's
	// url.full is the URL without its query (which may hold the
	// provider's key), and no trace header goes to the provider: the
	// trace is ours, the provider is not part of it. Default nil: no span.
	TracerProvider trace.TracerProvider
}

// Webhook posts each message as JSON to a provider's URL. It never follows
// a redirect: following one would hand the auth header to whatever host the
// answer names (Go's client drops only a few well-known credential headers
// on a cross-host redirect, not a custom "X-Api-Key"), and even a same-host
// redirect of a POST may be replayed as a GET without the body. A 3xx answer
// is a failed send naming the Location, retried like a transient failure so
// that messages wait while the operator corrects SECKILL_SMS_WEBHOOK_URL.
type Webhook struct {
	url        string
	authName   string
	authValue  string
	body       *template.Template
	client     *http.Client
	redactedTo string // URL without credentials or query, for errors
}

var _ channel.Texter = (*Webhook)(nil)

// bodyData is what the body template sees.
type bodyData struct {
	To, Text, Key string
}

// ParseBody parses a body template and checks that it renders valid JSON for
// a sample message, so a broken template stops the process at start.
func ParseBody(text string) (*template.Template, error) {
	if text == "" {
		text = DefaultBody
	}
	t, err := template.New("sms-body").Option("missingkey=error").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}).Parse(text)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, bodyData{To: "+15550100", Text: `sample "text" with \ and ünïcode`, Key: "evt:sms"}); err != nil {
		return nil, err
	}
	if !json.Valid(buf.Bytes()) {
		return nil, fmt.Errorf("renders invalid JSON for a sample message: %s", buf.String())
	}
	return t, nil
}

// ParseAuthHeader splits "Name: value"; empty is no header.
func ParseAuthHeader(h string) (name, value string, err error) {
	if h == "" {
		return "", "", nil
	}
	name, value, ok := strings.Cut(h, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || name == "" || value == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n") {
		// Never echo the value: it is a credential.
		return "", "", errors.New(`must be "Header-Name: value"`)
	}
	return name, value, nil
}

// NewWebhook validates cfg and builds the texter.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("sms webhook: URL must be an absolute http:// or https:// URL")
	}
	if u.Scheme == "http" && !cfg.AllowHTTP {
		return nil, errors.New("sms webhook: URL must be https:// (http:// sends the auth header and the phone numbers in clear; allow it only for local tests)")
	}
	name, value, err := ParseAuthHeader(cfg.AuthHeader)
	if err != nil {
		return nil, fmt.Errorf("sms webhook: auth header %w", err)
	}
	body, err := ParseBody(cfg.Body)
	if err != nil {
		return nil, fmt.Errorf("sms webhook: body template: %w", err)
	}
	var client *http.Client
	if cfg.Client != nil {
		c := *cfg.Client // a copy: the caller's client keeps its own redirect policy
		client = &c
	} else {
		timeout := cfg.Timeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		client = &http.Client{Timeout: timeout}
	}
	client.CheckRedirect = noRedirects
	redacted := redactURL(u)
	if tp := cfg.TracerProvider; tp != nil {
		if _, off := tp.(noop.TracerProvider); !off {
			client.Transport = otelhttp.NewTransport(redactedSpanURL{base: client.Transport, url: redacted},
				otelhttp.WithTracerProvider(tp),
				otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()), // nothing to the provider
				otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),             // metrics are Prometheus's
			)
		}
	}
	return &Webhook{url: cfg.URL, authName: name, authValue: value, body: body, client: client, redactedTo: redacted}, nil
}

// redactedSpanURL is the transport under otelhttp's: it replaces the
// url.full otelhttp gave the request's span, the whole URL with its query,
// by the redacted one before the request goes out.
type redactedSpanURL struct {
	base http.RoundTripper // nil: http.DefaultTransport
	url  string
}

func (t redactedSpanURL) RoundTrip(r *http.Request) (*http.Response, error) {
	trace.SpanFromContext(r.Context()).SetAttributes(semconv.URLFull(t.url))
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// noRedirects makes the client return a 3xx answer as it is, unfollowed.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// redactURL is u without credentials or query, for errors and logs.
func redactURL(u *url.URL) string {
	safe := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return safe.String()
}

// SendSMS posts m. 2xx is accepted; 408, 425, 429 and 5xx are transient; any
// other status is permanent (the provider refused this message: a bad
// number, a rejected text). Network errors and timeouts are transient. A
// redirect (3xx) is not followed: it fails naming the Location, as a
// transient failure (the configured URL is wrong for every message, not this
// message bad, so it waits for the fix instead of being dead-lettered).
func (w *Webhook) SendSMS(ctx context.Context, m channel.SMSMessage) error {
	var buf bytes.Buffer
	if err := w.body.Execute(&buf, bodyData{To: m.To, Text: m.Text, Key: m.IdempotencyKey}); err != nil {
		return channel.Permanent(fmt.Errorf("sms webhook: render body: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, &buf)
	if err != nil {
		return channel.Permanent(fmt.Errorf("sms webhook: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	if m.IdempotencyKey != "" {
		req.Header.Set(IdempotencyHeader, m.IdempotencyKey)
	}
	if w.authName != "" {
		req.Header.Set(w.authName, w.authValue)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// *url.Error repeats the URL, which may carry a token in its
		// query: report the redacted one.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("sms webhook %s: %w", w.redactedTo, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		to := "no Location"
		if loc, err := resp.Location(); err == nil {
			to = "Location " + redactURL(loc)
		}
		return fmt.Errorf("sms webhook %s answered %s, a redirect to %s: not followed (the auth header goes to the configured URL only); set SECKILL_SMS_WEBHOOK_URL to the provider's current endpoint", w.redactedTo, resp.Status, to)
	}
	err = fmt.Errorf("sms webhook %s answered %s: %s", w.redactedTo, resp.Status, strings.TrimSpace(string(snippet)))
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout,
		resp.StatusCode == http.StatusTooEarly, resp.StatusCode == http.StatusTooManyRequests:
		return err
	}
	return channel.Permanent(err)
}

// Log writes each message to a logger instead of sending it.
type Log struct {
	log *slog.Logger
}

var _ channel.Texter = (*Log)(nil)

// NewLog returns a texter that logs at info level.
func NewLog(log *slog.Logger) *Log { return &Log{log: log} }

// SendSMS logs m.
func (l *Log) SendSMS(ctx context.Context, m channel.SMSMessage) error {
	l.log.InfoContext(ctx, "sms (not sent: SECKILL_SMS_WEBHOOK_URL is unset)", "to", m.To, "text", m.Text, "key", m.IdempotencyKey)
	return nil
}
