package delivery_test

import (
	"strings"
	"testing"

	"github.com/flashsale/seckill/notifier/delivery"
)

// An http:// SMS provider URL stops the process at start, naming the URL
// variable and the one that would allow it; with the allow flag it is
// accepted and handed to the webhook.
func TestSMSWebhookPlainHTTPNeedsTheAllowFlag(t *testing.T) {
	_, err := delivery.LoadConfig(env(map[string]string{"SECKILL_SMS_WEBHOOK_URL": "http://sms.example.com/send"}), false)
	if err == nil || !strings.Contains(err.Error(), "SECKILL_SMS_WEBHOOK_URL") || !strings.Contains(err.Error(), "SECKILL_SMS_WEBHOOK_ALLOW_HTTP") {
		t.Fatalf("Load(http:// URL): %v, want an error naming SECKILL_SMS_WEBHOOK_URL and SECKILL_SMS_WEBHOOK_ALLOW_HTTP", err)
	}

	d, err := delivery.LoadConfig(env(map[string]string{
		"SECKILL_SMS_WEBHOOK_URL": "http://127.0.0.1:9999/send", "SECKILL_SMS_WEBHOOK_ALLOW_HTTP": "true",
	}), false)
	if err != nil {
		t.Fatalf("Load(http:// URL, allowed): %v", err)
	}
	if d.SMS == nil || !d.SMS.AllowHTTP {
		t.Fatalf("SMS = %+v, want the webhook with AllowHTTP", d.SMS)
	}

	d, err = delivery.LoadConfig(env(map[string]string{"SECKILL_SMS_WEBHOOK_URL": "https://sms.example.com/send"}), false)
	if err != nil || d.SMS == nil || d.SMS.AllowHTTP {
		t.Fatalf("Load(https:// URL): %+v, %v", d.SMS, err)
	}

	for _, tc := range []struct {
		name string
		vars map[string]string
	}{
		{"not a boolean", map[string]string{"SECKILL_SMS_WEBHOOK_URL": "http://x", "SECKILL_SMS_WEBHOOK_ALLOW_HTTP": "maybe"}},
		{"without a URL", map[string]string{"SECKILL_SMS_WEBHOOK_ALLOW_HTTP": "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := delivery.LoadConfig(env(tc.vars), false); err == nil || !strings.Contains(err.Error(), "SECKILL_SMS_WEBHOOK_ALLOW_HTTP") {
				t.Fatalf("Load: %v, want an error naming SECKILL_SMS_WEBHOOK_ALLOW_HTTP", err)
			}
		})
	}
}
