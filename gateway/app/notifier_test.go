package app

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/seckill/notifier/contacts"
	"github.com/flashsale/seckill/notifier/smtptest"
)

// The all-in-one with its SMTP server down during a spike: every order is
// written while SMTP still refuses (nothing on the order path waits for
// mail), and once SMTP is back every buyer gets exactly one "order created"
// mail, at the address their demo login recorded.
func TestNotifierSMTPDownDuringSpike(t *testing.T) {
	smtp := smtptest.Start(t)
	smtp.SetDown(true)
	_, c := startApp(t, map[string]string{
		"SECKILL_SMTP_URL": smtp.URL(), "SECKILL_SMTP_FROM": "Flash Sale <shop@example.com>",
		"SECKILL_NOTIFY_RETRY_MIN": "50ms", "SECKILL_NOTIFY_RETRY_MAX": "250ms",
		"SECKILL_MAIL_RATE": "10000", "SECKILL_MAIL_BURST": "10000",
	})
	const buyers = 60
	activity := c.createActivity(t, buyers, time.Now().Add(-time.Second), time.Now().Add(time.Hour))

	var wg sync.WaitGroup
	sem := make(chan struct{}, 20)
	for i := range buyers {
		user := fmt.Sprintf("mailbuyer-%03d", i)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var tok struct{ Token string }
			if code := c.do(t, "POST", "/api/v1/auth/demo-token", "", map[string]string{"user_id": user}, &tok); code != http.StatusOK {
				t.Errorf("demo login of %s: %d", user, code)
				return
			}
			var res struct {
				OrderID string `json:"order_id"`
			}
			if code := c.do(t, "POST", "/api/v1/activities/"+activity+"/orders", tok.Token, map[string]string{}, &res); code != http.StatusAccepted {
				t.Errorf("buy by %s: %d", user, code)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	s := c.waitDrained(t, activity, buyers)
	if s.OrdersCreated != buyers {
		t.Fatalf("%d orders created while SMTP was down, want %d: %+v", s.OrdersCreated, buyers, s)
	}
	if n := len(smtp.Messages()); n != 0 {
		t.Fatalf("%d mails arrived while SMTP was down", n)
	}
	deadline := time.Now().Add(30 * time.Second)
	for smtp.Refused() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the notifier never tried SMTP while it was down")
		}
		time.Sleep(20 * time.Millisecond)
	}

	smtp.SetDown(false)
	smtp.WaitFor(t, buyers, 60*time.Second)
	time.Sleep(500 * time.Millisecond) // a duplicate would come now
	msgs := smtp.Messages()
	if len(msgs) != buyers {
		t.Fatalf("%d mails after SMTP returned, want exactly %d", len(msgs), buyers)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		p, err := smtptest.Parse(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(p.Subject, "pay by") || !strings.Contains(p.HTML, "spike") {
			t.Errorf("mail to %v: subject %q, html lacks the product", m.To, p.Subject)
		}
		seen[m.To[0]] = true
	}
	for i := range buyers {
		addr := contacts.Demo(fmt.Sprintf("mailbuyer-%03d", i)).Email
		if !seen[addr] {
			t.Errorf("no mail to %s", addr)
		}
	}
}
