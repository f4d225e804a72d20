package mail_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/flashsale/seckill/notifier/channel"
	"github.com/flashsale/seckill/notifier/mail"
	"github.com/flashsale/seckill/notifier/smtptest"
)

func sample() channel.MailMessage {
	return channel.MailMessage{
		To:        "alice@example.com",
		Subject:   "Order 42: Kopfhörer — pay by 12:15",
		Text:      "Hello alice,\nyour order 42 for Kopfhörer costs 99.00.\n",
		HTML:      "<p>Hello alice, your order <b>42</b> for Kopfh&ouml;rer costs 99.00.</p>",
		MessageID: "evt-1.mail@notifier.seckill",
	}
}

func newSender(t *testing.T, cfg mail.SMTPConfig) *mail.SMTP {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	s, err := mail.NewSMTP(cfg)
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	return s
}

// A real SMTP conversation: the server receives the envelope sender and
// recipient, and a multipart/alternative message whose subject, text part
// and HTML part are the ones handed over.
func TestSMTPConversation(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, mail.SMTPConfig{Host: srv.Host, Port: srv.Port, StartTLS: mail.StartTLSOpportunistic, From: "Flash Sale <shop@example.com>"})
	m := sample()
	if err := s.SendMail(t.Context(), m); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	got := srv.WaitFor(t, 1, 5*time.Second)
	if len(got) != 1 {
		t.Fatalf("%d messages arrived, want 1", len(got))
	}
	checkDelivered(t, got[0], m, "shop@example.com")
}

func checkDelivered(t *testing.T, got smtptest.Message, want channel.MailMessage, from string) {
	t.Helper()
	if got.From != from {
		t.Errorf("MAIL FROM %q, want %q", got.From, from)
	}
	if len(got.To) != 1 || got.To[0] != want.To {
		t.Errorf("RCPT TO %v, want [%s]", got.To, want.To)
	}
	p, err := smtptest.Parse(got.Data)
	if err != nil {
		t.Fatalf("parse the delivered message: %v\n%s", err, got.Data)
	}
	if p.Subject != want.Subject {
		t.Errorf("Subject %q, want %q", p.Subject, want.Subject)
	}
	if strings.TrimSpace(p.Text) != strings.TrimSpace(want.Text) {
		t.Errorf("text part %q, want %q", p.Text, want.Text)
	}
	if strings.TrimSpace(p.HTML) != strings.TrimSpace(want.HTML) {
		t.Errorf("HTML part %q, want %q", p.HTML, want.HTML)
	}
	if id := p.Header.Get("Message-Id"); id != "<"+want.MessageID+">" {
		t.Errorf("Message-ID %q, want <%s>", id, want.MessageID)
	}
	if h := p.Header.Get("From"); !strings.Contains(h, from) {
		t.Errorf("From header %q does not name %s", h, from)
	}
	if h := p.Header.Get("To"); !strings.Contains(h, want.To) {
		t.Errorf("To header %q does not name %s", h, want.To)
	}
	if h := p.Header.Get("Auto-Submitted"); h != "auto-generated" {
		t.Errorf("Auto-Submitted %q, want auto-generated", h)
	}
}

// smtps:// with AUTH: the credentials go over implicit TLS and the server
// accepts them; a wrong password is an error that never shows the
// password, and one worth retrying (an operator fixes the configuration
// while the mail waits).
func TestSMTPImplicitTLSWithAuth(t *testing.T) {
	ln, clientTLS := smtptest.TLSListener(t)
	srv := smtptest.StartOn(t, ln, smtptest.WithAuth("shop", "s3cret-pass"))
	ok := newSender(t, mail.SMTPConfig{Host: srv.Host, Port: srv.Port, ImplicitTLS: true, Username: "shop", Password: "s3cret-pass", From: "shop@example.com", TLSConfig: clientTLS})
	if err := ok.SendMail(t.Context(), sample()); err != nil {
		t.Fatalf("SendMail over smtps with auth: %v", err)
	}
	checkDelivered(t, srv.WaitFor(t, 1, 5*time.Second)[0], sample(), "shop@example.com")

	bad := newSender(t, mail.SMTPConfig{Host: srv.Host, Port: srv.Port, ImplicitTLS: true, Username: "shop", Password: "wrong-pass-XYZ", From: "shop@example.com", TLSConfig: clientTLS})
	err := bad.SendMail(t.Context(), sample())
	if err == nil {
		t.Fatal("SendMail with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrong-pass-XYZ") {
		t.Errorf("error shows the password: %v", err)
	}
	if channel.IsPermanent(err) {
		t.Errorf("a refused login is marked permanent (%v): mail would be dropped for a configuration error", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages arrived, want only the first", n)
	}
}

// Each failure is classified: the server refusing this message (5xx to
// RCPT) is permanent; a temporary refusal (4xx), a server that drops the
// connection, one that is not listening, and a STARTTLS that cannot happen
// are transient.
func TestSMTPFailuresAreClassified(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().(*net.TCPAddr)
	closed.Close()

	tests := []struct {
		name      string
		setup     func(*smtptest.Server)
		cfg       func(*smtptest.Server) mail.SMTPConfig
		permanent bool
	}{
		{
			name:      "550 mailbox unavailable",
			setup:     func(s *smtptest.Server) { s.RejectRecipients(&smtp.SMTPError{Code: 550, Message: "no such user"}) },
			permanent: true,
		},
		{
			name:      "553 mailbox name not allowed",
			setup:     func(s *smtptest.Server) { s.RejectRecipients(&smtp.SMTPError{Code: 553, Message: "bad address"}) },
			permanent: true,
		},
		{
			name:  "451 try again later",
			setup: func(s *smtptest.Server) { s.RejectRecipients(&smtp.SMTPError{Code: 451, Message: "greylisted"}) },
		},
		{
			name:  "452 insufficient storage",
			setup: func(s *smtptest.Server) { s.RejectRecipients(&smtp.SMTPError{Code: 452, Message: "full"}) },
		},
		{
			name:  "connection dropped before the greeting",
			setup: func(s *smtptest.Server) { s.SetDown(true) },
		},
		{
			name: "nothing listening",
			cfg: func(*smtptest.Server) mail.SMTPConfig {
				return mail.SMTPConfig{Host: "127.0.0.1", Port: closedAddr.Port, From: "shop@example.com"}
			},
		},
		{
			name: "STARTTLS mandatory but not offered",
			cfg: func(s *smtptest.Server) mail.SMTPConfig {
				return mail.SMTPConfig{Host: s.Host, Port: s.Port, StartTLS: mail.StartTLSMandatory, From: "shop@example.com"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t)
			if tt.setup != nil {
				tt.setup(srv)
			}
			cfg := mail.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "shop@example.com"}
			if tt.cfg != nil {
				cfg = tt.cfg(srv)
			}
			err := newSender(t, cfg).SendMail(t.Context(), sample())
			if err == nil {
				t.Fatal("SendMail succeeded")
			}
			if got := channel.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tt.permanent)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("%d messages arrived, want none", n)
			}
		})
	}
}

// An invalid recipient is refused before any connection: permanent.
func TestSMTPInvalidRecipientIsPermanent(t *testing.T) {
	srv := smtptest.Start(t)
	m := sample()
	m.To = "not an address"
	err := newSender(t, mail.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "shop@example.com"}).SendMail(t.Context(), m)
	if !channel.IsPermanent(err) {
		t.Fatalf("SendMail to %q: %v, want a permanent error", m.To, err)
	}
}

// A send that outlives its context is cut short, transiently.
func TestSMTPHonoursContext(t *testing.T) {
	srv := smtptest.Start(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := newSender(t, mail.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "shop@example.com"}).SendMail(ctx, sample())
	if err == nil || channel.IsPermanent(err) {
		t.Fatalf("SendMail with a cancelled context: %v, want a transient error", err)
	}
}

func TestNewSMTPRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  mail.SMTPConfig
		want string
	}{
		{"no host", mail.SMTPConfig{Port: 25, From: "a@example.com"}, "no host"},
		{"bad port", mail.SMTPConfig{Host: "h", Port: 70000, From: "a@example.com"}, "port"},
		{"bad policy", mail.SMTPConfig{Host: "h", Port: 25, StartTLS: "sometimes", From: "a@example.com"}, "STARTTLS"},
		{"bad sender", mail.SMTPConfig{Host: "h", Port: 25, From: "not an address"}, "sender"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mail.NewSMTP(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewSMTP: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestLogMailerWritesTheMessage(t *testing.T) {
	var buf bytes.Buffer
	l := mail.NewLog(slog.New(slog.NewTextHandler(&buf, nil)))
	if err := l.SendMail(t.Context(), sample()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"alice@example.com", "Order 42", "your order 42"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log %q lacks %q", buf.String(), want)
		}
	}
}
