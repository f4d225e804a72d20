package testkit

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
	return ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, line string) error {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		t.Fatalf("echo of %q = %q", line, got)
	}
	return nil
}

func TestTCPProxyCutAndRestore(t *testing.T) {
	p := StartTCPProxy(t, echoServer(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(t, c, "before"); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}

	p.Cut()
	// The open connection is closed: a read ends (EOF or reset), never hangs.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, syscall.ETIMEDOUT) || isTimeout(err) {
		t.Fatalf("read on a cut connection = %v, want EOF or reset", err)
	}
	// New connections are refused (not left to time out: that error
	// would not be ECONNREFUSED).
	if _, err := net.DialTimeout("tcp", p.Addr(), 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while cut = %v, want connection refused", err)
	}
	p.Cut() // twice is harmless

	if err := p.Restore(); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if err := p.Restore(); err != nil {
		t.Fatalf("second Restore: %v", err)
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("dial after Restore on the same address: %v", err)
	}
	defer c2.Close()
	if err := roundTrip(t, c2, "after"); err != nil {
		t.Fatalf("through the restored proxy: %v", err)
	}
	if n := p.Accepted(); n != 2 {
		t.Errorf("Accepted = %d, want 2", n)
	}
}

func TestTCPProxyTargetDown(t *testing.T) {
	// A target nobody listens on: the client's connection is accepted and
	// then closed, as a proxy in front of a dead server does.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()
	p := StartTCPProxy(t, target)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("read = %v, want the connection closed", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
