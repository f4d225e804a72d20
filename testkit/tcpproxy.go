package testkit

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TCPProxy stands between a client under test and a real server (MariaDB,
// Redis, a broker) on a loopback address of its own, so that a test can take
// the server away from the client and give it back without touching the
// server, which other tests share. Cut is an outage as the client sees a
// stopped server: every open connection is closed and new ones are refused
// (ECONNREFUSED); Restore serves again on the same address, so the client's
// configuration stays valid and only its reconnect logic is tested.
type TCPProxy struct {
	target string
	addr   string

	mu     sync.Mutex
	ln     net.Listener // nil while cut or closed
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup

	accepted atomic.Int64
}

// StartTCPProxy listens on a free loopback port and forwards every
// connection to target (host:port). It is closed when the test ends.
func StartTCPProxy(t testing.TB, target string) *TCPProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("tcp proxy to %s: listen: %v", target, err)
	}
	p := &TCPProxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	t.Cleanup(p.Close)
	return p
}

// ProxyMySQL starts a TCPProxy in front of the MySQL/MariaDB server of dsn
// (go-sql-driver format, as MySQLDSN returns) and returns dsn rewritten to
// reach the same database through the proxy, with every other setting kept.
func ProxyMySQL(t testing.TB, dsn string) (string, *TCPProxy) {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("proxy mysql: DSN does not parse: %v", err)
	}
	if cfg.Net != "tcp" {
		t.Fatalf("proxy mysql: the DSN uses %q; only tcp can be proxied", cfg.Net)
	}
	p := StartTCPProxy(t, cfg.Addr)
	cfg.Addr = p.Addr()
	return cfg.FormatDSN(), p
}

// Addr is the proxy's host:port, the address to give the client.
func (p *TCPProxy) Addr() string { return p.addr }

// Target is the address the proxy forwards to.
func (p *TCPProxy) Target() string { return p.target }

// Accepted counts the client connections accepted since the start: a test
// reads it to see that a client reconnected after Restore.
func (p *TCPProxy) Accepted() int64 { return p.accepted.Load() }

// Cut closes the listener and every connection in flight, both sides, and
// returns once they are closed. Until Restore, dials to Addr are refused.
// Cutting twice is harmless.
func (p *TCPProxy) Cut() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for c := range conns {
		c.Close()
	}
}

// Restore listens again on the same address after Cut. It returns an error
// only if the port cannot be bound again within a few seconds (another
// process took it). Restoring a proxy that is not cut is harmless.
func (p *TCPProxy) Restore() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("tcp proxy: closed")
	}
	if p.ln != nil {
		return nil
	}
	// Go listeners set SO_REUSEADDR, so the port of a listener just closed
	// binds again at once; the retries cover a slow kernel.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", p.addr)
		if err == nil {
			p.serveLocked(ln)
			return nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close stops the proxy for good and waits for its goroutines.
func (p *TCPProxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.Cut()
	p.wg.Wait()
}

func (p *TCPProxy) serve(ln net.Listener) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serveLocked(ln)
}

func (p *TCPProxy) serveLocked(ln net.Listener) {
	p.ln = ln
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by Cut or Close
			}
			p.accepted.Add(1)
			p.wg.Go(func() { p.pipe(ln, c) })
		}
	})
}

// track registers c as a connection of listener ln's period of service. It
// closes c and reports false when ln was cut meanwhile: a connection
// accepted just before a Cut must not slip through it.
func (p *TCPProxy) track(ln net.Listener, c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != ln {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *TCPProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		c.Close()
	}
}

func (p *TCPProxy) pipe(ln net.Listener, client net.Conn) {
	if !p.track(ln, client) {
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		p.untrack(client) // the client sees its connection closed
		return
	}
	if !p.track(ln, server) {
		p.untrack(client)
		return
	}
	var once sync.Once
	done := func() { once.Do(func() { p.untrack(client, server) }) }
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(server, client)
		done()
	})
	wg.Go(func() {
		_, _ = io.Copy(client, server)
		done()
	})
	wg.Wait()
}
