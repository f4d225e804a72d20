package inventory

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestNewClient(t *testing.T) {
	const secret = "s3cr3t-pw"
	tests := []struct {
		url     string
		cluster bool
		addrs   []string // cluster seeds, or the single address
		db      int
		user    string
		tls     bool
		retries int    // DialerRetries; 0 means the default 1
		wantErr string // substring of the error; "" means success
	}{
		{url: "redis://127.0.0.1:6379/0", addrs: []string{"127.0.0.1:6379"}},
		{url: "redis://localhost:6380/3", addrs: []string{"localhost:6380"}, db: 3},
		{url: "redis://:" + secret + "@h:6379", addrs: []string{"h:6379"}},
		{url: "redis://bob:" + secret + "@h:6379/1?dial_timeout=1s&pool_size=20", addrs: []string{"h:6379"}, db: 1, user: "bob"},
		{url: "rediss://h:6380", addrs: []string{"h:6380"}, tls: true},
		{url: "redis://h:6379/0?dialer_retries=3&max_retries=-1", addrs: []string{"h:6379"}, retries: 3},
		{url: "redis+cluster://n1:7000,n2:7001?dialer_retries=4", cluster: true, addrs: []string{"n1:7000", "n2:7001"}, retries: 4},
		{url: "redis+cluster://n1:7000,n2:7001,n3:7002", cluster: true, addrs: []string{"n1:7000", "n2:7001", "n3:7002"}},
		{url: "redis+cluster://bob:" + secret + "@n1:7000,n2:7001/?dial_timeout=2s", cluster: true, addrs: []string{"n1:7000", "n2:7001"}, user: "bob"},
		{url: "rediss+cluster://n1:7000", cluster: true, addrs: []string{"n1:7000"}, tls: true},
		{url: "REDIS+CLUSTER://[::1]:7000,n2:7001", cluster: true, addrs: []string{"[::1]:7000", "n2:7001"}},

		{url: "", wantErr: "no scheme"},
		{url: "127.0.0.1:6379", wantErr: "no scheme"},
		{url: "not a url at all", wantErr: "no scheme"},
		{url: "http://h:6379", wantErr: `unsupported redis URL scheme "http"`},
		{url: "memcached://bob:" + secret + "@h:11211", wantErr: "unsupported redis URL scheme"},
		{url: "redis://h:6379/notadb", wantErr: "invalid database number"},
		{url: "redis://bob:" + secret + "@h:port", wantErr: "invalid port"},
		{url: "redis://h:6379/0?pool_size=many", wantErr: "pool_size"},
		{url: "redis://h:6379/0?no_such_option=1", wantErr: "unexpected option"},
		{url: "redis://h:6379/0?dialer_retries=0", wantErr: "dialer_retries"},
		{url: "redis+cluster://n1:7000?dialer_retries=x", wantErr: "dialer_retries"},
		{url: "redis+cluster://", wantErr: "no hosts"},
		{url: "redis+cluster://bob:" + secret + "@", wantErr: "no hosts"},
		{url: "redis+cluster://n1:7000,n2", wantErr: `host "n2" is not host:port`},
		{url: "redis+cluster://n1:7000,,n2:7001", wantErr: `host "" is not host:port`},
		{url: "redis+cluster://n1:7000/2", wantErr: "no database"},
		{url: "redis+cluster://n1:7000?read_timeout=soon", wantErr: "read_timeout"},
		{url: "redis+cluster://n1:7000?a=%zz", wantErr: "query does not parse"},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.url, secret, "PW"), func(t *testing.T) {
			rdb, err := NewClient(tt.url)
			if tt.wantErr != "" {
				if err == nil {
					rdb.Close()
					t.Fatalf("NewClient accepted it; want an error containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q; want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q echoes the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			t.Cleanup(func() { rdb.Close() })
			if tt.retries == 0 {
				tt.retries = 1
			}
			switch c := rdb.(type) {
			case *redis.Client:
				o := c.Options()
				if tt.cluster || o.Addr != tt.addrs[0] || o.DB != tt.db || o.Username != tt.user || (o.TLSConfig != nil) != tt.tls {
					t.Errorf("got client addr %s db %d user %q tls %v; want cluster=%v %v db %d user %q tls %v",
						o.Addr, o.DB, o.Username, o.TLSConfig != nil, tt.cluster, tt.addrs, tt.db, tt.user, tt.tls)
				}
				if o.DialerRetries != tt.retries {
					t.Errorf("DialerRetries = %d; want %d", o.DialerRetries, tt.retries)
				}
			case *redis.ClusterClient:
				o := c.Options()
				if !tt.cluster || strings.Join(o.Addrs, ",") != strings.Join(tt.addrs, ",") || o.Username != tt.user || (o.TLSConfig != nil) != tt.tls {
					t.Errorf("got cluster %v user %q tls %v; want cluster=%v %v user %q tls %v",
						o.Addrs, o.Username, o.TLSConfig != nil, tt.cluster, tt.addrs, tt.user, tt.tls)
				}
				if o.DialerRetries != tt.retries {
					t.Errorf("DialerRetries = %d; want %d", o.DialerRetries, tt.retries)
				}
				if tt.user != "" && o.Password != secret {
					t.Errorf("cluster password not taken from the URL")
				}
			default:
				t.Fatalf("NewClient returned %T", rdb)
			}
		})
	}
}

func TestEmbedded(t *testing.T) {
	e, err := NewEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	s := New(e.Client, Options{})
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping on a fresh embedded redis: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping after Close = %v; want ErrUnavailable", err)
	}
}
