// Package channel is the contract between the notifier and the ways it
// reaches people (mail, SMS): the messages it hands over, and the one thing
// the notifier must know about a failure, whether trying again can help.
//
// A sender returns nil once the provider accepted the message, an error made
// with Permanent when retrying cannot succeed (the provider refused this
// message: SMTP 5xx to MAIL/RCPT/DATA, HTTP 4xx), and any other error when a
// later attempt may succeed (timeouts, refused connections, SMTP 4xx, HTTP
// 5xx and 429). The notifier retries the second kind with backoff and
// dead-letters the first at once.
package channel

import (
	"context"
	"errors"
)

// Channel names, used in the notifications table and the metrics' channel
// label.
const (
	Mail = "mail"
	SMS  = "sms"
)

// MailMessage is one rendered e-mail.
type MailMessage struct {
	To      string
	Subject string
	Text    string // text/plain part
	HTML    string // text/html part
	// MessageID is derived from the event and the channel, so a resend
	// after a crash carries the same Message-ID and mail clients can
	// recognise the duplicate.
	MessageID string
}

// SMSMessage is one rendered text message.
type SMSMessage struct {
	To   string // E.164 phone number
	Text string
	// IdempotencyKey is stable per (event, channel); providers that honour
	// an idempotency key drop a resend after a crash.
	IdempotencyKey string
}

// Mailer sends e-mail.
type Mailer interface {
	SendMail(ctx context.Context, m MailMessage) error
}

// Texter sends SMS.
type Texter interface {
	SendSMS(ctx context.Context, m SMSMessage) error
}

// permanentError marks a failure that no retry can fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure that retrying cannot fix. Permanent(nil)
// is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err (or an error it wraps) was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
