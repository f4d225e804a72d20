package testkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// EnvNATSServer names the nats-server binary the JetStream integration
// tests run as separate processes. It must be 2.12 or later (message
// schedules); scripts/ci-services.sh builds it from the version mq/go.mod
// pins and prints this variable.
const EnvNATSServer = "SECKILL_TEST_NATS_SERVER"

// natsDeadline bounds every wait for nats-server: a process to accept
// connections, a cluster to elect its JetStream meta leader.
const natsDeadline = 30 * time.Second

// routeSettle is how long after its start a cluster's routes may still
// change: nats-server retries a failed route dial after a second.
const routeSettle = 2 * time.Second

// NATSCachedBinary is where scripts/ci-services.sh builds nats-server:
// $XDG_CACHE_HOME/seckill/bin/nats-server, or ~/.cache/seckill/bin/.
func NATSCachedBinary() string {
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache")
	}
	return filepath.Join(dir, "seckill", "bin", "nats-server")
}

// NATSServerBinary returns the nats-server to run: SECKILL_TEST_NATS_SERVER,
// else the one built into NATSCachedBinary. The nats-server on PATH is not
// used: distributions ship releases too old for JetStream message
// schedules. Without a binary the test is skipped, or fails under CI=true;
// a binary that is not a nats-server 2.12 or later fails the test.
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(EnvNATSServer)
	if bin == "" {
		bin = NATSCachedBinary()
		if _, err := os.Stat(bin); err != nil {
			msg := fmt.Sprintf("%s is not set and %s does not exist", EnvNATSServer, bin)
			build := "build it with scripts/ci-services.sh, or: (cd mq && go build -o " + bin + " github.com/nats-io/nats-server/v2)"
			if InCI() {
				t.Fatalf("%s: this nats-server integration test must run in CI (%s)", msg, build)
			}
			t.Skipf("%s: skipping this nats-server integration test (%s)", msg, build)
		}
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v: %s", bin, err, out)
	}
	v := strings.TrimSpace(string(out)) // "nats-server: v2.15.2"
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimPrefix(v, "nats-server: "), "v%d.%d", &major, &minor); err != nil {
		t.Fatalf("%s --version = %q: not a nats-server version", bin, v)
	}
	if major < 2 || major == 2 && minor < 12 {
		t.Fatalf("%s is %s: JetStream message schedules need nats-server 2.12 or later (rebuild it with scripts/ci-services.sh)", bin, v)
	}
	return bin
}

// NATSServer is one nats-server process with JetStream, its file store in
// a temporary directory, listening on loopback. Stop kills it as a crash
// would; Start starts it again on the same ports and store.
type NATSServer struct {
	Name string // --server_name
	URL  string // nats://127.0.0.1:port, for clients

	t       testing.TB
	bin     string
	args    []string
	monitor int    // HTTP monitoring port
	route   string // host:port of the cluster listener, when clustered
	dir     string // store and output
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// StartNATS starts one nats-server with JetStream on free loopback ports,
// waits until JetStream is ready and returns its nats:// URL. The process
// is killed when the test ends, and when the test binary dies (Linux).
func StartNATS(t testing.TB, bin string) string {
	t.Helper()
	var errs []error
	for range 3 { // a free port may be taken before the server binds it
		ports, err := freePortList(2)
		if err != nil {
			t.Fatal(err)
		}
		s := newNATSServer(t, bin, "seckill-test", ports[0], ports[1])
		if err := s.launch(); err != nil {
			t.Fatal(err)
		}
		if err := s.waitAccepting(); err != nil {
			s.Stop()
			errs = append(errs, err)
			continue
		}
		t.Cleanup(s.logOnFailure)
		if err := pollUntil(natsDeadline, func() error { return s.healthy() }); err != nil {
			t.Fatalf("nats-server %s: JetStream not ready after %v: %v", s.Name, natsDeadline, err)
		}
		return s.URL
	}
	t.Fatalf("nats-server did not start: %v", errors.Join(errs...))
	return ""
}

// StartNATSCluster starts an n-node JetStream cluster (StartNATSClusterNodes)
// and returns the URLs of its nodes, comma-separated, as nats.Connect takes
// them.
func StartNATSCluster(t testing.TB, bin string, n int) string {
	t.Helper()
	nodes := StartNATSClusterNodes(t, bin, n)
	urls := make([]string, len(nodes))
	for i, s := range nodes {
		urls[i] = s.URL
	}
	return strings.Join(urls, ",")
}

// StartNATSClusterNodes starts n nats-server processes with JetStream that
// route to each other as one cluster, distinct server names and a store
// each, and waits until every node is healthy and agrees on a JetStream
// meta leader that sees all the others current, so a stream with n
// replicas can be created at once, and until the routes have settled. A
// test that must not see the rare JetStream API request a young cluster
// loses should still create a stream, retrying, before it starts. The
// processes are killed when the test ends, and when the test binary dies
// (Linux).
func StartNATSClusterNodes(t testing.TB, bin string, n int) []*NATSServer {
	t.Helper()
	var errs []error
	for range 3 { // a free port may be taken before a server binds it
		launched := time.Now()
		nodes, err := tryStartNATSCluster(t, bin, n)
		if err == nil {
			if err := pollUntil(natsDeadline, func() error { return clusterReady(nodes) }); err != nil {
				t.Fatalf("nats-server cluster of %d not ready after %v: %v", n, natsDeadline, err)
			}
			// JetStream API requests made in a cluster's first moments
			// are sometimes lost: a stream create times out and the
			// stream is never made (nats-server 2.15.2: 3 of 108 creates
			// made at once right after the meta leader election, 1 of 450
			// after this wait). Among what still goes on then, a node
			// that started before its peers listened dials them again a
			// second later and closes the duplicate routes: wait past
			// that, then check again.
			time.Sleep(time.Until(launched.Add(routeSettle)))
			if err := pollUntil(natsDeadline, func() error { return clusterReady(nodes) }); err != nil {
				t.Fatalf("nats-server cluster of %d not ready after %v: %v", n, natsDeadline, err)
			}
			return nodes
		}
		errs = append(errs, err)
	}
	t.Fatalf("nats-server cluster did not start: %v", errors.Join(errs...))
	return nil
}

func tryStartNATSCluster(t testing.TB, bin string, n int) ([]*NATSServer, error) {
	ports, err := freePortList(3 * n) // client, cluster, monitoring per node
	if err != nil {
		return nil, err
	}
	routes := make([]string, n)
	for i := range n {
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", ports[3*i+1])
	}
	nodes := make([]*NATSServer, n)
	for i := range n {
		s := newNATSServer(t, bin, fmt.Sprintf("seckill-test-%d", i+1), ports[3*i], ports[3*i+2])
		var others []string
		for j, r := range routes {
			if j != i {
				others = append(others, r)
			}
		}
		s.args = append(s.args, "--cluster_name", "seckill-test", "--cluster", routes[i], "--routes", strings.Join(others, ","))
		s.route = strings.TrimPrefix(routes[i], "nats://")
		nodes[i] = s
	}
	for _, s := range nodes {
		if err := s.launch(); err != nil {
			for _, r := range nodes {
				r.Stop()
			}
			return nil, err
		}
	}
	for _, s := range nodes {
		if err := s.waitAccepting(); err != nil {
			for _, r := range nodes {
				r.Stop()
			}
			return nil, err
		}
	}
	for _, s := range nodes {
		t.Cleanup(s.logOnFailure)
	}
	return nodes, nil
}

func newNATSServer(t testing.TB, bin, name string, port, monitor int) *NATSServer {
	dir := t.TempDir() // removed after the process is killed: cleanups run last-in first-out
	return &NATSServer{
		Name: name, URL: fmt.Sprintf("nats://127.0.0.1:%d", port),
		t: t, bin: bin, monitor: monitor, dir: dir,
		args: []string{
			"-js", "-sd", filepath.Join(dir, "jetstream"),
			"-a", "127.0.0.1", "-p", strconv.Itoa(port),
			"-m", strconv.Itoa(monitor),
			"--server_name", name,
		},
	}
}

// Start starts a stopped server again, on the same ports and store, and
// waits until it accepts connections (not until it has caught up with its
// cluster).
func (s *NATSServer) Start() {
	s.t.Helper()
	if s.cmd != nil {
		return
	}
	if err := s.launch(); err != nil {
		s.t.Fatal(err)
	}
	if err := s.waitAccepting(); err != nil {
		s.t.Fatal(err)
	}
}

// Stop kills the process with SIGKILL, as a crash would, and waits for it
// to exit.
func (s *NATSServer) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

func (s *NATSServer) launch() error {
	out, err := os.OpenFile(s.outputFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = out, out
	KillWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	s.cmd, s.exited, s.waitErr = cmd, make(chan struct{}), nil
	exited := s.exited
	go func() {
		s.waitErr = cmd.Wait()
		close(exited)
	}()
	s.t.Cleanup(s.Stop)
	return nil
}

// waitAccepting waits until the server accepts clients (and routes, when
// clustered) and its monitoring endpoint answers; a process that exits
// first (a port was taken) is an error.
func (s *NATSServer) waitAccepting() error {
	deadline := time.Now().Add(natsDeadline)
	for {
		select {
		case <-s.exited:
			s.cmd = nil
			return fmt.Errorf("nats-server %s exited at start (%v): %s", s.Name, s.waitErr, s.output(4096))
		default:
		}
		err := dial(strings.TrimPrefix(s.URL, "nats://"))
		if err == nil && s.route != "" {
			err = dial(s.route) // it listens for routes after clients
		}
		if err == nil {
			if _, err = s.get("/varz"); err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats-server %s does not accept connections after %v: %v", s.Name, natsDeadline, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

// healthy: /healthz answers 200, which includes JetStream being current
// with its meta leader.
func (s *NATSServer) healthy() error {
	_, err := s.get("/healthz")
	return err
}

type natsJsz struct {
	Meta *struct {
		Leader   string `json:"leader"`
		Size     int    `json:"cluster_size"`
		Replicas []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
		} `json:"replicas"`
	} `json:"meta_cluster"`
}

// clusterReady: every node is healthy and names the same meta leader, and
// that leader sees the cluster's full size with every other node current.
func clusterReady(nodes []*NATSServer) error {
	leader := ""
	byName := map[string]*NATSServer{}
	for _, s := range nodes {
		byName[s.Name] = s
		if err := s.healthy(); err != nil {
			return err
		}
		var jsz natsJsz
		if err := s.getJSON("/jsz", &jsz); err != nil {
			return err
		}
		if jsz.Meta == nil || jsz.Meta.Leader == "" {
			return fmt.Errorf("%s: no JetStream meta leader yet", s.Name)
		}
		if leader != "" && jsz.Meta.Leader != leader {
			return fmt.Errorf("meta leader is %s for one node, %s for %s", leader, jsz.Meta.Leader, s.Name)
		}
		leader = jsz.Meta.Leader
	}
	l := byName[leader]
	if l == nil {
		return fmt.Errorf("meta leader %q is not one of the started nodes", leader)
	}
	var jsz natsJsz
	if err := l.getJSON("/jsz", &jsz); err != nil {
		return err
	}
	if jsz.Meta == nil || jsz.Meta.Size != len(nodes) {
		return fmt.Errorf("meta leader %s: cluster size %+v, want %d", leader, jsz.Meta, len(nodes))
	}
	current := 0
	for _, r := range jsz.Meta.Replicas {
		if r.Current && !r.Offline {
			current++
		}
	}
	if current != len(nodes)-1 {
		return fmt.Errorf("meta leader %s sees %d of %d peers current: %+v", leader, current, len(nodes)-1, jsz.Meta.Replicas)
	}
	return nil
}

func (s *NATSServer) get(path string) ([]byte, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", s.monitor, path))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: GET %s: %s: %s", s.Name, path, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

func (s *NATSServer) getJSON(path string, v any) error {
	body, err := s.get(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: GET %s: %w", s.Name, path, err)
	}
	return nil
}

func (s *NATSServer) outputFile() string { return filepath.Join(s.dir, "output") }

// output returns the last n bytes the server wrote.
func (s *NATSServer) output(n int) string {
	b, _ := os.ReadFile(s.outputFile())
	if len(b) > n {
		b = append([]byte("..."), b[len(b)-n:]...)
	}
	return string(b)
}

func (s *NATSServer) logOnFailure() {
	if s.t.Failed() {
		s.t.Logf("output of nats-server %s (%s):\n%s", s.Name, s.URL, s.output(16<<10))
	}
}

// freePortList returns n distinct loopback ports that were free a moment
// ago: all are held open together, so they differ.
func freePortList(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// pollUntil calls check until it returns nil, or returns its last error
// after d.
func pollUntil(d time.Duration, check func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
