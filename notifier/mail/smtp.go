package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/flashsale/seckill/notifier/channel"
)

// STARTTLS policies of SMTPConfig.StartTLS.
const (
	// StartTLSMandatory refuses to send unless the server upgrades the
	// connection with STARTTLS.
	StartTLSMandatory = "mandatory"
	// StartTLSOpportunistic upgrades when the server offers STARTTLS and
	// sends in clear otherwise (a local relay, Mailpit). Credentials are
	// never sent over a clear connection: go-mail then only picks
	// challenge-response mechanisms, and fails when there is none.
	StartTLSOpportunistic = "opportunistic"
	// StartTLSNone never upgrades.
	StartTLSNone = "none"
)

// SMTPConfig says where and how to submit mail.
type SMTPConfig struct {
	Host string
	Port int
	// ImplicitTLS is true for smtps:// (TLS from the first byte, port 465).
	ImplicitTLS bool
	// StartTLS is one of the StartTLS* policies; ignored with ImplicitTLS.
	StartTLS string
	Username string
	Password string
	// From is the sender address, "Name <addr>" or "addr".
	From string
	// Timeout bounds connecting and each SMTP command. Default 10s.
	Timeout time.Duration
	// TLSConfig overrides the TLS settings (tests, private CAs); nil uses
	// the system roots and verifies Host.
	TLSConfig *tls.Config
}

// SMTP submits each message on its own connection. A connection per message
// costs a handshake, but holds no state between sends: a dead server or a
// dropped connection affects one attempt, never a pool, and sends run
// concurrently without coordination. The notifier's rate limit, not the
// connection count, bounds the load on the server.
type SMTP struct {
	client *gomail.Client
	from   string
	addr   string
}

var _ channel.Mailer = (*SMTP)(nil)

// NewSMTP validates cfg and builds the sender; it does not connect.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if cfg.Host == "" {
		return nil, errors.New("smtp: no host")
	}
	if cfg.Port <= 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("smtp: port %d out of range", cfg.Port)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	opts := []gomail.Option{gomail.WithPort(cfg.Port), gomail.WithTimeout(cfg.Timeout)}
	tlsCfg := cfg.TLSConfig
	if tlsCfg == nil {
		tlsCfg = &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	}
	opts = append(opts, gomail.WithTLSConfig(tlsCfg))
	switch {
	case cfg.ImplicitTLS:
		opts = append(opts, gomail.WithSSL())
	case cfg.StartTLS == StartTLSMandatory:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case cfg.StartTLS == StartTLSOpportunistic || cfg.StartTLS == "":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case cfg.StartTLS == StartTLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		return nil, fmt.Errorf("smtp: STARTTLS policy %q is not mandatory, opportunistic or none", cfg.StartTLS)
	}
	if cfg.Username != "" || cfg.Password != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	c, err := gomail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	if err := gomail.NewMsg().From(cfg.From); err != nil {
		return nil, fmt.Errorf("smtp: sender address %q: %w", cfg.From, err)
	}
	return &SMTP{client: c, from: cfg.From, addr: net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))}, nil
}

// SendMail submits m. See package channel for what the error means.
func (s *SMTP) SendMail(ctx context.Context, m channel.MailMessage) error {
	msg, err := buildMsg(s.from, m)
	if err != nil {
		return channel.Permanent(err)
	}
	conn, err := s.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		// Connecting, greeting, STARTTLS and AUTH concern the server or
		// our configuration, not this message: always worth retrying
		// (an operator fixes a password while the mail waits).
		return fmt.Errorf("smtp %s: connect: %w", s.addr, err)
	}
	sendErr := s.client.SendWithSMTPClient(conn, msg)
	// The message is delivered once the server accepted the DATA; an
	// error after that (RSET, QUIT) must not make us send it again.
	_ = s.client.CloseWithSMTPClient(conn)
	if sendErr == nil || msg.IsDelivered() {
		return nil
	}
	return classify(fmt.Errorf("smtp %s: %w", s.addr, sendErr))
}

// classify marks SMTP 5xx replies to the message's own commands as permanent
// (the server refused this sender, recipient or content); 4xx replies and
// failures without a reply stay transient.
func classify(err error) error {
	var se *gomail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		switch {
		case code >= 500 && code < 600:
			return channel.Permanent(err)
		case code == 0 && (se.Reason == gomail.ErrGetSender || se.Reason == gomail.ErrGetRcpts):
			return channel.Permanent(err)
		}
		return err
	}
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code < 600 {
		return channel.Permanent(err)
	}
	return err
}

func buildMsg(from string, m channel.MailMessage) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("sender %q: %w", from, err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("recipient %q: %w", m.To, err)
	}
	msg.Subject(m.Subject)
	if m.MessageID != "" {
		msg.SetMessageIDWithValue(strings.Trim(m.MessageID, "<>"))
	} else {
		msg.SetMessageID()
	}
	msg.SetDate()
	// An automated notification: no out-of-office replies to it.
	msg.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	msg.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// Log writes each message to a logger instead of sending it: the demo
// mode's mailer when SECKILL_SMTP_URL is unset.
type Log struct {
	log *slog.Logger
}

var _ channel.Mailer = (*Log)(nil)

// NewLog returns a mailer that logs at info level.
func NewLog(log *slog.Logger) *Log { return &Log{log: log} }

// SendMail logs m (the text part; the HTML part's size only).
func (l *Log) SendMail(ctx context.Context, m channel.MailMessage) error {
	l.log.InfoContext(ctx, "mail (not sent: SECKILL_SMTP_URL is unset)",
		"to", m.To, "subject", m.Subject, "message_id", m.MessageID, "text", m.Text, "html_bytes", len(m.HTML))
	return nil
}
