package notifier_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/notifier"
	"github.com/flashsale/seckill/notifier/channel"
	"github.com/flashsale/seckill/notifier/contacts"
	"github.com/flashsale/seckill/notifier/internal/dbtest"
	"github.com/flashsale/seckill/notifier/ledger"
	"github.com/flashsale/seckill/notifier/render"
)

// downMailer is a mail server that refuses every connection.
type downMailer struct{}

func (downMailer) SendMail(context.Context, channel.MailMessage) error {
	return errors.New("dial tcp 127.0.0.1:25: connect: connection refused")
}

// TestHandleErrorsAreTransient: what reaches the queue from Handle is a
// database outage, marked transient so the queue waits it out instead of
// dead-lettering order events; a mail server that is down never reaches
// the queue (the ledger parks the mail).
func TestHandleErrorsAreTransient(t *testing.T) {
	db := dbtest.Backends()[0].Open(t)
	rend, err := render.New(render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := contacts.NewStore(db)
	n, err := notifier.New(notifier.Options{
		Ledger: ledger.New(db, nil), Contacts: cs, Renderer: rend, Mailer: downMailer{},
		Logger: testLogger(), SendTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Upsert(t.Context(), contacts.Contact{UserID: "alice", Email: "alice@example.com"}); err != nil {
		t.Fatal(err)
	}

	if err := n.Handle(t.Context(), message(t, event(1, "alice"))); err != nil {
		t.Fatalf("Handle with the mail server down = %v, want nil (the mail is parked for the retrier)", err)
	}

	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.Close()
	err = n.Handle(t.Context(), message(t, event(2, "alice")))
	if err == nil || !mq.IsTransient(err) {
		t.Fatalf("Handle with the database down = %v, want a transient error", err)
	}
}
