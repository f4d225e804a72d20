// Package render turns an order event into the words a buyer reads: a mail
// subject, its text and HTML bodies, and an SMS text, one set of templates
// per event type. Text goes through text/template and HTML through
// html/template, so a product name is escaped in the HTML part and left as
// is in the text part.
//
// The templates ship embedded (templates/*.tmpl). A team that wants its own
// wording points SECKILL_NOTIFY_TEMPLATE_DIR at a directory holding files of
// the same names; a file missing there falls back to the embedded one. Every
// template is rendered once with sample data at start, so a broken one
// stops the process instead of the first notification.
package render

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/flashsale/seckill/notifier/channel"
	"github.com/flashsale/seckill/order/ordermsg"
)

//go:embed templates/*.tmpl
var embedded embed.FS

// EventTypes are the events the notifier renders.
var EventTypes = []string{ordermsg.EventCreated, ordermsg.EventPaid, ordermsg.EventCancelled}

// Data is what the templates see.
type Data struct {
	EventType string
	OrderID   string
	// Product is the activity's name.
	Product string
	UserID  string
	// Price is PriceCents formatted with two decimals ("99.00").
	Price      string
	PriceCents int64
	// PayDeadline is formatted "2006-01-02 15:04 MST" in the renderer's
	// location; PayDeadlineTime is the instant, for custom formats.
	PayDeadline     string
	PayDeadlineTime time.Time
	// Reason says in words why a cancelled order was cancelled.
	Reason     string
	OccurredAt time.Time
}

type eventTemplates struct {
	text *texttemplate.Template // defines subject, text, sms
	html *htmltemplate.Template // layout + body
}

// Renderer renders events; it is safe for concurrent use.
type Renderer struct {
	byType map[string]eventTemplates
	loc    *time.Location
}

// Options tune a Renderer.
type Options struct {
	// Dir overrides embedded templates file by file; nil uses only the
	// embedded ones.
	Dir fs.FS
	// Location formats the pay deadline; nil is UTC.
	Location *time.Location
}

// New parses the templates and renders each with sample data.
func New(opts Options) (*Renderer, error) {
	r := &Renderer{byType: map[string]eventTemplates{}, loc: opts.Location}
	if r.loc == nil {
		r.loc = time.UTC
	}
	read := func(name string) (string, error) {
		if opts.Dir != nil {
			b, err := fs.ReadFile(opts.Dir, name)
			if err == nil {
				return string(b), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("template %s: %w", name, err)
			}
		}
		b, err := embedded.ReadFile("templates/" + name)
		if err != nil {
			return "", fmt.Errorf("template %s: %w", name, err)
		}
		return string(b), nil
	}
	layout, err := read("layout.html.tmpl")
	if err != nil {
		return nil, err
	}
	for _, typ := range EventTypes {
		txt, err := read(typ + ".txt.tmpl")
		if err != nil {
			return nil, err
		}
		html, err := read(typ + ".html.tmpl")
		if err != nil {
			return nil, err
		}
		tt, err := texttemplate.New(typ + ".txt.tmpl").Option("missingkey=error").Parse(txt)
		if err != nil {
			return nil, fmt.Errorf("template %s.txt.tmpl: %w", typ, err)
		}
		for _, name := range []string{"subject", "text", "sms"} {
			if tt.Lookup(name) == nil {
				return nil, fmt.Errorf("template %s.txt.tmpl: does not define %q", typ, name)
			}
		}
		ht, err := htmltemplate.New("layout.html.tmpl").Option("missingkey=error").Parse(layout)
		if err == nil {
			ht, err = ht.New(typ + ".html.tmpl").Parse(html)
		}
		if err != nil {
			return nil, fmt.Errorf("template %s.html.tmpl: %w", typ, err)
		}
		if ht.Lookup("body") == nil || ht.Lookup("layout") == nil {
			return nil, fmt.Errorf("template %s.html.tmpl: must define \"body\" (layout.html.tmpl defines \"layout\")", typ)
		}
		r.byType[typ] = eventTemplates{text: tt, html: ht}
	}
	sample := ordermsg.Event{
		ID: "sample", OrderID: "0249881406908399620-1", ActivityID: 1, ActivityName: `Headphones <"limited">`,
		UserID: "alice", PriceCents: 9900, PayDeadline: time.Now().Add(15 * time.Minute), Reason: ordermsg.ReasonPayTimeout,
	}
	for _, typ := range EventTypes {
		sample.Type = typ
		if _, err := r.Mail(sample, "alice@example.com"); err != nil {
			return nil, err
		}
		if _, err := r.SMS(sample, "+15550100"); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// data builds the template data of e.
func (r *Renderer) data(e ordermsg.Event) Data {
	d := Data{
		EventType: e.Type, OrderID: e.OrderID, Product: e.ActivityName, UserID: e.UserID,
		PriceCents: e.PriceCents, Price: FormatCents(e.PriceCents),
		PayDeadlineTime: e.PayDeadline, Reason: reasonText(e.Reason), OccurredAt: e.OccurredAt,
	}
	if d.Product == "" {
		d.Product = fmt.Sprintf("activity %d", e.ActivityID)
	}
	if !e.PayDeadline.IsZero() {
		d.PayDeadline = e.PayDeadline.In(r.loc).Format("2006-01-02 15:04 MST")
	}
	return d
}

// FormatCents formats an amount in cents with two decimals.
func FormatCents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

func reasonText(reason string) string {
	switch reason {
	case ordermsg.ReasonPayTimeout:
		return "the payment deadline passed"
	case ordermsg.ReasonReservationLost:
		return "the reservation could not be confirmed"
	case "":
		return "cancelled"
	}
	return strings.ReplaceAll(reason, "_", " ")
}

func (r *Renderer) templates(e ordermsg.Event) (eventTemplates, error) {
	t, ok := r.byType[e.Type]
	if !ok {
		return t, fmt.Errorf("render: no templates for event type %q", e.Type)
	}
	return t, nil
}

// Mail renders the e-mail for e to address to. The Message-ID is derived
// from the event id, so a resend carries the same one.
func (r *Renderer) Mail(e ordermsg.Event, to string) (channel.MailMessage, error) {
	t, err := r.templates(e)
	if err != nil {
		return channel.MailMessage{}, err
	}
	d := r.data(e)
	var subject, text, html bytes.Buffer
	if err := t.text.ExecuteTemplate(&subject, "subject", d); err != nil {
		return channel.MailMessage{}, fmt.Errorf("render %s subject: %w", e.Type, err)
	}
	if err := t.text.ExecuteTemplate(&text, "text", d); err != nil {
		return channel.MailMessage{}, fmt.Errorf("render %s text: %w", e.Type, err)
	}
	subj := strings.Join(strings.Fields(subject.String()), " ")
	if err := t.html.ExecuteTemplate(&html, "layout", struct {
		Subject string
		Data    Data
	}{subj, d}); err != nil {
		return channel.MailMessage{}, fmt.Errorf("render %s html: %w", e.Type, err)
	}
	return channel.MailMessage{
		To: to, Subject: subj, Text: strings.TrimLeft(text.String(), "\n"), HTML: html.String(),
		MessageID: MessageID(e.ID, channel.Mail),
	}, nil
}

// SMS renders the text message for e to phone number to.
func (r *Renderer) SMS(e ordermsg.Event, to string) (channel.SMSMessage, error) {
	t, err := r.templates(e)
	if err != nil {
		return channel.SMSMessage{}, err
	}
	var text bytes.Buffer
	if err := t.text.ExecuteTemplate(&text, "sms", r.data(e)); err != nil {
		return channel.SMSMessage{}, fmt.Errorf("render %s sms: %w", e.Type, err)
	}
	return channel.SMSMessage{
		To: to, Text: strings.Join(strings.Fields(text.String()), " "),
		IdempotencyKey: e.ID + ":" + channel.SMS,
	}, nil
}

// MessageID is the Message-ID (without angle brackets) of the mail for an
// event: stable across resends.
func MessageID(eventID, ch string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, eventID)
	return safe + "." + ch + "@notifier.seckill"
}
