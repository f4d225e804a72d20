package render_test

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flashsale/seckill/notifier/render"
	"github.com/flashsale/seckill/order/ordermsg"
)

func event(typ string) ordermsg.Event {
	return ordermsg.Event{
		ID: "42", Type: typ, OrderID: "0249-1", ActivityID: 7, ActivityName: `Phone <X> & "Pro"`, UserID: "alice",
		PriceCents: 99900, PayDeadline: time.Date(2026, 11, 11, 0, 15, 0, 0, time.UTC), Reason: ordermsg.ReasonPayTimeout,
	}
}

// Every event type renders its order id, product, price and (where it
// matters) pay deadline, in the subject or bodies; the product is escaped
// in HTML and verbatim in text.
func TestEveryEventTypeRenders(t *testing.T) {
	r, err := render.New(render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		typ      string
		subject  string
		deadline bool
		extra    string
	}{
		{ordermsg.EventCreated, "pay by 2026-11-11 00:15 UTC", true, ""},
		{ordermsg.EventPaid, "payment received", false, ""},
		{ordermsg.EventCancelled, "cancelled", true, "the payment deadline passed"},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			m, err := r.Mail(event(tt.typ), "alice@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(m.Subject, tt.subject) || !strings.Contains(m.Subject, "0249-1") {
				t.Errorf("subject %q lacks %q or the order id", m.Subject, tt.subject)
			}
			for _, want := range []string{"0249-1", `Phone <X> & "Pro"`, "999.00", tt.extra} {
				if !strings.Contains(m.Text, want) {
					t.Errorf("text lacks %q:\n%s", want, m.Text)
				}
			}
			for _, want := range []string{"0249-1", "Phone &lt;X&gt; &amp; &#34;Pro&#34;", "999.00", tt.extra} {
				if !strings.Contains(m.HTML, want) {
					t.Errorf("HTML lacks %q:\n%s", want, m.HTML)
				}
			}
			if strings.Contains(m.HTML, "<X>") {
				t.Error("HTML carries the product name unescaped")
			}
			if tt.deadline && (!strings.Contains(m.Text, "2026-11-11 00:15 UTC") || !strings.Contains(m.HTML, "2026-11-11 00:15 UTC")) {
				t.Error("the pay deadline is missing")
			}
			if m.To != "alice@example.com" || m.MessageID != "42.mail@notifier.seckill" {
				t.Errorf("to %q message id %q", m.To, m.MessageID)
			}
			s, err := r.SMS(event(tt.typ), "+15550100")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(s.Text, "0249-1") || strings.Contains(s.Text, "\n") || s.IdempotencyKey != "42:sms" {
				t.Errorf("sms %+v", s)
			}
		})
	}
}

// A template directory overrides file by file, and a broken template is
// refused at start, naming the file.
func TestTemplateOverrides(t *testing.T) {
	dir := fstest.MapFS{
		"order.paid.txt.tmpl": {Data: []byte(`{{define "subject"}}Paid {{.OrderID}}{{end}}{{define "text"}}Thanks{{end}}{{define "sms"}}Paid{{end}}`)},
	}
	loc, _ := time.LoadLocation("Asia/Shanghai")
	r, err := render.New(render.Options{Dir: dir, Location: loc})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := r.Mail(event(ordermsg.EventPaid), "a@example.com")
	if m.Subject != "Paid 0249-1" || m.Text != "Thanks" {
		t.Errorf("override not used: %q %q", m.Subject, m.Text)
	}
	c, _ := r.Mail(event(ordermsg.EventCreated), "a@example.com")
	if !strings.Contains(c.Text, "2026-11-11 08:15 CST") {
		t.Errorf("deadline not in the configured zone:\n%s", c.Text)
	}
	for name, body := range map[string]string{
		"order.created.txt.tmpl":   `{{define "subject"}}{{.Nope}}{{end}}{{define "text"}}{{end}}{{define "sms"}}{{end}}`,
		"order.paid.html.tmpl":     `{{define "body"}}{{.OrderID}`,
		"order.cancelled.txt.tmpl": `{{define "subject"}}x{{end}}`,
	} {
		_, err := render.New(render.Options{Dir: fstest.MapFS{name: {Data: []byte(body)}}})
		if err == nil || !strings.Contains(err.Error(), strings.Split(name, ".tmpl")[0]) {
			t.Errorf("broken %s: %v, want an error naming it", name, err)
		}
	}
}

func TestFormatCents(t *testing.T) {
	for in, want := range map[int64]string{0: "0.00", 5: "0.05", 9900: "99.00", 123456: "1234.56", -250: "-2.50"} {
		if got := render.FormatCents(in); got != want {
			t.Errorf("FormatCents(%d) = %q, want %q", in, got, want)
		}
	}
}
