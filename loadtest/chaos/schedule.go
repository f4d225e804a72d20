package chaos

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/flashsale/seckill/loadtest/cluster"
)

// Kind is what a fault does.
type Kind string

// The kinds of fault.
const (
	// Kill sends SIGKILL to a process and starts it again, with the same
	// command line and data, For later.
	Kill Kind = "kill"
	// Pause stops a process with SIGSTOP for For, then continues it: it
	// holds its connections and answers nothing, as a process in a long
	// GC pause or on a frozen VM.
	Pause Kind = "pause"
	// Down disables a toxiproxy proxy for For: every connection through it
	// is closed and new ones are refused, as when a backend is unreachable.
	Down Kind = "down"
	// Latency adds Latency to every answer through a proxy for For.
	Latency Kind = "latency"
	// ResetPeer resets (TCP RST) every connection through a proxy that
	// carries data during For.
	ResetPeer Kind = "reset_peer"
	// RedisRestartEmpty kills Redis and starts it with no data: every
	// stock counter, reservation and sold-out mark is gone at once. It
	// lasts as long as the restart.
	RedisRestartEmpty Kind = "redis-restart-empty"
)

// Kinds lists every kind of fault.
func Kinds() []Kind { return []Kind{Kill, Pause, Down, Latency, ResetPeer, RedisRestartEmpty} }

// onProcess: the fault names a process; onProxy: a toxiproxy proxy.
func (k Kind) onProcess() bool { return k == Kill || k == Pause }
func (k Kind) onProxy() bool   { return k == Down || k == Latency || k == ResetPeer }

// Toxiproxy streams: downstream is what the backend sends to the seckill
// processes (toxiproxy's default), upstream what they send to it.
const (
	Downstream = "downstream"
	Upstream   = "upstream"
)

// Duration is a time.Duration written as Go writes one ("1s", "500ms",
// "1m30s"); a bare number is refused, since its unit would be a guess.
type Duration time.Duration

// UnmarshalText reads "1s", "500ms", ...
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q: want a duration with its unit, such as 1s or 500ms", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Fault is one entry of a schedule.
type Fault struct {
	// At is the offset from the sale's start (T0) when the fault begins.
	At Duration `json:"at" yaml:"at"`
	// Kind is what it does.
	Kind Kind `json:"kind" yaml:"kind"`
	// Process is the cluster process of a kill or a pause (gateway-1,
	// worker-2, nats-3, ...).
	Process string `json:"process,omitempty" yaml:"process,omitempty"`
	// Proxy is the toxiproxy proxy of down, latency and reset_peer: the
	// backend's name (redis, mariadb, nats-1, nats-2, nats-3).
	Proxy string `json:"proxy,omitempty" yaml:"proxy,omitempty"`
	// For is how long the fault lasts: a killed process is started again,
	// a paused one continued, a proxy enabled or its toxic removed, For
	// after At. Every kind but redis-restart-empty needs it.
	For Duration `json:"for,omitempty" yaml:"for,omitempty"`
	// Latency is the delay a latency fault adds (whole milliseconds).
	Latency Duration `json:"latency,omitempty" yaml:"latency,omitempty"`
	// Stream is the direction a latency or reset_peer toxic acts on:
	// downstream (default) or upstream.
	Stream string `json:"stream,omitempty" yaml:"stream,omitempty"`
}

// Target is the process or the proxy the fault acts on.
func (f Fault) Target() string {
	switch {
	case f.Kind == RedisRestartEmpty:
		return cluster.Redis
	case f.Kind.onProxy():
		return f.Proxy
	}
	return f.Process
}

// targetKey tells a process from the proxy of the same name: Redis
// killed and the redis proxy slowed at once is a schedule's choice.
func (f Fault) targetKey() string {
	if f.Kind.onProxy() {
		return "proxy " + f.Proxy
	}
	return "process " + f.Target()
}

// Start and End are the fault's offsets from T0; an instant fault
// (redis-restart-empty) ends where it starts.
func (f Fault) Start() time.Duration { return f.At.D() }

// End is when the fault is lifted, as an offset from T0.
func (f Fault) End() time.Duration { return f.At.D() + f.For.D() }

// String is the fault in a few words: "kill gateway-1 at +1s for 3s".
func (f Fault) String() string {
	var b strings.Builder
	b.WriteString(string(f.Kind))
	if t := f.Target(); t != "" && f.Kind != RedisRestartEmpty {
		b.WriteString(" " + t)
	}
	if f.Kind == Latency {
		fmt.Fprintf(&b, " %s", f.Latency.D())
	}
	fmt.Fprintf(&b, " at +%s", f.At.D())
	if f.For > 0 {
		fmt.Fprintf(&b, " for %s", f.For.D())
	}
	return b.String()
}

// Schedule is a list of faults played against one spike.
type Schedule struct {
	// Name names the schedule in reports (default: its file's name).
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Description says what it exercises.
	Description string  `json:"description,omitempty" yaml:"description,omitempty"`
	Faults      []Fault `json:"faults" yaml:"faults"`
}

// End is when the last fault is lifted, as an offset from T0.
func (s Schedule) End() time.Duration {
	var end time.Duration
	for _, f := range s.Faults {
		end = max(end, f.End())
	}
	return end
}

//go:embed default.yaml redis-empty.yaml
var builtin embed.FS

// Builtin names the schedules this package embeds, for --chaos NAME:
// "default" (processes killed and paused, MariaDB down, a NATS node down,
// Redis slow, all in one spike) and "redis-empty" (Redis restarted with no
// data mid-spike).
func Builtin() []string { return []string{"default", "redis-empty"} }

// Load reads the built-in schedule of that name, or else the file at
// that path (YAML, or JSON when it ends in .json). It only parses:
// Validate it against the cluster before running it.
func Load(nameOrPath string) (Schedule, error) {
	if slices.Contains(Builtin(), nameOrPath) {
		b, err := builtin.ReadFile(nameOrPath + ".yaml")
		if err != nil {
			return Schedule{}, err
		}
		return Parse(b, nameOrPath+".yaml")
	}
	b, err := os.ReadFile(nameOrPath)
	if err != nil {
		return Schedule{}, fmt.Errorf("chaos schedule: %w (or one of the built-in schedules: %s)", err, strings.Join(Builtin(), ", "))
	}
	return Parse(b, nameOrPath)
}

// Parse reads a schedule from YAML, or JSON when file ends in .json
// (file names it in errors and is its default name). Unknown fields are
// errors: a misspelt "for" must not silently make a fault last forever.
func Parse(b []byte, file string) (Schedule, error) {
	var s Schedule
	var err error
	if strings.EqualFold(filepath.Ext(file), ".json") {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		err = dec.Decode(&s)
	} else {
		err = yaml.UnmarshalWithOptions(b, &s, yaml.Strict())
	}
	if err != nil {
		return Schedule{}, fmt.Errorf("chaos schedule %s: %w", file, err)
	}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	return s, nil
}

// Topology is what a cluster runs: the processes a fault may kill or
// pause, and the proxies it may cut.
type Topology struct {
	Processes []string
	Proxies   []string
}

// Validate checks every fault against the topology and returns every
// problem at once, each naming its fault: an unknown kind, process or
// proxy; a process or proxy the cluster does not have; a negative offset;
// a missing or extra duration; two faults on one target at once (the
// second would undo the first half-way).
func (s Schedule) Validate(t Topology) error {
	if len(s.Faults) == 0 {
		return fmt.Errorf("chaos schedule %s: no faults", s.Name)
	}
	var errs []error
	for i, f := range s.Faults {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("fault %d (%s at %s): %s", i+1, f.Kind, f.At.D(), fmt.Sprintf(format, args...)))
		}
		if !slices.Contains(Kinds(), f.Kind) {
			names := make([]string, 0, len(Kinds()))
			for _, k := range Kinds() {
				names = append(names, string(k))
			}
			bad("unknown kind %q (one of %s)", f.Kind, strings.Join(names, ", "))
			continue
		}
		if f.At < 0 {
			bad("negative offset %s: a fault starts at or after the sale's start", f.At.D())
		}
		switch {
		case f.Kind.onProcess():
			if f.Proxy != "" {
				bad("a %s names a process, not a proxy (got proxy %q)", f.Kind, f.Proxy)
			}
			switch {
			case f.Process == "":
				bad("no process: name one of %s", strings.Join(t.Processes, ", "))
			case !slices.Contains(cluster.Names(), f.Process):
				bad("unknown process %q (one of %s)", f.Process, strings.Join(cluster.Names(), ", "))
			case !slices.Contains(t.Processes, f.Process):
				bad("the cluster has no process %q (it runs %s)", f.Process, strings.Join(t.Processes, ", "))
			}
		case f.Kind.onProxy():
			if f.Process != "" {
				bad("a %s names a toxiproxy proxy, not a process (got process %q)", f.Kind, f.Process)
			}
			switch {
			case f.Proxy == "":
				bad("no proxy: name one of %s", strings.Join(t.Proxies, ", "))
			case !slices.Contains(cluster.ProxyNames(), f.Proxy):
				bad("unknown proxy %q (one of %s)", f.Proxy, strings.Join(cluster.ProxyNames(), ", "))
			case !slices.Contains(t.Proxies, f.Proxy):
				bad("the cluster has no proxy %q (it has %s)", f.Proxy, strings.Join(t.Proxies, ", "))
			}
		default: // redis-restart-empty
			if f.Process != "" || f.Proxy != "" {
				bad("%s acts on Redis itself: name no process or proxy", f.Kind)
			}
			if !slices.Contains(t.Processes, cluster.Redis) {
				bad("the cluster has no process %q", cluster.Redis)
			}
		}
		switch {
		case f.Kind == RedisRestartEmpty && f.For != 0:
			bad("%s is instant (it lasts as long as Redis takes to start): no \"for\"", f.Kind)
		case f.Kind != RedisRestartEmpty && f.For <= 0:
			bad("\"for\" must be a positive duration (how long the fault lasts), got %s", f.For.D())
		}
		switch {
		case f.Kind == Latency && (f.Latency < Duration(time.Millisecond) || f.Latency%Duration(time.Millisecond) != 0):
			bad("\"latency\" must be whole milliseconds, at least 1ms, got %s", f.Latency.D())
		case f.Kind != Latency && f.Latency != 0:
			bad("\"latency\" only applies to a latency fault")
		}
		switch {
		case f.Stream != "" && f.Kind != Latency && f.Kind != ResetPeer:
			bad("\"stream\" only applies to latency and reset_peer")
		case f.Stream != "" && f.Stream != Downstream && f.Stream != Upstream:
			bad("stream %q: want %s or %s", f.Stream, Downstream, Upstream)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, s.overlaps()...)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("chaos schedule %s:\n%w", s.Name, err)
	}
	return nil
}

// overlaps reports two faults on one target at once.
func (s Schedule) overlaps() []error {
	idx := make([]int, len(s.Faults))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return s.Faults[idx[a]].At < s.Faults[idx[b]].At })
	var errs []error
	for a := range idx {
		fa := s.Faults[idx[a]]
		for _, j := range idx[a+1:] {
			fb := s.Faults[j]
			if fb.targetKey() != fa.targetKey() {
				continue
			}
			// fb starts at or after fa; they clash unless fa is over by then.
			if fb.Start() < fa.End() || fb.Start() == fa.Start() {
				errs = append(errs, fmt.Errorf("faults %d (%s) and %d (%s) act on %s at once", idx[a]+1, fa, j+1, fb, fa.targetKey()))
			}
		}
	}
	return errs
}
