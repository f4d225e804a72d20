package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/smtp"
	"strings"
	"testing"
	"time"
)

type runningSink struct {
	smtp, inbox string
	stop        func()
}

func startSink(t *testing.T, dir string) runningSink {
	t.Helper()
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeSMTPSink(ctx, sl, hl, dir, slog.New(slog.DiscardHandler)) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sink: %v", err)
		}
	}
	t.Cleanup(func() {
		select {
		case <-ctx.Done():
		default:
			stop()
		}
	})
	return runningSink{smtp: sl.Addr().String(), inbox: "http://" + hl.Addr().String(), stop: stop}
}

func inbox(t *testing.T, url string) Inbox {
	t.Helper()
	resp, err := http.Get(url + "/messages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var in Inbox
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil {
		t.Fatal(err)
	}
	return in
}

func send(t *testing.T, addr, from string, to []string, subject string) {
	t.Helper()
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n\r\nYour order is created.\r\n",
		from, strings.Join(to, ", "), subject, time.Now().Format(time.RFC1123Z))
	if err := smtp.SendMail(addr, nil, from, to, []byte(msg)); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
}

func TestSMTPSinkKeepsAndListsMail(t *testing.T) {
	dir := t.TempDir()
	s := startSink(t, dir)
	send(t, s.smtp, "no-reply@seckill.local", []string{"u1@example.com", "u2@example.com"}, "=?utf-8?q?Order_created_=E2=9C=93?=")
	send(t, s.smtp, "no-reply@seckill.local", []string{"u3@example.com"}, "Order paid")

	in := inbox(t, s.inbox)
	if in.Total != 2 || len(in.Messages) != 2 {
		t.Fatalf("inbox %+v, want 2 messages", in)
	}
	newest, oldest := in.Messages[0], in.Messages[1]
	if newest.Subject != "Order paid" || oldest.Subject != "Order created ✓" {
		t.Errorf("subjects %q, %q: want the newest first, decoded", newest.Subject, oldest.Subject)
	}
	if oldest.From != "no-reply@seckill.local" || strings.Join(oldest.To, ",") != "u1@example.com,u2@example.com" {
		t.Errorf("envelope %s -> %v", oldest.From, oldest.To)
	}

	resp, err := http.Get(fmt.Sprintf("%s/messages/%d", s.inbox, oldest.ID))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(raw), "Your order is created.") || !strings.HasPrefix(string(raw), "Return-Path: <no-reply@seckill.local>") {
		t.Errorf("message %d as kept:\n%s", oldest.ID, raw)
	}
	if resp, err := http.Get(s.inbox + "/messages/99"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a message that does not exist: %v %v, want 404", resp.Status, err)
	}

	// Restarted on its directory, the sink lists what it kept and numbers on.
	s.stop()
	s2 := startSink(t, dir)
	send(t, s2.smtp, "no-reply@seckill.local", []string{"u4@example.com"}, "Order cancelled")
	in = inbox(t, s2.inbox)
	if in.Total != 3 || in.Messages[0].Subject != "Order cancelled" || in.Messages[0].ID != newest.ID+1 || in.Messages[2].Subject != "Order created ✓" {
		t.Fatalf("after a restart: %+v", in)
	}
}
