package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// routeSettle is how long after its start a NATS cluster's routes may still
// change: a node that started before its peers listened dials them again a
// second later and drops the duplicate routes. JetStream API requests made
// before then are sometimes lost (see testkit.StartNATSClusterNodes).
const routeSettle = 2 * time.Second

// stages are the groups of processes started together, each after the
// previous one is ready: backends, then the services, then the front door.
// In demo mode the second gateway waits for the first, which seeds the
// demo activity when there is none: two at once would seed two.
func stages(demo bool) [][]string {
	backends := []string{Redis, MariaDB, NATS1, NATS2, NATS3, Toxiproxy, SMTP, Prometheus}
	if demo {
		return [][]string{backends, {Worker1, Worker2, Notifier, Gateway1}, {Gateway2}, {LB}}
	}
	return [][]string{backends, {Worker1, Worker2, Notifier, Gateway1, Gateway2}, {LB}}
}

func (c *Cluster) startAll(ctx context.Context, p paths) error {
	for i, stage := range stages(c.st.Settings.Demo) {
		var prepare func(context.Context, string) error
		if i == 0 {
			prepare = func(ctx context.Context, name string) error {
				if name == MariaDB {
					return initMariaDB(ctx, p, c.st.proc(MariaDB), c.logf)
				}
				return nil
			}
		}
		start := time.Now()
		if err := c.startGroup(ctx, stage, prepare); err != nil {
			return err
		}
		if i == 0 {
			if err := c.backendsReady(ctx, start); err != nil {
				return err
			}
		}
	}
	return nil
}

// startGroup starts the named processes at once (each after prepare, when
// given) and waits until all are ready. Names the cluster does not have
// (Prometheus, when it is not installed) are left out.
func (c *Cluster) startGroup(ctx context.Context, names []string, prepare func(context.Context, string) error) error {
	c.mu.Lock()
	names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return c.st.proc(n) == nil })
	c.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.st.ReadyTimeout))
	defer cancel()
	c.logf("starting %s", strings.Join(names, ", "))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() {
			if prepare != nil {
				if errs[i] = prepare(ctx, n); errs[i] != nil {
					return
				}
			}
			errs[i] = c.launchAndWait(ctx, n)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// launchAndWait starts one process (unless it runs), records it, and waits
// until it is ready.
func (c *Cluster) launchAndWait(ctx context.Context, name string) error {
	c.mu.Lock()
	p := c.st.proc(name)
	if p == nil {
		c.mu.Unlock()
		return fmt.Errorf("%w %q", ErrUnknownProcess, name)
	}
	if _, ok := p.alive(); !ok {
		if err := p.launch(c.st.ExitWithCaller); err != nil {
			c.mu.Unlock()
			return err
		}
		if err := writeState(c.dir, c.st); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	snapshot := *p
	c.mu.Unlock()
	return waitReady(ctx, &snapshot)
}

// backendsReady finishes the backends' start: the NATS nodes form one
// JetStream cluster and their routes settle, and MariaDB has the database.
func (c *Cluster) backendsReady(ctx context.Context, launched time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.st.ReadyTimeout))
	defer cancel()
	nodes := c.procs(NATS1, NATS2, NATS3)
	if err := pollUntil(ctx, func() error { return natsClusterReady(ctx, nodes) }); err != nil {
		return fmt.Errorf("cluster: the NATS nodes did not form a JetStream cluster: %w", err)
	}
	select {
	case <-time.After(time.Until(launched.Add(routeSettle))):
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := pollUntil(ctx, func() error { return natsClusterReady(ctx, nodes) }); err != nil {
		return fmt.Errorf("cluster: the NATS cluster did not settle: %w", err)
	}
	db, err := openDB(addr(c.st.proc(MariaDB).port(PortClient)), "")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+dbName+" CHARACTER SET utf8mb4"); err != nil {
		return fmt.Errorf("cluster: mariadb: create database %s as root without a password: %w (is %s from another setup? make cluster-down ARGS=--purge starts afresh)", dbName, err, c.dir)
	}
	return nil
}

// pollUntil calls check every 100 ms until it passes or ctx ends.
func pollUntil(ctx context.Context, check func() error) error {
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// initMariaDB makes MariaDB's data directory the first time: into a
// scratch directory first, so an interrupted run leaves no half-made data
// directory behind.
func initMariaDB(ctx context.Context, p paths, pr *proc, logf func(string, ...any)) error {
	data := p.mariadbData()
	if _, err := os.Stat(filepath.Join(data, "mysql")); err == nil {
		return nil
	}
	if _, err := os.Stat(data); err == nil {
		return fmt.Errorf("cluster: %s exists but holds no initialised database: move it away or purge the cluster (make cluster-down ARGS=--purge)", data)
	}
	logf("initialising mariadb in %s", data)
	scratch := data + ".init"
	if err := os.RemoveAll(scratch); err != nil {
		return err
	}
	args := []string{"--no-defaults"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	args = append(args, "--datadir="+scratch, "--auth-root-authentication-method=normal", "--skip-test-db")
	cmd := exec.CommandContext(ctx, p.installDB, args...)
	logPath := filepath.Join(p.logs, "mariadb-install.log")
	out, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr, cmd.Env = out, out, pr.Env
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cluster: %s failed: %w; the end of %s:\n%s", p.installDB, err, logPath, tail(logPath, 20))
	}
	return os.Rename(scratch, data)
}
