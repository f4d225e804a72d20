package app

import (
	"bytes"
	"fmt"
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

	"github.com/flashsale/seckill/testkit"
)

// TestSpikeOnKafkaSplitServices is the production topology in one test: a
// gateway service publishing to Kafka (franz-go's kfake cluster: the real
// wire protocol), two order-worker processes in one consumer group, real
// Redis and MariaDB. One worker is killed with SIGKILL (no shutdown, no
// commit) while orders are still being written; the other takes over its
// partitions, and every 202 order reaches the database exactly once.
func TestSpikeOnKafkaSplitServices(t *testing.T) {
	redisURL := testkit.RedisURL(t)
	dsn := testkit.MySQLDSN(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	env := map[string]string{
		"SECKILL_MQ": "kafka", "SECKILL_KAFKA_BROKERS": strings.Join(cluster.ListenAddrs(), ","),
		"SECKILL_KAFKA_PARTITIONS": "6", "SECKILL_KAFKA_SESSION_TIMEOUT": "6s",
		"SECKILL_REDIS_URL": redisURL, "SECKILL_DB_DSN": dsn, "SECKILL_DEMO": "false",
		"SECKILL_REDIS_PREFIX": "sktest-" + testkit.RandomHex(4),
		// Small batches keep the workers busy for a while, so the kill
		// lands in the middle of the writing.
		"SECKILL_WORKER_CONCURRENCY": "4", "SECKILL_WORKER_BATCH": "2",
	}
	bin := buildBinary(t, "seckill-order-worker")
	a, c := startRole(t, GatewayOnly, env)
	workers := []*workerProc{startWorker(t, bin, env), startWorker(t, bin, env)}

	const stock = 300
	activity := c.createActivity(t, stock, time.Now().Add(-time.Second), time.Now().Add(time.Hour))
	killed := make(chan int64, 1)
	go func() {
		// Kill the first worker as soon as the writing has begun.
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			var s statsResp
			if c.do(t, "GET", "/api/v1/admin/activities/"+activity+"/stats", testAdminToken, nil, &s) == http.StatusOK && s.OrdersCreated > 0 {
				workers[0].kill(t)
				killed <- s.OrdersCreated
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		killed <- -1
	}()
	spikeOn(t, c, a, activity, 2000, stock, 200)
	at := <-killed
	if at < 0 {
		t.Fatal("no order was written within 60s: the worker was never killed")
	}
	if at >= stock {
		t.Fatalf("the workers had written all %d orders before the kill: the test did not kill mid-spike", stock)
	}
	t.Logf("worker 1 killed after %d of %d orders were written; worker 2 finished the rest", at, stock)
	if err := workers[1].healthy(); err != nil {
		t.Fatalf("surviving worker: %v", err)
	}
}

type workerProc struct {
	cmd  *exec.Cmd
	addr string
	out  *bytes.Buffer
	mu   sync.Mutex
}

// buildBinary builds the order module's binary name (order/cmd/name).
func buildBinary(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "github.com/flashsale/seckill/order/cmd/"+name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, out)
	}
	return bin
}

func startWorker(t *testing.T, bin string, env map[string]string) *workerProc {
	t.Helper()
	addr := testkit.FreeAddr(t)
	w := &workerProc{addr: addr, out: &bytes.Buffer{}}
	w.cmd = exec.Command(bin)
	w.cmd.Env = append(os.Environ(), "SECKILL_HTTP_ADDR="+addr)
	for k, v := range env {
		w.cmd.Env = append(w.cmd.Env, k+"="+v)
	}
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	testkit.KillWithParent(w.cmd)
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.kill(t)
		if t.Failed() {
			t.Logf("worker %s output:\n%s", addr, w.out)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := w.ready()
		if err == nil {
			return w
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker on %s not ready within 60s: %v\n%s", addr, err, w.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *workerProc) get(path string) error {
	resp, err := http.Get("http://" + w.addr + path)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", path, resp.StatusCode)
	}
	return nil
}

func (w *workerProc) ready() error   { return w.get("/readyz") }
func (w *workerProc) healthy() error { return w.get("/healthz") }

func (w *workerProc) kill(t *testing.T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd.ProcessState != nil {
		return
	}
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	_ = w.cmd.Wait()
}
