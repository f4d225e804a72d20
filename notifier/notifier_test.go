package notifier_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/memory"
	"github.com/flashsale/seckill/notifier"
	"github.com/flashsale/seckill/notifier/channel"
	"github.com/flashsale/seckill/notifier/contacts"
	"github.com/flashsale/seckill/notifier/internal/dbtest"
	"github.com/flashsale/seckill/notifier/ledger"
	"github.com/flashsale/seckill/notifier/mail"
	"github.com/flashsale/seckill/notifier/render"
	"github.com/flashsale/seckill/notifier/sms"
	"github.com/flashsale/seckill/notifier/smtptest"
	"github.com/flashsale/seckill/order/ordermsg"
)

// testLogger discards unless SECKILL_TEST_NOTIFIER_LOG=1.
func testLogger() *slog.Logger {
	if os.Getenv("SECKILL_TEST_NOTIFIER_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fast shortens every delay so retries take milliseconds.
func fast(o *notifier.Options) {
	o.PollInterval = 20 * time.Millisecond
	o.RetryMin = 20 * time.Millisecond
	o.RetryMax = 100 * time.Millisecond
	o.SendTimeout = 5 * time.Second
	o.MailLimit = notifier.Limit{Rate: 10000, Burst: 10000}
	o.SMSLimit = notifier.Limit{Rate: 10000, Burst: 10000}
}

// rig is a notifier on an in-memory queue, with a real SMTP server and the
// given SMS texter.
type rig struct {
	db       *gorm.DB
	ledger   *ledger.Ledger
	contacts *contacts.Store
	smtp     *smtptest.Server
	broker   *memory.Broker
	n        *notifier.Notifier
	reg      *prometheus.Registry
}

func newRig(t *testing.T, db *gorm.DB, texter channel.Texter, tune ...func(*notifier.Options)) *rig {
	t.Helper()
	r := &rig{db: db, ledger: ledger.New(db, nil), contacts: contacts.NewStore(db), smtp: smtptest.Start(t), reg: prometheus.NewRegistry()}
	mailer, err := mail.NewSMTP(mail.SMTPConfig{Host: r.smtp.Host, Port: r.smtp.Port, From: "shop@example.com", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r.n = r.newNotifier(t, mailer, texter, tune...)
	r.broker = memory.New(memory.Config{Logger: testLogger(), DrainTimeout: 10 * time.Second})
	t.Cleanup(func() {
		r.broker.Close()
		r.n.Close()
	})
	if err := r.broker.Subscribe(t.Context(), ordermsg.TopicOrderEvents, notifier.SubscribeOptions(8), r.n.Handle); err != nil {
		t.Fatal(err)
	}
	return r
}

// newNotifier builds and starts another notifier on the rig's database (a
// replica, or the same process after a restart).
func (r *rig) newNotifier(t *testing.T, m channel.Mailer, tx channel.Texter, tune ...func(*notifier.Options)) *notifier.Notifier {
	t.Helper()
	rend, err := render.New(render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := notifier.Options{
		Ledger: r.ledger, Contacts: r.contacts, Renderer: rend, Mailer: m, Texter: tx,
		Logger: testLogger(),
	}
	if r.n == nil {
		opts.Registerer = r.reg
	}
	fast(&opts)
	for _, f := range tune {
		f(&opts)
	}
	n, err := notifier.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	n.Start(t.Context())
	t.Cleanup(func() { n.Close() })
	return n
}

func (r *rig) addUser(t *testing.T, user string) contacts.Contact {
	t.Helper()
	c := contacts.Contact{UserID: user, Email: user + "@example.com", Phone: contacts.Demo(user).Phone}
	if err := r.contacts.Upsert(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func event(i int, user string) ordermsg.Event {
	return ordermsg.Event{
		ID: fmt.Sprintf("o%d/order.created", i), Type: ordermsg.EventCreated, OrderID: fmt.Sprintf("o%d", i),
		ActivityID: 1, ActivityName: "Headphones", UserID: user, PriceCents: 9900,
		PayDeadline: time.Now().Add(15 * time.Minute).UTC(), OccurredAt: time.Now().UTC(),
	}
}

func message(t *testing.T, e ordermsg.Event) *mq.Message {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return &mq.Message{Key: e.UserID, Payload: b}
}

func (r *rig) publish(t *testing.T, evs ...ordermsg.Event) {
	t.Helper()
	for _, e := range evs {
		if err := r.broker.Publish(t.Context(), ordermsg.TopicOrderEvents, message(t, e)); err != nil {
			t.Fatalf("publish %s: %v", e.ID, err)
		}
	}
}

// count reads seckill_notifications_total{channel,result}.
func (r *rig) count(t *testing.T, ch, result string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "seckill_notifications_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["channel"] == ch && l["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no seckill_notifications_total{channel=%q,result=%q}", ch, result)
	return 0
}

// waitStatus waits until the (event, channel) row has status.
func (r *rig) waitStatus(t *testing.T, eventID, ch, status string) *ledger.Entry {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		e, found, err := r.ledger.Get(t.Context(), eventID, ch)
		if err != nil {
			t.Fatal(err)
		}
		if found && e.Status == status {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s did not become %s within 15s: %+v", eventID, ch, status, e)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// smsProvider is an httptest SMS provider answering from a script: the
// i-th call gets statuses[i], later calls the last status.
type smsProvider struct {
	srv      *httptest.Server
	calls    atomic.Int32
	accepted atomic.Int32
	mu       sync.Mutex
	bodies   []string
}

func newSMSProvider(t *testing.T, statuses ...int) *smsProvider {
	p := &smsProvider{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(p.calls.Add(1)) - 1
		status := statuses[min(i, len(statuses)-1)]
		b, _ := io.ReadAll(r.Body)
		if status < 300 {
			p.accepted.Add(1)
			p.mu.Lock()
			p.bodies = append(p.bodies, string(b))
			p.mu.Unlock()
		}
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, `{"status":%d}`, status)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *smsProvider) texter(t *testing.T) channel.Texter {
	w, err := sms.NewWebhook(sms.WebhookConfig{URL: p.srv.URL, AuthHeader: "Authorization: Bearer test", AllowHTTP: true}) // httptest: plain HTTP
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// settle lets several retrier rounds pass, so a retry that should not
// happen would have.
func settle() { time.Sleep(300 * time.Millisecond) }

// An SMS provider failing the first two calls with 503: the notifier
// retries with backoff, the third call is accepted, and the SMS is sent
// exactly once; the mail of the same event went out once, untouched by the
// SMS failures.
func TestSMSTransientFailuresAreRetriedAndSentOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		p := newSMSProvider(t, 503, 503, 200)
		r := newRig(t, db, p.texter(t))
		c := r.addUser(t, "alice")
		ev := event(1, "alice")
		r.publish(t, ev)

		row := r.waitStatus(t, ev.ID, channel.SMS, ledger.StatusSent)
		settle()
		if n := p.calls.Load(); n != 3 {
			t.Errorf("provider got %d calls, want 3 (two failures, one success)", n)
		}
		if n := p.accepted.Load(); n != 1 {
			t.Errorf("provider accepted %d SMS, want 1", n)
		}
		if row.Attempts != 3 {
			t.Errorf("ledger attempts %d, want 3", row.Attempts)
		}
		if !strings.Contains(p.bodies[0], c.Phone) {
			t.Errorf("SMS body %s does not go to %s", p.bodies[0], c.Phone)
		}
		if got := len(r.smtp.WaitFor(t, 1, 5*time.Second)); got != 1 {
			t.Errorf("%d mails, want 1", got)
		}
		r.waitStatus(t, ev.ID, channel.Mail, ledger.StatusSent)
		for _, m := range []struct {
			ch, result string
			want       float64
		}{
			{channel.SMS, notifier.ResultFailed, 2}, {channel.SMS, notifier.ResultRetried, 2},
			{channel.SMS, notifier.ResultSent, 1}, {channel.SMS, notifier.ResultDeadLettered, 0},
			{channel.Mail, notifier.ResultSent, 1}, {channel.Mail, notifier.ResultFailed, 0},
		} {
			if got := r.count(t, m.ch, m.result); got != m.want {
				t.Errorf("seckill_notifications_total{channel=%s,result=%s} = %v, want %v", m.ch, m.result, got, m.want)
			}
		}
	})
}

// A provider answering 400 refuses this message for good: one call, no
// retry, and the row is dead-lettered with the provider's reason.
func TestSMSPermanentFailureIsDeadLetteredNotRetried(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		p := newSMSProvider(t, 400)
		r := newRig(t, db, p.texter(t))
		r.addUser(t, "bob")
		ev := event(2, "bob")
		r.publish(t, ev)

		row := r.waitStatus(t, ev.ID, channel.SMS, ledger.StatusDeadLettered)
		settle()
		if n := p.calls.Load(); n != 1 {
			t.Errorf("provider got %d calls, want 1: a 400 must not be retried", n)
		}
		if !strings.Contains(row.LastError, "400") {
			t.Errorf("dead-letter reason %q does not carry the provider's 400", row.LastError)
		}
		if row.Attempts != 1 {
			t.Errorf("attempts %d, want 1", row.Attempts)
		}
		if got := r.count(t, channel.SMS, notifier.ResultDeadLettered); got != 1 {
			t.Errorf("dead_lettered = %v, want 1", got)
		}
		if got := r.count(t, channel.SMS, notifier.ResultRetried); got != 0 {
			t.Errorf("retried = %v, want 0", got)
		}
		// The mail is a separate notification and went out.
		r.waitStatus(t, ev.ID, channel.Mail, ledger.StatusSent)
	})
}

// The same event delivered twice, whatever the path, yields one mail and
// one SMS.
func TestDuplicateEventSendsOnce(t *testing.T) {
	tests := []struct {
		name    string
		deliver func(t *testing.T, r *rig, p *smsProvider, ev ordermsg.Event)
	}{
		{"redelivered through the queue", func(t *testing.T, r *rig, _ *smsProvider, ev ordermsg.Event) {
			r.publish(t, ev, ev)
		}},
		{"to two replicas at the same moment", func(t *testing.T, r *rig, p *smsProvider, ev ordermsg.Event) {
			mailer, err := mail.NewSMTP(mail.SMTPConfig{Host: r.smtp.Host, Port: r.smtp.Port, From: "shop@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			replica := r.newNotifier(t, mailer, p.texter(t))
			var wg sync.WaitGroup
			for _, n := range []*notifier.Notifier{r.n, replica} {
				wg.Go(func() {
					if err := n.Handle(t.Context(), message(t, ev)); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
		}},
		{"again after a restart", func(t *testing.T, r *rig, p *smsProvider, ev ordermsg.Event) {
			r.publish(t, ev)
			r.waitStatus(t, ev.ID, channel.Mail, ledger.StatusSent)
			r.waitStatus(t, ev.ID, channel.SMS, ledger.StatusSent)
			r.n.Close()
			mailer, err := mail.NewSMTP(mail.SMTPConfig{Host: r.smtp.Host, Port: r.smtp.Port, From: "shop@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			restarted := r.newNotifier(t, mailer, p.texter(t))
			if err := restarted.Handle(t.Context(), message(t, ev)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
				p := newSMSProvider(t, 200)
				r := newRig(t, db, p.texter(t))
				r.addUser(t, "carol")
				ev := event(3, "carol")
				tt.deliver(t, r, p, ev)
				r.waitStatus(t, ev.ID, channel.Mail, ledger.StatusSent)
				r.waitStatus(t, ev.ID, channel.SMS, ledger.StatusSent)
				settle()
				if got := len(r.smtp.Messages()); got != 1 {
					t.Errorf("%d mails arrived, want 1", got)
				}
				if got := p.accepted.Load(); got != 1 {
					t.Errorf("%d SMS accepted, want 1", got)
				}
			})
		})
	}
}

// SMTP is down while a spike of order events arrives. The notifier never
// holds an event: every event is consumed (the queue drains, the SMS go out,
// the mails are parked in the ledger) while SMTP still refuses, so nothing
// upstream waits on SMTP. Once SMTP is back, every mail arrives, each once.
func TestSMTPDownDuringSpike(t *testing.T) {
	const events = 200
	p := newSMSProvider(t, 200)
	r := newRig(t, dbtest.Backends()[0].Open(t), p.texter(t))
	users := make([]string, events)
	for i := range users {
		users[i] = fmt.Sprintf("buyer%03d", i)
		r.addUser(t, users[i])
	}
	r.smtp.SetDown(true)
	evs := make([]ordermsg.Event, events)
	for i := range evs {
		evs[i] = event(100+i, users[i])
	}
	r.publish(t, evs...)

	// Consumed while SMTP refuses: the queue is empty, every SMS went
	// out, every mail is parked with at least one failed attempt.
	waitUntil(t, 30*time.Second, "the notifier to consume every event while SMTP is down", func() bool {
		if r.broker.Depth(ordermsg.TopicOrderEvents) != 0 || int(p.accepted.Load()) != events {
			return false
		}
		var parked int64
		r.db.Model(&ledger.Entry{}).Where("channel = ? AND status = ? AND attempts >= 1", channel.Mail, ledger.StatusPending).Count(&parked)
		return parked == events
	})
	if got := len(r.smtp.Messages()); got != 0 {
		t.Fatalf("%d mails arrived while SMTP was down", got)
	}
	if r.smtp.Refused() == 0 {
		t.Fatal("SMTP never refused a connection: the outage was not exercised")
	}
	if got := r.count(t, channel.Mail, notifier.ResultRetried); got < events {
		t.Errorf("retried = %v, want at least %d", got, events)
	}

	r.smtp.SetDown(false)
	got := r.smtp.WaitFor(t, events, 60*time.Second)
	settle()
	got = r.smtp.Messages()
	if len(got) != events {
		t.Fatalf("%d mails arrived after SMTP returned, want exactly %d", len(got), events)
	}
	seen := map[string]bool{}
	for _, m := range got {
		if seen[m.To[0]] {
			t.Errorf("%s got two mails", m.To[0])
		}
		seen[m.To[0]] = true
	}
	for _, u := range users {
		if !seen[u+"@example.com"] {
			t.Errorf("%s got no mail", u)
		}
	}
	if n := int(p.accepted.Load()); n != events {
		t.Errorf("%d SMS, want %d: the mail outage re-sent SMS", n, events)
	}
	var sent int64
	r.db.Model(&ledger.Entry{}).Where("channel = ? AND status = ?", channel.Mail, ledger.StatusSent).Count(&sent)
	if sent != events {
		t.Errorf("%d mail rows sent, want %d", sent, events)
	}
}

// Transient failures past RetryFor are dead-lettered with the last error.
func TestRetriesStopAfterRetryFor(t *testing.T) {
	p := newSMSProvider(t, 503)
	r := newRig(t, dbtest.Backends()[0].Open(t), p.texter(t), func(o *notifier.Options) { o.RetryFor = 150 * time.Millisecond })
	r.addUser(t, "dave")
	ev := event(4, "dave")
	r.publish(t, ev)
	row := r.waitStatus(t, ev.ID, channel.SMS, ledger.StatusDeadLettered)
	if !strings.Contains(row.LastError, "gave up after") || !strings.Contains(row.LastError, "503") {
		t.Errorf("reason %q, want 'gave up after ... 503'", row.LastError)
	}
	if row.Attempts < 2 {
		t.Errorf("attempts %d, want several before giving up", row.Attempts)
	}
}

// A notification whose owner died mid-attempt (inserted, never settled) is
// sent by another notifier once the lease passes.
func TestOrphanedNotificationIsRetriedAfterTheLease(t *testing.T) {
	db := dbtest.Backends()[0].Open(t)
	p := newSMSProvider(t, 200)
	r := newRig(t, db, p.texter(t), func(o *notifier.Options) { o.SendTimeout = 100 * time.Millisecond })
	r.addUser(t, "erin")
	ev := event(5, "erin")
	payload, _ := json.Marshal(ev)
	// What a crashed process leaves: the claim, nothing else.
	if ins, _, err := r.ledger.Insert(t.Context(), &ledger.Entry{
		EventID: ev.ID, Channel: channel.SMS, EventType: ev.Type, OrderID: ev.OrderID, UserID: ev.UserID,
		Recipient: "+15550199", Payload: payload,
	}, 300*time.Millisecond); err != nil || !ins {
		t.Fatal(ins, err)
	}
	row := r.waitStatus(t, ev.ID, channel.SMS, ledger.StatusSent)
	if row.Attempts != 1 || p.accepted.Load() != 1 {
		t.Errorf("attempts %d, SMS %d; want 1 and 1", row.Attempts, p.accepted.Load())
	}
}

// Events the notifier cannot read are dropped (counted, logged), never
// retried; users without an address are skipped per channel.
func TestUnreadableEventsAndMissingContacts(t *testing.T) {
	p := newSMSProvider(t, 200)
	r := newRig(t, dbtest.Backends()[0].Open(t), p.texter(t))
	for _, payload := range []string{`not json`, `{"event_id":"x","type":"order.shipped","order_id":"o","user_id":"u"}`, `{"type":"order.created"}`} {
		if err := r.n.Handle(t.Context(), &mq.Message{Payload: []byte(payload)}); err != nil {
			t.Errorf("Handle(%s) = %v, want nil (dropped, not retried)", payload, err)
		}
	}
	if err := r.contacts.Upsert(t.Context(), contacts.Contact{UserID: "mailonly", Email: "m@example.com"}); err != nil {
		t.Fatal(err)
	}
	for i, user := range []string{"unknown-user", "mailonly"} {
		if err := r.n.Handle(t.Context(), message(t, event(200+i, user))); err != nil {
			t.Fatal(err)
		}
	}
	r.waitStatus(t, event(201, "mailonly").ID, channel.Mail, ledger.StatusSent)
	if got := r.count(t, channel.SMS, notifier.ResultSkipped); got != 2 {
		t.Errorf("sms skipped = %v, want 2", got)
	}
	if got := r.count(t, channel.Mail, notifier.ResultSkipped); got != 1 {
		t.Errorf("mail skipped = %v, want 1", got)
	}
	if p.calls.Load() != 0 {
		t.Errorf("%d SMS calls, want none", p.calls.Load())
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
