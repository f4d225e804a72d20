package cluster

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/go-sql-driver/mysql"
)

// probeTimeout bounds one readiness probe.
const probeTimeout = 2 * time.Second

// probe checks that p serves: a seckill process's /readyz (its backends
// reachable), the front door's /readyz (a gateway behind nginx ready), a
// NATS node's /healthz (JetStream current), Redis's PING, a MariaDB
// login, toxiproxy serving every proxy, the SMTP sink's inbox,
// Prometheus's /-/ready.
func probe(ctx context.Context, p *proc) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	switch p.Kind {
	case kindLB, kindGateway, kindWorker, kindNotifier:
		return httpOK(ctx, "http://"+addr(p.port(PortHTTP))+"/readyz")
	case kindNATS:
		return httpOK(ctx, "http://"+addr(p.port(PortMonitor))+"/healthz")
	case kindRedis:
		return redisPing(ctx, addr(p.port(PortClient)))
	case kindMariaDB:
		db, err := openDB(addr(p.port(PortClient)), "")
		if err != nil {
			return err
		}
		defer db.Close()
		return db.PingContext(ctx)
	case kindToxiproxy:
		return toxiproxyServes(ctx, addr(p.port(PortAPI)))
	case kindProm:
		// Ready once the rules are loaded and the storage is open.
		return httpOK(ctx, "http://"+addr(p.port(PortHTTP))+"/-/ready")
	case kindSMTP:
		if err := dial(ctx, addr(p.port(PortSMTP))); err != nil {
			return err
		}
		return httpOK(ctx, "http://"+addr(p.port(PortInbox))+"/healthz")
	}
	return fmt.Errorf("cluster: no probe for %s", p.Kind)
}

// probeGet GETs url on a connection of its own: a probe holds no idle
// connection to a process that may be killed next, and never goes
// through an HTTP proxy from the environment.
func probeGet(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return (&http.Transport{DisableKeepAlives: true}).RoundTrip(req)
}

// httpOK GETs url and wants a 200.
func httpOK(ctx context.Context, url string) error {
	resp, err := probeGet(ctx, url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

func getJSON(ctx context.Context, url string, v any) error {
	resp, err := probeGet(ctx, url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func dial(ctx context.Context, address string) error {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", address)
	if err != nil {
		return err
	}
	return c.Close()
}

// redisCommand sends one inline command and returns the first line of the
// answer: enough for PING and DBSIZE without a client library.
func redisCommand(ctx context.Context, address, cmd string) (string, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", address)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("redis %s: %w", address, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "-") {
		return "", fmt.Errorf("redis %s: %s: %s", address, cmd, line[1:])
	}
	return line, nil
}

func redisPing(ctx context.Context, address string) error {
	line, err := redisCommand(ctx, address, "PING")
	if err != nil {
		return err
	}
	if line != "+PONG" {
		return fmt.Errorf("redis %s: PING answered %q", address, line)
	}
	return nil
}

// openDB opens MariaDB as root without a password (how mariadb-install-db
// leaves it), on database db ("" for none).
func openDB(address, db string) (*sql.DB, error) {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "tcp", address, db
	c.Timeout = probeTimeout
	c.ParseTime = true
	return sql.Open("mysql", c.FormatDSN())
}

// toxiproxyServes checks that toxiproxy's API answers and serves every
// proxy of the cluster, enabled.
func toxiproxyServes(ctx context.Context, api string) error {
	var proxies map[string]toxiproxy.Proxy
	if err := getJSON(ctx, "http://"+api+"/proxies", &proxies); err != nil {
		return err
	}
	var missing []string
	for _, n := range ProxyNames() {
		if p, ok := proxies[n]; !ok || !p.Enabled {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("toxiproxy %s: proxies not served or disabled: %s", api, strings.Join(missing, ", "))
	}
	return nil
}

// waitReady polls probe until it passes, ctx ends, or the process exits
// (then the end of its log says why).
func waitReady(ctx context.Context, p *proc) error {
	var last error
	for {
		if _, ok := p.alive(); !ok {
			return fmt.Errorf("cluster: %s exited while starting; the end of %s:\n%s", p.Name, p.Log, tail(p.Log, 25))
		}
		if last = probe(ctx, p); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: %s not ready: %w (last probe: %v); the end of %s:\n%s", p.Name, ctx.Err(), last, p.Log, tail(p.Log, 25))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// jsz is the part of a NATS node's /jsz the cluster checks.
type jsz struct {
	Meta *struct {
		Leader   string `json:"leader"`
		Size     int    `json:"cluster_size"`
		Replicas []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
		} `json:"replicas"`
	} `json:"meta_cluster"`
	Accounts []struct {
		Streams []struct {
			Name   string `json:"name"`
			Config *struct {
				Replicas int `json:"num_replicas"`
			} `json:"config"`
		} `json:"stream_detail"`
	} `json:"account_details"`
}

// natsClusterReady: every node is healthy and names the same JetStream meta
// leader, and that leader sees all three nodes, the others current, so a
// stream with three replicas can be created.
func natsClusterReady(ctx context.Context, nodes []*proc) error {
	leader := ""
	for _, n := range nodes {
		if err := probe(ctx, n); err != nil {
			return err
		}
		var j jsz
		if err := getJSON(ctx, "http://"+addr(n.port(PortMonitor))+"/jsz", &j); err != nil {
			return err
		}
		if j.Meta == nil || j.Meta.Leader == "" {
			return fmt.Errorf("%s: no JetStream meta leader yet", n.Name)
		}
		if leader != "" && j.Meta.Leader != leader {
			return fmt.Errorf("%s names meta leader %s, another node %s", n.Name, j.Meta.Leader, leader)
		}
		leader = j.Meta.Leader
	}
	var l *proc
	for _, n := range nodes {
		if n.Name == leader {
			l = n
		}
	}
	if l == nil {
		return fmt.Errorf("meta leader %q is none of the cluster's nodes", leader)
	}
	var j jsz
	if err := getJSON(ctx, "http://"+addr(l.port(PortMonitor))+"/jsz", &j); err != nil {
		return err
	}
	current := 0
	for _, r := range j.Meta.Replicas {
		if r.Current && !r.Offline {
			current++
		}
	}
	if j.Meta.Size != len(nodes) || current != len(nodes)-1 {
		return fmt.Errorf("meta leader %s: cluster size %d with %d peers current, want %d and %d", leader, j.Meta.Size, current, len(nodes), len(nodes)-1)
	}
	return nil
}

// streamReplicas returns each JetStream stream's configured replicas, as
// the nodes that hold it report them (a node holds only the streams it has
// a replica of, so all are asked).
func streamReplicas(ctx context.Context, nodes []*proc) (map[string]int, error) {
	out := map[string]int{}
	var errs []error
	for _, n := range nodes {
		var j jsz
		if err := getJSON(ctx, "http://"+addr(n.port(PortMonitor))+"/jsz?accounts=true&streams=true&config=true", &j); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
			continue
		}
		for _, a := range j.Accounts {
			for _, s := range a.Streams {
				if s.Config != nil {
					out[s.Name] = max(out[s.Name], s.Config.Replicas)
				}
			}
		}
	}
	if len(errs) == len(nodes) {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
