package delivery_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flashsale/seckill/notifier/delivery"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsAndDemoFallbacks(t *testing.T) {
	tests := []struct {
		name            string
		demo            bool
		vars            map[string]string
		mail, sms       bool
		logMail, logSMS bool
	}{
		{"demo without servers logs both", true, nil, true, true, true, true},
		{"production without servers sends nothing", false, nil, false, false, false, false},
		{"smtp only", false, map[string]string{"SECKILL_SMTP_URL": "smtp://mail.example.com"}, true, false, false, false},
		{"demo with smtp logs only sms", true, map[string]string{"SECKILL_SMTP_URL": "smtp://mail.example.com"}, true, true, false, true},
		{"webhook only", false, map[string]string{"SECKILL_SMS_WEBHOOK_URL": "https://sms.example.com/send"}, false, true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := delivery.LoadConfig(env(tt.vars), tt.demo)
			if err != nil {
				t.Fatal(err)
			}
			mail, sms := d.Channels()
			if mail != tt.mail || sms != tt.sms || d.LogMail != tt.logMail || d.LogSMS != tt.logSMS {
				t.Errorf("channels mail=%v sms=%v log=%v/%v, want %v %v %v/%v", mail, sms, d.LogMail, d.LogSMS, tt.mail, tt.sms, tt.logMail, tt.logSMS)
			}
			if !d.Enabled || d.MailRate != 10 || d.SMSRate != 5 || d.RetryFor != 24*time.Hour || d.Location != time.UTC {
				t.Errorf("defaults: %+v", d)
			}
		})
	}
}

func TestSMTPURL(t *testing.T) {
	tests := []struct {
		name               string
		vars               map[string]string
		host               string
		port               int
		tls                bool
		user, pass, policy string
	}{
		{"smtp default port", map[string]string{"SECKILL_SMTP_URL": "smtp://mail.example.com"}, "mail.example.com", 587, false, "", "", "opportunistic"},
		{"smtps default port", map[string]string{"SECKILL_SMTP_URL": "smtps://mail.example.com"}, "mail.example.com", 465, true, "", "", "opportunistic"},
		{"mailpit", map[string]string{"SECKILL_SMTP_URL": "smtp://mailpit:1025", "SECKILL_SMTP_STARTTLS": "none"}, "mailpit", 1025, false, "", "", "none"},
		{"credentials in the URL, escaped", map[string]string{"SECKILL_SMTP_URL": "smtp://apikey:p%40ss%3Aword@smtp.example.com:2525"}, "smtp.example.com", 2525, false, "apikey", "p@ss:word", "opportunistic"},
		{"separate variables win", map[string]string{"SECKILL_SMTP_URL": "smtp://u:old@h", "SECKILL_SMTP_USER": "u2", "SECKILL_SMTP_PASSWORD": "new", "SECKILL_SMTP_STARTTLS": "MANDATORY"}, "h", 587, false, "u2", "new", "mandatory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := delivery.LoadConfig(env(tt.vars), false)
			if err != nil {
				t.Fatal(err)
			}
			s := d.SMTP
			if s == nil || s.Host != tt.host || s.Port != tt.port || s.ImplicitTLS != tt.tls || s.Username != tt.user || s.Password != tt.pass || s.StartTLS != tt.policy {
				t.Fatalf("SMTP = %+v", s)
			}
			if r := d.Redacted(); strings.Contains(r["mail"].(string), tt.pass+"@") && tt.pass != "" {
				t.Errorf("Redacted shows the password: %v", r)
			}
		})
	}
}

// Every bad value is reported, naming its variable, and no secret appears.
func TestInvalidValuesNameTheVariable(t *testing.T) {
	tests := []struct {
		name, variable string
		vars           map[string]string
	}{
		{"bad scheme", "SECKILL_SMTP_URL", map[string]string{"SECKILL_SMTP_URL": "http://user:Secret123@mail"}},
		{"no host", "SECKILL_SMTP_URL", map[string]string{"SECKILL_SMTP_URL": "smtp://user:Secret123@"}},
		{"bad port", "SECKILL_SMTP_URL", map[string]string{"SECKILL_SMTP_URL": "smtp://user:Secret123@h:99999"}},
		{"unparsable", "SECKILL_SMTP_URL", map[string]string{"SECKILL_SMTP_URL": "smtp://user:Secret123@h:%zz"}},
		{"path", "SECKILL_SMTP_URL", map[string]string{"SECKILL_SMTP_URL": "smtp://h/inbox"}},
		{"policy", "SECKILL_SMTP_STARTTLS", map[string]string{"SECKILL_SMTP_URL": "smtp://h", "SECKILL_SMTP_STARTTLS": "maybe"}},
		{"starttls with smtps", "SECKILL_SMTP_STARTTLS", map[string]string{"SECKILL_SMTP_URL": "smtps://h", "SECKILL_SMTP_STARTTLS": "none"}},
		{"from", "SECKILL_SMTP_FROM", map[string]string{"SECKILL_SMTP_FROM": "not an address"}},
		{"password without server", "SECKILL_SMTP_PASSWORD", map[string]string{"SECKILL_SMTP_PASSWORD": "Secret123"}},
		{"password without user", "SECKILL_SMTP_USER", map[string]string{"SECKILL_SMTP_URL": "smtp://:Secret123@h"}},
		{"webhook URL", "SECKILL_SMS_WEBHOOK_URL", map[string]string{"SECKILL_SMS_WEBHOOK_URL": "sms.example.com/send"}},
		{"auth header", "SECKILL_SMS_WEBHOOK_AUTH_HEADER", map[string]string{"SECKILL_SMS_WEBHOOK_URL": "https://x", "SECKILL_SMS_WEBHOOK_AUTH_HEADER": "Bearer Secret123"}},
		{"body", "SECKILL_SMS_WEBHOOK_BODY", map[string]string{"SECKILL_SMS_WEBHOOK_URL": "https://x", "SECKILL_SMS_WEBHOOK_BODY": "to={{.To}}"}},
		{"body without URL", "SECKILL_SMS_WEBHOOK_BODY", map[string]string{"SECKILL_SMS_WEBHOOK_BODY": `{"to":{{json .To}}}`}},
		{"rate", "SECKILL_MAIL_RATE", map[string]string{"SECKILL_MAIL_RATE": "-1"}},
		{"burst", "SECKILL_SMS_BURST", map[string]string{"SECKILL_SMS_BURST": "1.5"}},
		{"concurrency", "SECKILL_NOTIFY_CONCURRENCY", map[string]string{"SECKILL_NOTIFY_CONCURRENCY": "0"}},
		{"timeout", "SECKILL_NOTIFY_SEND_TIMEOUT", map[string]string{"SECKILL_NOTIFY_SEND_TIMEOUT": "10"}},
		{"retry max below min", "SECKILL_NOTIFY_RETRY_MAX", map[string]string{"SECKILL_NOTIFY_RETRY_MIN": "10s", "SECKILL_NOTIFY_RETRY_MAX": "1s"}},
		{"retention", "SECKILL_NOTIFY_RETENTION", map[string]string{"SECKILL_NOTIFY_RETENTION": "1h"}},
		{"timezone", "SECKILL_NOTIFY_TIMEZONE", map[string]string{"SECKILL_NOTIFY_TIMEZONE": "Mars/Olympus"}},
		{"template dir", "SECKILL_NOTIFY_TEMPLATE_DIR", map[string]string{"SECKILL_NOTIFY_TEMPLATE_DIR": "/nonexistent/templates"}},
		{"enabled", "SECKILL_NOTIFIER_ENABLED", map[string]string{"SECKILL_NOTIFIER_ENABLED": "sometimes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := delivery.LoadConfig(env(tt.vars), false)
			if err == nil || !strings.Contains(err.Error(), tt.variable) {
				t.Fatalf("Load: %v, want an error naming %s", err, tt.variable)
			}
			if strings.Contains(err.Error(), "Secret123") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestNamesCoverEverythingRead(t *testing.T) {
	read := map[string]bool{}
	_, _ = delivery.LoadProcessConfig(func(k string) string { read[k] = true; return "" })
	names := map[string]bool{}
	for _, n := range delivery.ProcessNames() {
		names[n] = true
	}
	for k := range read {
		if !names[k] {
			t.Errorf("LoadProcessConfig reads %s, which ProcessNames does not list", k)
		}
	}
	for _, n := range delivery.Names() {
		if !read[n] {
			t.Errorf("Names lists %s, which is never read", n)
		}
	}
}
