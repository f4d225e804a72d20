package natsjs_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/mq/natsjs"
)

// The child side of TestKillNineKeepsAcknowledgedMessages: it publishes
// until killed, printing each id once its Publish returned nil.
func TestMain(m *testing.M) {
	if dir := os.Getenv("NATSJS_CRASH_CHILD_DIR"); dir != "" {
		os.Exit(crashChild(dir))
	}
	os.Exit(m.Run())
}

func crashChild(dir string) int {
	ctx := context.Background()
	b, err := natsjs.New(ctx, natsjs.Config{StoreDir: dir, Groups: map[string][]string{"crash": {"g"}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// One delayed message first: it must fire after the restart.
	due := time.Now().Add(1500 * time.Millisecond)
	if err := b.Publish(ctx, "crash", &mq.Message{ID: "delayed", DeliverAt: due}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("delayed %d\n", due.UnixNano())
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("m-%d-%d", w, i)
				if err := b.Publish(ctx, "crash", &mq.Message{ID: id, Payload: []byte(id)}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					return
				}
				mu.Lock()
				fmt.Fprintln(out, "acked", id)
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return 1
}

// TestKillNineKeepsAcknowledgedMessages: a process publishing to the
// embedded server is killed with SIGKILL at a random moment; a new broker
// on the same store delivers every message whose Publish had returned, and
// the delayed message published before the kill, not before its time.
func TestKillNineKeepsAcknowledgedMessages(t *testing.T) {
	for round := range 3 {
		t.Run("round="+strconv.Itoa(round), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "NATSJS_CRASH_CHILD_DIR="+dir)
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			acked := map[string]bool{}
			var due time.Time
			killAfter := 200 + rand.IntN(2000) // acknowledged messages before the kill
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				switch {
				case len(f) == 2 && f[0] == "delayed":
					ns, _ := strconv.ParseInt(f[1], 10, 64)
					due = time.Unix(0, ns)
				case len(f) == 2 && f[0] == "acked":
					acked[f[1]] = true
				}
				if len(acked) == killAfter {
					_ = cmd.Process.Signal(syscall.SIGKILL)
				}
			}
			_ = cmd.Wait()
			if len(acked) < killAfter {
				t.Fatalf("child stopped after %d acknowledged messages, before the kill at %d", len(acked), killAfter)
			}
			if due.IsZero() {
				t.Fatal("child never reported its delayed message")
			}

			b, err := natsjs.New(t.Context(), natsjs.Config{StoreDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			var mu sync.Mutex
			got := map[string]bool{}
			var delayedAt time.Time
			err = b.Subscribe(t.Context(), "crash", mq.SubscribeOptions{Group: "g", Concurrency: 64}, func(_ context.Context, m *mq.Message) error {
				mu.Lock()
				defer mu.Unlock()
				if m.ID == "delayed" {
					delayedAt = time.Now()
				}
				got[m.ID] = true
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				mu.Lock()
				missing := 0
				for id := range acked {
					if !got[id] {
						missing++
					}
				}
				done := missing == 0 && !delayedAt.IsZero()
				mu.Unlock()
				if done {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after the kill: %d of %d acknowledged messages never delivered, delayed delivered: %v", missing, len(acked), !delayedAt.IsZero())
				}
				time.Sleep(50 * time.Millisecond)
			}
			if delayedAt.Before(due) {
				t.Errorf("delayed message delivered %v before its DeliverAt", due.Sub(delayedAt))
			}
			t.Logf("killed after %d acknowledged publishes; all delivered after the restart", len(acked))
		})
	}
}
