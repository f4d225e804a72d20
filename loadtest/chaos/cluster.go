package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"

	"github.com/flashsale/seckill/loadtest/cluster"
)

// ClusterTarget is the cluster in a box as a Target: its process controls
// and its toxiproxy.
type ClusterTarget struct {
	c  *cluster.Cluster
	tp *toxiproxy.Client
}

// NewClusterTarget returns c as a Target.
func NewClusterTarget(c *cluster.Cluster) *ClusterTarget {
	return &ClusterTarget{c: c, tp: c.Toxiproxy()}
}

// Topology is what the cluster runs, for Schedule.Validate.
func (t *ClusterTarget) Topology() Topology {
	return Topology{Processes: t.c.Names(), Proxies: cluster.ProxyNames()}
}

// Kill sends SIGKILL to the process.
func (t *ClusterTarget) Kill(name string) error { return t.c.Kill(name) }

// Start starts the process again and waits until it is ready.
func (t *ClusterTarget) Start(ctx context.Context, name string) error { return t.c.Start(ctx, name) }

// Pause sends SIGSTOP to the process.
func (t *ClusterTarget) Pause(name string) error { return t.c.Pause(name) }

// Resume sends SIGCONT to the process.
func (t *ClusterTarget) Resume(name string) error { return t.c.Resume(name) }

// RestartRedisEmpty kills Redis and starts it empty.
func (t *ClusterTarget) RestartRedisEmpty(ctx context.Context) error {
	return t.c.RestartRedisEmpty(ctx)
}

func (t *ClusterTarget) proxy(name string) (*toxiproxy.Proxy, error) {
	p, err := t.tp.Proxy(name)
	if err != nil {
		return nil, fmt.Errorf("toxiproxy proxy %s: %w", name, err)
	}
	return p, nil
}

// DisableProxy disables the proxy: its connections are closed, new ones
// refused.
func (t *ClusterTarget) DisableProxy(name string) error {
	p, err := t.proxy(name)
	if err != nil {
		return err
	}
	return p.Disable()
}

// EnableProxy enables the proxy again.
func (t *ClusterTarget) EnableProxy(name string) error {
	p, err := t.proxy(name)
	if err != nil {
		return err
	}
	return p.Enable()
}

// AddToxic adds x to the proxy.
func (t *ClusterTarget) AddToxic(name string, x Toxic) error {
	p, err := t.proxy(name)
	if err != nil {
		return err
	}
	_, err = p.AddToxic(x.Name, x.Type, x.Stream, 1, toxiproxy.Attributes(x.Attributes))
	return err
}

// RemoveToxic removes the named toxic from the proxy.
func (t *ClusterTarget) RemoveToxic(name, toxic string) error {
	p, err := t.proxy(name)
	if err != nil {
		return err
	}
	return p.RemoveToxic(toxic)
}

// Heal puts the cluster back as cluster-up left it: every paused process
// continued, every process that is down started again (in start order,
// each until ready), every proxy enabled without toxics. A chaos run heals
// before it starts, so an earlier run interrupted half-way does not count
// as this one's fault, and after its faults, whatever happened to them.
func (t *ClusterTarget) Heal(ctx context.Context) error {
	var errs []error
	var started []string
	for _, s := range t.c.Status(ctx) {
		switch s.State {
		case cluster.StatePaused:
			errs = append(errs, t.c.Resume(s.Name))
		case cluster.StateDown:
			started = append(started, s.Name)
		}
	}
	// In start order: the backends (toxiproxy among them) before the
	// services that need them.
	for _, n := range t.c.Names() {
		if slices.Contains(started, n) {
			errs = append(errs, t.c.Start(ctx, n))
		}
	}
	errs = append(errs, t.tp.ResetState())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("chaos: heal the cluster (restarted: %s): %w", strings.Join(started, ", "), err)
	}
	return t.c.WaitReady(ctx)
}
