package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Process describes one process of the cluster.
type Process struct {
	Name  string
	PID   int // 0 when not running
	Ports []Port
	// Log is the file its output goes to.
	Log string
	// Proxy is the toxiproxy proxy the seckill processes reach this
	// backend through ("" for processes that are not behind one).
	Proxy string
}

// Port returns the port named name (PortHTTP, PortMetrics, ...), or 0.
func (p Process) Port(name string) int {
	for _, pt := range p.Ports {
		if pt.Name == name {
			return pt.Port
		}
	}
	return 0
}

// Process returns the named process.
func (c *Cluster) Process(name string) (Process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.st.proc(name)
	if p == nil {
		return Process{}, fmt.Errorf("%w %q (one of %s)", ErrUnknownProcess, name, strings.Join(Names(), ", "))
	}
	out := Process{Name: p.Name, Ports: slices.Clone(p.Ports), Log: p.Log}
	if _, ok := p.alive(); ok {
		out.PID = p.PID
	}
	if slices.Contains(ProxyNames(), name) {
		out.Proxy = name
	}
	return out, nil
}

// Processes returns every process, in start order.
func (c *Cluster) Processes() []Process {
	var out []Process
	for _, n := range Names() {
		if p, err := c.Process(n); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Names lists the processes this cluster has, in start order: Names()
// less Prometheus when it was not installed at cluster-up.
func (c *Cluster) Names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range Names() {
		if c.st.proc(n) != nil {
			out = append(out, n)
		}
	}
	return out
}

// Process states of ProcessStatus.
const (
	StateUp     = "up"
	StatePaused = "paused" // stopped by SIGSTOP (Pause)
	StateDown   = "down"
)

// ProcessStatus is what Status found about one process.
type ProcessStatus struct {
	Name  string
	State string // StateUp, StatePaused or StateDown
	PID   int    // 0 when down
	Ports []Port
	// Ready: its readiness probe passed (see Up for what each checks).
	Ready bool
	// Problem says why it is not ready.
	Problem string
}

// Status reports every process: up, paused or down, and ready or not.
func (c *Cluster) Status(ctx context.Context) []ProcessStatus {
	procs := c.procs(Names()...)
	out := make([]ProcessStatus, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() {
			s := ProcessStatus{Name: p.Name, State: StateDown, Ports: p.Ports}
			st, ok := p.alive()
			switch {
			case !ok:
				s.Problem = "not running"
			case st.state == 'T':
				s.State, s.PID, s.Problem = StatePaused, p.PID, "paused (SIGSTOP)"
			default:
				s.State, s.PID = StateUp, p.PID
				if err := probe(ctx, p); err != nil {
					s.Problem = err.Error()
				} else {
					s.Ready = true
				}
			}
			out[i] = s
		})
	}
	wg.Wait()
	return out
}

// StreamReplicas returns the configured replicas of each JetStream stream
// (3 when the seckill processes follow SECKILL_NATS_REPLICAS). A stream
// appears once a process has used its topic.
func (c *Cluster) StreamReplicas(ctx context.Context) (map[string]int, error) {
	return streamReplicas(ctx, c.procs(NATS1, NATS2, NATS3))
}

// WaitReady waits until the named processes (all when none are named) are
// ready, or ctx ends.
func (c *Cluster) WaitReady(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		names = Names()
	}
	for _, p := range c.procs(names...) {
		if err := pollUntil(ctx, func() error { return probe(ctx, p) }); err != nil {
			return fmt.Errorf("cluster: %s not ready: %w", p.Name, err)
		}
	}
	return nil
}
