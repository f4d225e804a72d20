package inventory

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// NewClient returns a go-redis client for rawURL, the value of
// SECKILL_REDIS_URL. Accepted forms:
//
//	redis://[user:password@]host:port[/db][?option=value...]
//	rediss://...                                    (TLS)
//	redis+cluster://[user:password@]host1:port1,host2:port2[?option=value...]
//	rediss+cluster://...                            (TLS)
//
// The first two give a *redis.Client (redis.ParseURL options such as
// dial_timeout, max_retries, pool_size apply). The +cluster forms give a
// *redis.ClusterClient seeded with every listed node (redis.ParseClusterURL
// options apply; a cluster has no database number, so no path is
// accepted); with TLS the certificates are checked against the first
// host's name. Errors say what is wrong with the URL and never repeat its
// password.
//
// One default differs from go-redis: a connection is dialed once per
// attempt (dialer_retries=1) instead of five times 100ms apart, so with
// Redis down a request fails in milliseconds and the gateway answers 503
// instead of holding the request; go-redis still retries the command
// itself (max_retries, default 3). dialer_retries in the URL overrides it,
// for both forms.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, errors.New("inventory: redis URL has no scheme: want redis://, rediss://, redis+cluster:// or rediss+cluster://")
	}
	switch strings.ToLower(scheme) {
	case "redis", "rediss":
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, fmt.Errorf("inventory: bad redis URL: %w", redactURLError(err))
		}
		// redis.ParseURL knows no dialer_retries; take it out first.
		q := u.Query()
		retries, err := dialerRetries(q)
		if err != nil {
			return nil, fmt.Errorf("inventory: bad redis URL: %w", err)
		}
		q.Del("dialer_retries")
		u.RawQuery = q.Encode()
		opts, err := redis.ParseURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("inventory: bad redis URL: %w", redactURLError(err))
		}
		opts.DialerRetries = retries
		return redis.NewClient(opts), nil
	case "redis+cluster", "rediss+cluster":
		opts, err := parseClusterURL(strings.TrimSuffix(strings.ToLower(scheme), "+cluster"), rest)
		if err != nil {
			return nil, fmt.Errorf("inventory: bad redis cluster URL: %w", err)
		}
		return redis.NewClusterClient(opts), nil
	default:
		return nil, fmt.Errorf("inventory: unsupported redis URL scheme %q: want redis://, rediss://, redis+cluster:// or rediss+cluster://", scheme)
	}
}

// parseClusterURL reads "[userinfo@]host:port,host:port[/][?query]" (the
// part after "scheme+cluster://") by rewriting it into the
// redis.ParseClusterURL form "scheme://userinfo@host1:port1?addr=host2:port2".
func parseClusterURL(scheme, rest string) (*redis.ClusterOptions, error) {
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	userinfo, hostList := "", authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, hostList = authority[:i+1], authority[i+1:]
	}
	path, query, _ := strings.Cut(tail, "?")
	if path != "" && path != "/" {
		return nil, errors.New("a cluster has no database: remove the path after the hosts")
	}
	if hostList == "" {
		return nil, errors.New("no hosts: want host1:port1,host2:port2")
	}
	hosts := strings.Split(hostList, ",")
	for _, h := range hosts {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("host %q is not host:port", h)
		}
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("query does not parse: %w", err)
	}
	retries, err := dialerRetries(q)
	if err != nil {
		return nil, err
	}
	q.Del("dialer_retries")
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	opts, err := redis.ParseClusterURL(scheme + "://" + userinfo + hosts[0] + "?" + q.Encode())
	if err != nil {
		return nil, redactURLError(err)
	}
	opts.DialerRetries = retries
	return opts, nil
}

// dialerRetries reads the dialer_retries option: how many times one
// connection attempt dials; 1 when absent (see NewClient).
func dialerRetries(q url.Values) (int, error) {
	v := q.Get("dialer_retries")
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("dialer_retries %q is not a positive number", v)
	}
	return n, nil
}

// redactURLError drops the URL that net/url puts in its errors, which
// would carry the password into logs.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Embedded is an in-process Redis (miniredis) with a go-redis client on it:
// the product's default when SECKILL_REDIS_URL is empty, running the same
// Lua scripts through the same client as a real Redis. Its data lives in
// memory only and is gone after Close; Load restores reservations from the
// database on the next start. No key of this package has a TTL, which
// matters here because miniredis never expires keys on its own.
type Embedded struct {
	Client redis.UniversalClient
	srv    *miniredis.Miniredis
}

// NewEmbedded starts an in-process Redis on a loopback port.
func NewEmbedded() (*Embedded, error) {
	srv, err := miniredis.Run()
	if err != nil {
		return nil, fmt.Errorf("inventory: start embedded redis: %w", err)
	}
	return &Embedded{
		Client: redis.NewClient(&redis.Options{Addr: srv.Addr()}),
		srv:    srv,
	}, nil
}

// Close closes the client and stops the server.
func (e *Embedded) Close() error {
	err := e.Client.Close()
	e.srv.Close()
	if err != nil {
		return fmt.Errorf("inventory: close embedded redis client: %w", err)
	}
	return nil
}
