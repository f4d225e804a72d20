package notifier_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/flashsale/seckill/mq/memory"
	"github.com/flashsale/seckill/mq/mqotel"
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

// headerProvider is an SMS provider answering statuses in turn (the last
// one repeated) and keeping the trace headers it was sent.
type headerProvider struct {
	srv          *httptest.Server
	mu           sync.Mutex
	calls        int
	traceHeaders []string
}

func newHeaderProvider(t *testing.T, statuses ...int) *headerProvider {
	p := &headerProvider{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		status := statuses[min(p.calls, len(statuses)-1)]
		p.calls++
		p.traceHeaders = append(p.traceHeaders, r.Header.Get("traceparent")+r.Header.Get("tracestate"))
		p.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func spanAttr(s tracetest.SpanStub, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// The sends of an event are spans in the event's trace, children of its
// consumer span, naming channel, event type and outcome, with the SMS
// webhook's HTTP request a client span inside "notify sms" whose URL has no
// query and which sends no trace header to the provider. A send the
// retrier makes later is a trace of its own.
func TestSendSpansShareTheEventsTrace(t *testing.T) {
	for _, tc := range []struct {
		name     string
		statuses []int
		outcomes []string // of the "notify sms" spans, in order
	}{
		{"sent", []int{200}, []string{notifier.OutcomeSent}},
		{"refused", []int{400}, []string{notifier.OutcomeDeadLettered}},
		{"retried", []int{503, 200}, []string{notifier.OutcomeRetry, notifier.OutcomeSent}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

			db := dbtest.Backends()[0].Open(t)
			lg := ledger.New(db, nil)
			cs := contacts.NewStore(db)
			srv := smtptest.Start(t)
			mailer, err := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "shop@example.com", Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			p := newHeaderProvider(t, tc.statuses...)
			texter, err := sms.NewWebhook(sms.WebhookConfig{URL: p.srv.URL + "/send?api_key=Secret123", AllowHTTP: true, TracerProvider: tp})
			if err != nil {
				t.Fatal(err)
			}
			rend, err := render.New(render.Options{})
			if err != nil {
				t.Fatal(err)
			}
			opts := notifier.Options{Ledger: lg, Contacts: cs, Renderer: rend, Mailer: mailer, Texter: texter, Logger: testLogger(), TracerProvider: tp}
			fast(&opts)
			n, err := notifier.New(opts)
			if err != nil {
				t.Fatal(err)
			}
			n.Start(t.Context())
			broker := memory.New(memory.Config{Logger: testLogger()})
			t.Cleanup(func() {
				broker.Close()
				n.Close()
			})
			tcfg := mqotel.Config{TracerProvider: tp}
			if err := mqotel.NewSubscriber(broker, tcfg).Subscribe(t.Context(), ordermsg.TopicOrderEvents, notifier.SubscribeOptions(4), n.Handle); err != nil {
				t.Fatal(err)
			}
			if err := cs.Upsert(t.Context(), contacts.Contact{UserID: "alice", Email: "alice@example.com", Phone: "+15550100"}); err != nil {
				t.Fatal(err)
			}

			// The relay's publish, in the order's trace.
			ctx, orderSpan := tp.Tracer("test").Start(t.Context(), "order")
			ev := event(1, "alice")
			if err := mqotel.NewPublisher(broker, tcfg).Publish(ctx, ordermsg.TopicOrderEvents, message(t, ev)); err != nil {
				t.Fatal(err)
			}
			orderSpan.End()
			want := orderSpan.SpanContext().TraceID()

			// The consumer span ends after Handle, the first sends inside it.
			var mails, texts, consumers []tracetest.SpanStub
			deadline := time.Now().Add(15 * time.Second)
			for len(mails) < 1 || len(texts) < len(tc.outcomes) || len(consumers) < 1 {
				if time.Now().After(deadline) {
					t.Fatalf("%d notify mail, %d notify sms and %d consumer spans ended, want 1, %d and 1",
						len(mails), len(texts), len(consumers), len(tc.outcomes))
				}
				time.Sleep(10 * time.Millisecond)
				mails, texts, consumers = nil, nil, nil
				for _, s := range exp.GetSpans() {
					switch s.Name {
					case "notify mail":
						mails = append(mails, s)
					case "notify sms":
						texts = append(texts, s)
					case ordermsg.TopicOrderEvents + " process":
						consumers = append(consumers, s)
					}
				}
			}
			consumer := consumers[0]
			first := []tracetest.SpanStub{mails[0], texts[0]}
			for _, s := range first {
				if s.SpanContext.TraceID() != want || s.Parent.SpanID() != consumer.SpanContext.SpanID() {
					t.Errorf("span %q: trace %s parent %s, want the event's trace %s under its consumer span %s",
						s.Name, s.SpanContext.TraceID(), s.Parent.SpanID(), want, consumer.SpanContext.SpanID())
				}
				if got := spanAttr(s, notifier.EventTypeKey).AsString(); got != ordermsg.EventCreated {
					t.Errorf("span %q: event type %q, want %q", s.Name, got, ordermsg.EventCreated)
				}
			}
			if got := spanAttr(mails[0], notifier.ChannelKey).AsString(); got != channel.Mail {
				t.Errorf("notify mail: channel %q", got)
			}
			if got := spanAttr(mails[0], notifier.OutcomeKey).AsString(); got != notifier.OutcomeSent {
				t.Errorf("notify mail: outcome %q, want %q", got, notifier.OutcomeSent)
			}
			slices.SortFunc(texts, func(a, b tracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
			for i, s := range texts {
				if got := spanAttr(s, notifier.ChannelKey).AsString(); got != channel.SMS {
					t.Errorf("notify sms: channel %q", got)
				}
				if got := spanAttr(s, notifier.OutcomeKey).AsString(); got != tc.outcomes[i] {
					t.Errorf("notify sms attempt %d: outcome %q, want %q", i+1, got, tc.outcomes[i])
				}
				if i > 0 && s.SpanContext.TraceID() == want {
					t.Errorf("the retrier's attempt %d is in the event's trace; want a trace of its own", i+1)
				}
			}

			// The webhook's request: a client span under the first send.
			var clients []tracetest.SpanStub
			for _, s := range exp.GetSpans() {
				if s.Parent.SpanID() == texts[0].SpanContext.SpanID() {
					clients = append(clients, s)
				}
			}
			if len(clients) != 1 {
				t.Fatalf("%d spans under the first notify sms, want the webhook's request", len(clients))
			}
			if got := spanAttr(clients[0], "url.full").AsString(); got != p.srv.URL+"/send" {
				t.Errorf("webhook span url.full = %q, want %q (no query: it may hold the key)", got, p.srv.URL+"/send")
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			for i, h := range p.traceHeaders {
				if h != "" {
					t.Errorf("request %d to the provider carried trace headers %q, want none", i+1, h)
				}
			}
		})
	}
}
