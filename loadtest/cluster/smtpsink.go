package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Limits of the SMTP sink.
const (
	// sinkMaxMessage is the largest message accepted; the notifier's
	// mails are a few kB.
	sinkMaxMessage = 1 << 20
	// sinkRecent is how many messages the inbox lists; all are kept on
	// disk.
	sinkRecent = 1000
)

// MailSummary is one message of the SMTP sink's inbox.
type MailSummary struct {
	ID       int       `json:"id"`
	From     string    `json:"from"`
	To       []string  `json:"to"`
	Subject  string    `json:"subject"`
	Received time.Time `json:"received"`
	Size     int       `json:"size"`
}

// Inbox is the SMTP sink's GET /messages answer.
type Inbox struct {
	Total    int           `json:"total"`    // messages received, all kept in the directory
	Messages []MailSummary `json:"messages"` // the newest first
}

// sink is a catch-all SMTP server for the notifier: it takes every message
// and keeps it as an .eml file, with the envelope in a Return-Path and a
// Delivered-To header, so mail can be read after a restart and by hand.
type sink struct {
	dir string
	log *slog.Logger

	mu     sync.Mutex
	next   int // the next message's id
	total  int
	recent []MailSummary // oldest first, at most sinkRecent
}

// ServeSMTPSink serves SMTP on smtpLn and the inbox on httpLn (GET
// /messages, GET /messages/{id} for one message as received, GET /healthz)
// until ctx ends, keeping every message in dir. Messages already in dir are
// listed too: the sink can be restarted on its directory.
func ServeSMTPSink(ctx context.Context, smtpLn, httpLn net.Listener, dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	s := &sink{dir: dir, log: log}
	if err := s.load(); err != nil {
		return err
	}
	srv := smtp.NewServer(s)
	srv.Domain = "seckill-cluster.local"
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.MaxMessageBytes = sinkMaxMessage
	srv.MaxRecipients = 100

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /messages", s.serveList)
	mux.HandleFunc("GET /messages/{id}", s.serveMessage)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	log.Info("smtp sink serving", "smtp", smtpLn.Addr().String(), "inbox", "http://"+httpLn.Addr().String()+"/messages", "dir", dir, "kept", s.total)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(smtpLn) }()
	go func() { errc <- hs.Serve(httpLn) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(err, srv.Shutdown(sctx), hs.Shutdown(sctx))
}

func (s *sink) file(id int) string { return filepath.Join(s.dir, fmt.Sprintf("%08d.eml", id)) }

// load counts the messages in dir and reads the newest for the inbox.
func (s *sink) load() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	var ids []int
	mtime := map[int]time.Time{}
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), ".eml")
		if !ok {
			continue
		}
		id, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		ids = append(ids, id)
		mtime[id] = info.ModTime()
	}
	slices.Sort(ids)
	s.total = len(ids)
	if len(ids) > 0 {
		s.next = ids[len(ids)-1] + 1
	}
	for _, id := range ids[max(0, len(ids)-sinkRecent):] {
		b, err := os.ReadFile(s.file(id))
		if err != nil {
			return err
		}
		s.recent = append(s.recent, summarize(id, b, mtime[id]))
	}
	return nil
}

// summarize reads a stored message's headers for the inbox.
func summarize(id int, b []byte, received time.Time) MailSummary {
	m := MailSummary{ID: id, Received: received.UTC(), Size: len(b)}
	msg, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		m.Subject = "(unreadable: " + err.Error() + ")"
		return m
	}
	m.From = strings.Trim(msg.Header.Get("Return-Path"), "<>")
	for _, t := range strings.Split(msg.Header.Get("Delivered-To"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			m.To = append(m.To, t)
		}
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subj = msg.Header.Get("Subject")
	}
	m.Subject = subj
	return m
}

// store keeps one message: written to a temporary file and renamed, so a
// crash never leaves half a message under a message's name.
func (s *sink) store(from string, to []string, data []byte) (MailSummary, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Return-Path: <%s>\r\nDelivered-To: %s\r\n", from, strings.Join(to, ", "))
	b.Write(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.next
	tmp := s.file(id) + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o600); err != nil {
		return MailSummary{}, err
	}
	if err := os.Rename(tmp, s.file(id)); err != nil {
		return MailSummary{}, err
	}
	s.next++
	s.total++
	m := summarize(id, b.Bytes(), time.Now())
	s.recent = append(s.recent, m)
	if len(s.recent) > sinkRecent {
		s.recent = slices.Delete(s.recent, 0, len(s.recent)-sinkRecent)
	}
	return m, nil
}

func (s *sink) serveList(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			http.Error(w, "limit must be a positive integer", http.StatusBadRequest)
			return
		}
		limit = min(n, sinkRecent)
	}
	s.mu.Lock()
	in := Inbox{Total: s.total, Messages: []MailSummary{}}
	for i := len(s.recent) - 1; i >= 0 && len(in.Messages) < limit; i-- {
		in.Messages = append(in.Messages, s.recent[i])
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(in)
}

func (s *sink) serveMessage(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 0 {
		http.Error(w, "message id must be a number", http.StatusBadRequest)
		return
	}
	b, err := os.ReadFile(s.file(id))
	if err != nil {
		http.Error(w, fmt.Sprintf("no message %d", id), http.StatusNotFound)
		return
	}
	// text/plain: a browser shows the message as it arrived.
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(b)
}

// NewSession implements smtp.Backend: every sender and recipient is taken.
func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }

type sinkSession struct {
	s    *sink
	from string
	to   []string
}

func (se *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	se.from = from
	return nil
}

func (se *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.to = append(se.to, to)
	return nil
}

func (se *sinkSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := se.s.store(se.from, se.to, data)
	if err != nil {
		se.s.log.Error("smtp sink: cannot keep a message", "err", err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot store the message now"}
	}
	se.s.log.Info("mail received", "id", m.ID, "from", m.From, "to", strings.Join(m.To, ","), "subject", m.Subject)
	return nil
}

func (se *sinkSession) Reset()        { se.from, se.to = "", nil }
func (se *sinkSession) Logout() error { return nil }
