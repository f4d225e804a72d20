package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Down stops every process of the cluster: the front door first, then the
// gateways, the workers and the notifier (each drains), then the backends.
// Each gets its stop signal and Config.StopTimeout to finish, then SIGKILL.
// Only processes the state file records, and whose start times still
// match, are signalled. With purge, Dir is deleted afterwards: data, logs,
// secrets.
func (c *Cluster) Down(ctx context.Context, purge bool) error {
	unlock, err := lockDir(c.dir)
	if err != nil {
		return err
	}
	err = c.stopAll(ctx)
	unlock()
	if err != nil {
		return err
	}
	if purge {
		c.logf("deleting %s", c.dir)
		return os.RemoveAll(c.dir)
	}
	return nil
}

func (c *Cluster) stopAll(ctx context.Context) error {
	order := slices.Clone(stages(false))
	slices.Reverse(order)
	var errs []error
	for _, stage := range order {
		for _, group := range splitServices(stage) {
			errs = append(errs, c.stopGroup(ctx, group))
		}
	}
	c.mu.Lock()
	if sock := c.mariadbSocket(); sock != "" && strings.HasPrefix(sock, "/tmp/") {
		_ = os.Remove(sock)
	}
	err := writeState(c.dir, c.st)
	c.mu.Unlock()
	return errors.Join(append(errs, err)...)
}

// splitServices stops the gateways before the workers and the notifier, so
// no gateway publishes to a queue nobody drains; the backends go in two
// steps too, the proxies before what they stand in front of.
func splitServices(stage []string) [][]string {
	switch {
	case slices.Contains(stage, Gateway1):
		return [][]string{{Gateway1, Gateway2}, {Worker1, Worker2, Notifier}}
	case slices.Contains(stage, Redis):
		return [][]string{{Toxiproxy, SMTP, Prometheus}, {NATS1, NATS2, NATS3, Redis, MariaDB}}
	}
	return [][]string{stage}
}

func (c *Cluster) stopGroup(ctx context.Context, names []string) error {
	timeout := time.Duration(c.st.StopTimeout)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		c.mu.Lock()
		p := c.st.proc(n)
		c.mu.Unlock()
		if p == nil {
			continue
		}
		wg.Go(func() {
			c.mu.Lock()
			snapshot := *p
			c.mu.Unlock()
			_, running := snapshot.alive()
			if !running && len(snapshot.members()) == 0 {
				return
			}
			c.logf("stopping %s (pid %d)", n, snapshot.PID)
			errs[i] = snapshot.stop(ctx, timeout)
			if errs[i] == nil || snapshot.waitGone(0) {
				c.mu.Lock()
				if p.PID == snapshot.PID {
					p.PID, p.StartTicks = 0, 0
				}
				c.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Cluster) mariadbSocket() string {
	p := c.st.proc(MariaDB)
	if p == nil {
		return ""
	}
	for _, a := range p.Argv {
		if s, ok := strings.CutPrefix(a, "--socket="); ok {
			return s
		}
	}
	return ""
}

// Purge deletes dir, a cluster's state directory, when no process of a
// cluster recorded there runs. It refuses a directory that holds neither a
// state file nor the name DefaultDirName, so a wrong --dir cannot delete
// something else.
func Purge(dir string) error {
	st, err := readState(dir)
	switch {
	case err == nil:
		if st.anyAlive() {
			return fmt.Errorf("cluster: processes of the cluster in %s still run: stop it first", dir)
		}
	case errors.Is(err, ErrNoCluster):
		if filepath.Base(dir) != DefaultDirName {
			return fmt.Errorf("cluster: %s holds no cluster state: not deleting it", dir)
		}
	default:
		return err
	}
	return os.RemoveAll(dir)
}
