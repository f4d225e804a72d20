package delivery_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/kafka"
	"github.com/flashsale/seckill/mq/natsjs"
	"github.com/flashsale/seckill/notifier"
	"github.com/flashsale/seckill/notifier/contacts"
	"github.com/flashsale/seckill/notifier/delivery"
	"github.com/flashsale/seckill/notifier/schema"
	"github.com/flashsale/seckill/notifier/smtptest"
	"github.com/flashsale/seckill/order/ordermsg"
	"github.com/flashsale/seckill/order/sqldb"
	"github.com/flashsale/seckill/testkit"
)

// syncBuffer is an io.Writer safe for the process and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// seedContacts creates the notifier's tables in the MariaDB database and
// stores the buyers' contacts, as the demo login would.
func seedContacts(t *testing.T, dsn string, users []string) {
	t.Helper()
	db, err := sqldb.Open(t.Context(), sqldb.Config{DSN: dsn, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	if err := schema.Migrate(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	s := contacts.NewStore(db)
	for _, u := range users {
		if err := s.Upsert(t.Context(), contacts.Contact{UserID: u, Email: u + "@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
}

func publishEvents(t *testing.T, pub mq.Publisher, evs []ordermsg.Event) {
	t.Helper()
	for _, e := range evs {
		b, _ := json.Marshal(e)
		if err := pub.Publish(t.Context(), ordermsg.TopicOrderEvents, &mq.Message{Key: e.UserID, Payload: b}); err != nil {
			t.Fatalf("publish %s: %v", e.ID, err)
		}
	}
}

func events(users []string) []ordermsg.Event {
	var evs []ordermsg.Event
	for i, u := range users {
		evs = append(evs, ordermsg.Event{
			ID: fmt.Sprintf("k%d/order.paid", i), Type: ordermsg.EventPaid, OrderID: fmt.Sprintf("k%d", i),
			ActivityID: 1, ActivityName: "Kafka mug", UserID: u, PriceCents: 1500, OccurredAt: time.Now().UTC(),
		})
	}
	return evs
}

// The standalone notifier in Kafka mode (the real wire protocol, franz-go's
// kfake), on MariaDB: it consumes order events published by another client,
// sends every mail once (each event is also published twice), serves
// /healthz, /readyz and /metrics, and stops cleanly when its context ends.
// TestRunOnQueues: the service binary on each queue that runs apart from
// the gateway sends one mail per event however often the event arrives,
// and serves its health and metrics.
func TestRunOnQueues(t *testing.T) {
	for _, backend := range []string{"kafka", "nats"} {
		t.Run(backend, func(t *testing.T) { runOnQueue(t, backend) })
	}
}

func runOnQueue(t *testing.T, backend string) {
	dsn := testkit.MySQLDSN(t)
	smtp := smtptest.Start(t)
	users := []string{"kim", "lee", "max", "nia"}
	seedContacts(t, dsn, users)
	env := map[string]string{
		"SECKILL_MQ": backend, "SECKILL_DB_DSN": dsn, "SECKILL_HTTP_ADDR": "127.0.0.1:0",
		"SECKILL_SMTP_URL": smtp.URL(), "SECKILL_SMTP_FROM": "shop@example.com", "SECKILL_SHUTDOWN_TIMEOUT": "10s",
	}
	// The relay's side: a publisher of the order events on the same queue.
	var pub mq.Publisher
	switch backend {
	case "kafka":
		brokers := newCluster(t)
		env["SECKILL_KAFKA_BROKERS"], env["SECKILL_KAFKA_PARTITIONS"], env["SECKILL_KAFKA_SESSION_TIMEOUT"] = strings.Join(brokers, ","), "3", "6s"
		kp, err := kafka.New(t.Context(), kafka.Config{Brokers: brokers, ClientID: "test-relay", Partitions: 3, AuxPartitions: 1, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = kp.Close() })
		pub = kp
	case "nats":
		// A separate nats-server process, as a deployment runs it. Events
		// published before the notifier ever started are kept: the relay
		// declares the notifier's group, as the order workers' process does.
		url := testkit.StartNATS(t, testkit.NATSServerBinary(t))
		env["SECKILL_NATS_URL"] = url
		np, err := natsjs.New(t.Context(), natsjs.Config{URL: url, Groups: map[string][]string{ordermsg.TopicOrderEvents: {notifier.Group}}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = np.Close() })
		pub = np
	}
	run := startRun(t, env)
	base, stderr := run.base, run.stderr

	evs := events(users)
	publishEvents(t, pub, append(evs, evs...))
	smtp.WaitFor(t, len(users), 60*time.Second)
	time.Sleep(time.Second) // the duplicates are handled by now
	if got := len(smtp.Messages()); got != len(users) {
		t.Errorf("%d mails, want %d (each event was published twice)", got, len(users))
	}

	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": `seckill_notifications_total{channel="mail",result="sent"} 4`} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
	if strings.Contains(stderr.String(), "CHANGE_ME") {
		t.Error("secrets in the log")
	}
	run.stop(t)
}

// The binary refuses a bad configuration at start, naming each variable,
// and never echoing a secret.
func TestRunRefusesBadConfiguration(t *testing.T) {
	for _, tc := range []struct {
		mq   string
		want []string // variables the error must name
	}{
		{"embedded", []string{"SECKILL_MQ"}},
		{"kafka", []string{"SECKILL_KAFKA_BROKERS"}},
		{"nats", []string{"SECKILL_NATS_URL"}},
	} {
		t.Run(tc.mq, func(t *testing.T) {
			env := map[string]string{
				"SECKILL_MQ": tc.mq, "SECKILL_SMTP_URL": "smtp://user:TopSecret99@", "SECKILL_MAIL_RATE": "fast",
				"SECKILL_SMS_WEBHOOK_AUTH_HEADER": "no colon TopSecret88",
			}
			err := delivery.Run(t.Context(), func(k string) string { return env[k] }, io.Discard, io.Discard, nil)
			if err == nil {
				t.Fatal("Run accepted a broken configuration")
			}
			for _, name := range append(tc.want, "SECKILL_DB_DSN", "SECKILL_SMTP_URL", "SECKILL_MAIL_RATE", "SECKILL_SMS_WEBHOOK_AUTH_HEADER") {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error does not name %s:\n%v", name, err)
				}
			}
			if strings.Contains(err.Error(), "TopSecret") {
				t.Errorf("error shows a secret:\n%v", err)
			}
		})
	}
}

// The built binary answers SIGTERM with a clean exit 0, and -healthcheck
// reports on its /healthz.
func TestBinarySIGTERM(t *testing.T) {
	dsn := testkit.MySQLDSN(t)
	brokers := newCluster(t)
	smtp := smtptest.Start(t)
	bin := filepath.Join(t.TempDir(), "seckill-notifier")
	build := exec.Command("go", "build", "-o", bin, "../cmd/seckill-notifier")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	port := freePort(t)
	env := append(os.Environ(), "SECKILL_MQ=kafka", "SECKILL_KAFKA_BROKERS="+strings.Join(brokers, ","),
		"SECKILL_KAFKA_PARTITIONS=3", "SECKILL_KAFKA_SESSION_TIMEOUT=6s", "SECKILL_DB_DSN="+dsn,
		"SECKILL_HTTP_ADDR=127.0.0.1:"+port, "SECKILL_SMTP_URL="+smtp.URL(), "SECKILL_SMTP_FROM=shop@example.com")
	cmd := exec.Command(bin)
	cmd.Env = env
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		hc := exec.Command(bin, "-healthcheck")
		hc.Env = env
		if hc.Run() == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("-healthcheck never passed\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit within 30s of SIGTERM\n%s", out.String())
	}
	if !strings.Contains(out.String(), "stopped cleanly") {
		t.Errorf("log lacks the clean stop:\n%s", out.String())
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strings.TrimPrefix(ln.Addr().String()[strings.LastIndex(ln.Addr().String(), ":"):], ":")
}
