package delivery

import (
	"fmt"
	"net"
	netmail "net/mail"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/flashsale/seckill/notifier/mail"
	"github.com/flashsale/seckill/notifier/render"
	"github.com/flashsale/seckill/notifier/sms"
	"github.com/flashsale/seckill/platform/env"
)

// DefaultFrom is the sender when SECKILL_SMTP_FROM is unset. Set a real one:
// relays refuse or spam-folder mail from a domain they cannot verify.
const DefaultFrom = "Flash Sale <no-reply@seckill.local>"

// Config is how notifications go out.
type Config struct {
	// Enabled runs the notifier inside the all-in-one process
	// (SECKILL_NOTIFIER_ENABLED, default true). The seckill-notifier
	// binary ignores it.
	Enabled bool

	// SMTP is nil when SECKILL_SMTP_URL is unset.
	SMTP *mail.SMTPConfig
	// SMS is nil when SECKILL_SMS_WEBHOOK_URL is unset.
	SMS *sms.WebhookConfig
	// LogMail and LogSMS write the channel to the log instead: demo mode
	// without a server configured. Outside demo mode an unconfigured
	// channel is off, so no personal data lands in production logs.
	LogMail, LogSMS bool

	MailRate    float64 // SECKILL_MAIL_RATE, sends/s per process
	MailBurst   int     // SECKILL_MAIL_BURST
	SMSRate     float64 // SECKILL_SMS_RATE
	SMSBurst    int     // SECKILL_SMS_BURST
	Concurrency int     // SECKILL_NOTIFY_CONCURRENCY: events handled at once, and parked sends retried at once

	SendTimeout time.Duration // SECKILL_NOTIFY_SEND_TIMEOUT
	RetryMin    time.Duration // SECKILL_NOTIFY_RETRY_MIN
	RetryMax    time.Duration // SECKILL_NOTIFY_RETRY_MAX
	RetryFor    time.Duration // SECKILL_NOTIFY_RETRY_FOR
	Retention   time.Duration // SECKILL_NOTIFY_RETENTION

	TemplateDir string         // SECKILL_NOTIFY_TEMPLATE_DIR; empty = the embedded templates
	Location    *time.Location // SECKILL_NOTIFY_TIMEZONE; pay deadlines are shown in it
}

// Channels reports whether any channel would send (or log) anything.
func (d Config) Channels() (mail, sms bool) {
	return d.SMTP != nil || d.LogMail, d.SMS != nil || d.LogSMS
}

// Settings describes the variables Load reads, with their defaults and
// descriptions, in the order read.
func Settings() []env.Setting {
	return env.Describe(func(r *env.Reader) { ReadConfig(r, false) })
}

// Names lists the variables Load reads.
func Names() []string { return env.Names(Settings()) }

// Load reads the delivery settings. demo is the process's demo mode: it
// turns an unconfigured channel into a logging one.
func LoadConfig(getenv func(string) string, demo bool) (Config, error) {
	r := env.New(getenv)
	d := ReadConfig(r, demo)
	return d, r.Err()
}

// ReadConfig reads the delivery settings through r, whose problems it
// adds to: for a process that reads its own settings with the same Reader
// (the all-in-one's gateway/config), so one error lists them all.
func ReadConfig(r *env.Reader, demo bool) Config {
	d := Config{
		Enabled: r.Bool("SECKILL_NOTIFIER_ENABLED", true,
			"run the notifier inside the all-in-one process (and declare its consumer group); seckill-notifier ignores it"),
		MailRate:  r.PositiveFloat("SECKILL_MAIL_RATE", 10, "mails per second one notifier process sends"),
		MailBurst: r.PositiveInt("SECKILL_MAIL_BURST", 20, "bucket of the mail rate"),
		SMSRate:   r.PositiveFloat("SECKILL_SMS_RATE", 5, "SMS per second one notifier process sends"),
		SMSBurst:  r.PositiveInt("SECKILL_SMS_BURST", 10, "bucket of the SMS rate"),
		Concurrency: r.PositiveInt("SECKILL_NOTIFY_CONCURRENCY", 8,
			"order events handled at once, and parked notifications retried at once"),
		SendTimeout: r.Duration("SECKILL_NOTIFY_SEND_TIMEOUT", 10*time.Second,
			"bound on one send attempt, and on the wait for the rate limit before it"),
		RetryMin: r.Duration("SECKILL_NOTIFY_RETRY_MIN", time.Second,
			"first backoff after a transient send failure; doubled per failure up to SECKILL_NOTIFY_RETRY_MAX, jittered"),
		RetryMax: r.Duration("SECKILL_NOTIFY_RETRY_MAX", 5*time.Minute,
			"longest backoff between send attempts"),
		RetryFor: r.Duration("SECKILL_NOTIFY_RETRY_FOR", 24*time.Hour,
			"how long transient failures are retried before the notification is dead-lettered"),
		Retention: r.Duration("SECKILL_NOTIFY_RETENTION", 30*24*time.Hour,
			"how long sent notifications are kept: the memory that recognises a redelivered event as a duplicate (at least 24h)"),
		TemplateDir: r.String("SECKILL_NOTIFY_TEMPLATE_DIR", "",
			"directory of templates that override the embedded ones file by file (see docs/notifier.md). Unset: the embedded templates"),
		Location: time.UTC,
	}
	if d.RetryMax < d.RetryMin {
		r.Fail("SECKILL_NOTIFY_RETRY_MAX", "must not be shorter than SECKILL_NOTIFY_RETRY_MIN (%s)", d.RetryMin)
	}
	if d.RetryFor < d.RetryMin {
		r.Fail("SECKILL_NOTIFY_RETRY_FOR", "must not be shorter than SECKILL_NOTIFY_RETRY_MIN (%s)", d.RetryMin)
	}
	if d.Retention < 24*time.Hour {
		r.Fail("SECKILL_NOTIFY_RETENTION", "must be at least 24h: it is how long a redelivered event is still recognised as a duplicate")
	}
	if tz := r.DefaultText("UTC").String("SECKILL_NOTIFY_TIMEZONE", "",
		"IANA time zone the pay deadline is shown in, e.g. `Asia/Shanghai`"); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			r.Fail("SECKILL_NOTIFY_TIMEZONE", "%q is not an IANA time zone (e.g. Asia/Shanghai)", tz)
		} else {
			d.Location = loc
		}
	}
	if d.TemplateDir != "" {
		if st, err := os.Stat(d.TemplateDir); err != nil || !st.IsDir() {
			r.Fail("SECKILL_NOTIFY_TEMPLATE_DIR", "%q is not a readable directory", d.TemplateDir)
		} else if _, err := render.New(render.Options{Dir: os.DirFS(d.TemplateDir), Location: d.Location}); err != nil {
			r.Fail("SECKILL_NOTIFY_TEMPLATE_DIR", "templates do not render: %v", err)
		}
	}
	d.SMTP = loadSMTP(r, d.SendTimeout)
	d.SMS = loadSMS(r, d.SendTimeout)
	d.LogMail = d.SMTP == nil && demo
	d.LogSMS = d.SMS == nil && demo
	return d
}

func loadSMTP(r *env.Reader, timeout time.Duration) *mail.SMTPConfig {
	raw := r.String("SECKILL_SMTP_URL", "",
		"mail server: `smtp://[user:password@]host[:port]` (STARTTLS per SECKILL_SMTP_STARTTLS, port 587) or `smtps://...` (implicit TLS, port 465); a secret when it holds a password. Unset: mail goes to the log in demo mode, and is off otherwise")
	user := r.Raw("SECKILL_SMTP_USER", "SMTP login, overriding the one in SECKILL_SMTP_URL")
	pass := r.Raw("SECKILL_SMTP_PASSWORD",
		"SMTP password, overriding the one in SECKILL_SMTP_URL (keep it in a secret store); only ever sent over TLS")
	policy := r.OneOf("SECKILL_SMTP_STARTTLS", mail.StartTLSOpportunistic,
		[]string{mail.StartTLSMandatory, mail.StartTLSOpportunistic, mail.StartTLSNone},
		"STARTTLS with `smtp://`: `mandatory`, `opportunistic` (upgrade when the server offers it) or `none`; not with `smtps://`")
	from := r.String("SECKILL_SMTP_FROM", DefaultFrom,
		"sender, `Name <addr>` or `addr`: an address your relay may send as")
	if _, err := netmail.ParseAddress(from); err != nil {
		r.Fail("SECKILL_SMTP_FROM", "%q is not a mail address (\"Name <addr@example.com>\" or \"addr@example.com\")", from)
	}
	if raw == "" {
		for _, n := range []string{"SECKILL_SMTP_USER", "SECKILL_SMTP_PASSWORD"} {
			if r.IsSet(n) {
				r.Fail(n, "is set but SECKILL_SMTP_URL is not: set the server too")
			}
		}
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url's errors quote the input, password included.
		r.Fail("SECKILL_SMTP_URL", "does not parse as a URL (smtp://[user:password@]host[:port])")
		return nil
	}
	cfg := &mail.SMTPConfig{Host: u.Hostname(), StartTLS: policy, From: from, Timeout: timeout}
	switch u.Scheme {
	case "smtp":
		cfg.Port = 587
	case "smtps":
		cfg.Port, cfg.ImplicitTLS = 465, true
		if r.IsSet("SECKILL_SMTP_STARTTLS") {
			r.Fail("SECKILL_SMTP_STARTTLS", "does not apply to smtps:// (TLS from the first byte); remove it or use smtp://")
		}
	default:
		r.Fail("SECKILL_SMTP_URL", "scheme must be smtp:// (STARTTLS per SECKILL_SMTP_STARTTLS) or smtps:// (implicit TLS), got %q", u.Scheme)
		return nil
	}
	if cfg.Host == "" {
		r.Fail("SECKILL_SMTP_URL", "has no host")
		return nil
	}
	if ps := u.Port(); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil || n <= 0 || n > 65535 {
			r.Fail("SECKILL_SMTP_URL", "port %q is not 1-65535", ps)
			return nil
		}
		cfg.Port = n
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		r.Fail("SECKILL_SMTP_URL", "takes no path or query: smtp://[user:password@]host[:port]")
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	// The separate variables win, so the password can live in a secret
	// store apart from the URL.
	if user != "" {
		cfg.Username = user
	}
	if pass != "" {
		cfg.Password = pass
	}
	if cfg.Password != "" && cfg.Username == "" {
		r.Fail("SECKILL_SMTP_USER", "is required with a password (in SECKILL_SMTP_URL or SECKILL_SMTP_PASSWORD)")
	}
	if _, err := mail.NewSMTP(*cfg); err != nil {
		r.Fail("SECKILL_SMTP_URL", "%v", err)
	}
	return cfg
}

func loadSMS(r *env.Reader, timeout time.Duration) *sms.WebhookConfig {
	raw := r.String("SECKILL_SMS_WEBHOOK_URL", "",
		"SMS provider endpoint (`https://...`), one JSON POST per message; redirects are not followed (a 3xx is a failed send naming its `Location`). Unset: SMS go to the log in demo mode, and are off otherwise")
	auth := r.String("SECKILL_SMS_WEBHOOK_AUTH_HEADER", "",
		"`Header-Name: value` sent with each SMS call; a secret")
	body := r.DefaultText("`"+sms.DefaultBody+"`").Raw("SECKILL_SMS_WEBHOOK_BODY",
		"`text/template` of the SMS call's JSON body, over `.To`, `.Text` and `.Key`; `{{json .X}}` quotes a value")
	// http:// would send the auth header and the phone numbers in clear:
	// only for local tests against a stub.
	allowHTTP := r.Bool("SECKILL_SMS_WEBHOOK_ALLOW_HTTP", false,
		"`true` accepts an `http://` SECKILL_SMS_WEBHOOK_URL, which sends the auth header and the phone numbers in clear: for local tests against a stub only")
	if _, _, err := sms.ParseAuthHeader(auth); err != nil {
		r.Fail("SECKILL_SMS_WEBHOOK_AUTH_HEADER", "%v", err)
	}
	if _, err := sms.ParseBody(body); err != nil {
		r.Fail("SECKILL_SMS_WEBHOOK_BODY", "is not a usable template: %v", err)
	}
	if raw == "" {
		for _, n := range []string{"SECKILL_SMS_WEBHOOK_AUTH_HEADER", "SECKILL_SMS_WEBHOOK_BODY"} {
			if r.IsSet(n) {
				r.Fail(n, "is set but SECKILL_SMS_WEBHOOK_URL is not")
			}
		}
		if allowHTTP {
			r.Fail("SECKILL_SMS_WEBHOOK_ALLOW_HTTP", "is true but SECKILL_SMS_WEBHOOK_URL is not set")
		}
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.Fail("SECKILL_SMS_WEBHOOK_URL", "must be an absolute http:// or https:// URL")
		return nil
	}
	if u.Scheme == "http" && !allowHTTP {
		r.Fail("SECKILL_SMS_WEBHOOK_URL", "must be an https:// URL: http:// sends the auth header and the phone numbers in clear (set SECKILL_SMS_WEBHOOK_ALLOW_HTTP=true to allow it, for local tests only)")
		return nil
	}
	return &sms.WebhookConfig{URL: raw, AuthHeader: auth, Body: body, Timeout: timeout, AllowHTTP: allowHTTP}
}

// Redacted describes d for the start-up log: where mail and SMS go, never a
// credential.
func (d Config) Redacted() map[string]any {
	mail := "off"
	switch {
	case d.SMTP != nil:
		scheme := "smtp"
		if d.SMTP.ImplicitTLS {
			scheme = "smtps"
		}
		mail = fmt.Sprintf("%s://%s (starttls %s, auth %t)", scheme, net.JoinHostPort(d.SMTP.Host, strconv.Itoa(d.SMTP.Port)), d.SMTP.StartTLS, d.SMTP.Username != "")
	case d.LogMail:
		mail = "log"
	}
	smsTo := "off"
	switch {
	case d.SMS != nil:
		if u, err := url.Parse(d.SMS.URL); err == nil {
			smsTo = u.Scheme + "://" + u.Host + u.Path
		}
	case d.LogSMS:
		smsTo = "log"
	}
	return map[string]any{
		"mail": mail, "sms": smsTo, "mail_rate": d.MailRate, "sms_rate": d.SMSRate,
		"concurrency": d.Concurrency, "retry_for": d.RetryFor.String(),
	}
}
