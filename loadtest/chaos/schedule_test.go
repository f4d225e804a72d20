package chaos

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/seckill/loadtest/cluster"
)

// fullTopology is a cluster with every process (Prometheus included).
func fullTopology() Topology {
	return Topology{Processes: cluster.Names(), Proxies: cluster.ProxyNames()}
}

func TestBuiltinSchedulesAreValid(t *testing.T) {
	for _, name := range Builtin() {
		s, err := Load(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.Name != name {
			t.Errorf("%s: named %q", name, s.Name)
		}
		if err := s.Validate(fullTopology()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		// A cluster without Prometheus runs them as well.
		noProm := fullTopology()
		noProm.Processes = noProm.Processes[:0:0]
		for _, p := range cluster.Names() {
			if p != cluster.Prometheus {
				noProm.Processes = append(noProm.Processes, p)
			}
		}
		if err := s.Validate(noProm); err != nil {
			t.Errorf("%s without prometheus: %v", name, err)
		}
	}
}

// The default schedule is the one the issue describes.
func TestDefaultSchedule(t *testing.T) {
	s, err := Load("default")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kill gateway-1 at +1s for 3s",
		"kill worker-1 at +2s for 3s",
		"kill nats-2 at +3s for 12s",
		"down mariadb at +4s for 20s",
		"pause worker-2 at +6s for 10s",
		"latency redis 50ms at +8s for 5s",
	}
	if len(s.Faults) != len(want) {
		t.Fatalf("%d faults, want %d", len(s.Faults), len(want))
	}
	for i, f := range s.Faults {
		if f.String() != want[i] {
			t.Errorf("fault %d: %s, want %s", i+1, f, want[i])
		}
	}
	if s.End() != 24*time.Second {
		t.Errorf("End() = %s, want 24s", s.End())
	}
	r, err := Load("redis-empty")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Faults) != 2 || r.Faults[0].String() != "redis-restart-empty at +2s" || r.Faults[1].String() != "redis-restart-empty at +8s" {
		t.Errorf("redis-empty: %+v", r.Faults)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, file, text string
		want             []Fault
		err              string // a substring of the error; "" for none
	}{
		{name: "yaml", file: "s.yaml", text: "faults:\n  - {at: 1500ms, kind: pause, process: worker-2, for: 10s}\n  - at: 8s\n    kind: latency\n    proxy: redis\n    latency: 50ms\n    for: 5s\n",
			want: []Fault{{At: Duration(1500 * time.Millisecond), Kind: Pause, Process: "worker-2", For: Duration(10 * time.Second)},
				{At: Duration(8 * time.Second), Kind: Latency, Proxy: "redis", Latency: Duration(50 * time.Millisecond), For: Duration(5 * time.Second)}}},
		{name: "json", file: "s.json", text: `{"faults":[{"at":"2s","kind":"redis-restart-empty"}]}`,
			want: []Fault{{At: Duration(2 * time.Second), Kind: RedisRestartEmpty}}},
		{name: "json is yaml too", file: "s.yml", text: `{"faults":[{"at":"2s","kind":"down","proxy":"mariadb","for":"20s"}]}`,
			want: []Fault{{At: Duration(2 * time.Second), Kind: Down, Proxy: "mariadb", For: Duration(20 * time.Second)}}},
		{name: "a misspelt field", file: "s.yaml", text: "faults:\n  - {at: 1s, kind: kill, process: gateway-1, fro: 3s}\n", err: "fro"},
		{name: "a misspelt field in json", file: "s.json", text: `{"faults":[{"at":"1s","kind":"kill","process":"gateway-1","fro":"3s"}]}`, err: "fro"},
		{name: "a number without a unit", file: "s.yaml", text: "faults:\n  - {at: 1, kind: kill, process: gateway-1, for: 3s}\n", err: "want a duration with its unit"},
		{name: "not a duration", file: "s.yaml", text: "faults:\n  - {at: soon, kind: kill, process: gateway-1, for: 3s}\n", err: `"soon"`},
		{name: "a key twice", file: "s.yaml", text: "faults:\n  - {at: 1s, at: 2s, kind: kill, process: gateway-1, for: 3s}\n", err: "at"},
		{name: "not yaml", file: "s.yaml", text: "faults: [\n", err: "chaos schedule s.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.text), tc.file)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse = %v, want an error naming %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != "s" {
				t.Errorf("name %q, want the file's", s.Name)
			}
			if len(s.Faults) != len(tc.want) {
				t.Fatalf("faults %+v, want %+v", s.Faults, tc.want)
			}
			for i := range tc.want {
				if s.Faults[i] != tc.want[i] {
					t.Errorf("fault %d: %+v, want %+v", i+1, s.Faults[i], tc.want[i])
				}
			}
		})
	}
}

func TestLoadAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mine.yaml")
	if err := os.WriteFile(path, []byte("name: mine\nfaults:\n  - {at: 0s, kind: reset_peer, proxy: nats-1, for: 2s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "mine" || len(s.Faults) != 1 || s.Faults[0].Kind != ResetPeer {
		t.Errorf("Load = %+v", s)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.yaml")); err == nil || !strings.Contains(err.Error(), "default, redis-empty") {
		t.Errorf("Load of a missing file: %v, want an error naming the built-in schedules", err)
	}
}

func TestValidate(t *testing.T) {
	noProm := Topology{Proxies: cluster.ProxyNames()}
	for _, p := range cluster.Names() {
		if p != cluster.Prometheus {
			noProm.Processes = append(noProm.Processes, p)
		}
	}
	noRedis := Topology{Processes: []string{cluster.Gateway1, cluster.MariaDB}, Proxies: []string{cluster.MariaDB}}
	for _, tc := range []struct {
		name   string
		topo   Topology
		faults string // the YAML list
		errs   []string
	}{
		{"every kind, valid", fullTopology(), `
- {at: 0s, kind: kill, process: lb, for: 1s}
- {at: 1s, kind: pause, process: nats-3, for: 1s}
- {at: 0s, kind: down, proxy: nats-1, for: 5s}
- {at: 0s, kind: latency, proxy: mariadb, latency: 20ms, for: 2s, stream: upstream}
- {at: 3s, kind: reset_peer, proxy: redis, for: 1s}
- {at: 9s, kind: redis-restart-empty}
- {at: 1s, kind: kill, process: lb, for: 1s}`, nil},
		{"no faults", fullTopology(), `[]`, []string{"no faults"}},
		{"an unknown kind", fullTopology(), `[{at: 1s, kind: explode, process: lb, for: 1s}]`, []string{`fault 1 (explode at 1s): unknown kind "explode" (one of kill, pause, down, latency, reset_peer, redis-restart-empty)`}},
		{"an unknown process", fullTopology(), `[{at: 1s, kind: kill, process: gateway-9, for: 1s}]`, []string{`fault 1 (kill at 1s): unknown process "gateway-9" (one of redis,`}},
		{"a process the topology lacks", noProm, `[{at: 1s, kind: pause, process: prometheus, for: 1s}]`, []string{`the cluster has no process "prometheus"`}},
		{"redis-restart-empty without redis", noRedis, `[{at: 1s, kind: redis-restart-empty}]`, []string{`the cluster has no process "redis"`}},
		{"a proxy the topology lacks", noRedis, `[{at: 1s, kind: down, proxy: redis, for: 1s}]`, []string{`the cluster has no proxy "redis" (it has mariadb)`}},
		{"an unknown proxy", fullTopology(), `[{at: 1s, kind: down, proxy: kafka, for: 1s}]`, []string{`unknown proxy "kafka" (one of redis, mariadb, nats-1, nats-2, nats-3)`}},
		{"a negative offset", fullTopology(), `[{at: -1s, kind: kill, process: worker-1, for: 1s}]`, []string{"negative offset -1s"}},
		{"no process", fullTopology(), `[{at: 1s, kind: kill, for: 1s}]`, []string{"no process"}},
		{"a process for a proxy fault", fullTopology(), `[{at: 1s, kind: down, process: redis, proxy: redis, for: 1s}]`, []string{"names a toxiproxy proxy, not a process"}},
		{"a proxy for a process fault", fullTopology(), `[{at: 1s, kind: kill, process: redis, proxy: redis, for: 1s}]`, []string{"names a process, not a proxy"}},
		{"no duration", fullTopology(), `[{at: 1s, kind: pause, process: worker-1}]`, []string{`"for" must be a positive duration`}},
		{"a duration on an instant fault", fullTopology(), `[{at: 1s, kind: redis-restart-empty, for: 2s}]`, []string{`no "for"`}},
		{"a target on redis-restart-empty", fullTopology(), `[{at: 1s, kind: redis-restart-empty, process: redis}]`, []string{"name no process or proxy"}},
		{"latency without latency", fullTopology(), `[{at: 1s, kind: latency, proxy: redis, for: 2s}]`, []string{`"latency" must be whole milliseconds`}},
		{"latency below a millisecond", fullTopology(), `[{at: 1s, kind: latency, proxy: redis, latency: 500us, for: 2s}]`, []string{`"latency" must be whole milliseconds`}},
		{"latency on a kill", fullTopology(), `[{at: 1s, kind: kill, process: redis, latency: 5ms, for: 2s}]`, []string{`"latency" only applies`}},
		{"a bad stream", fullTopology(), `[{at: 1s, kind: latency, proxy: redis, latency: 5ms, for: 2s, stream: sideways}]`, []string{`stream "sideways"`}},
		{"a stream on a pause", fullTopology(), `[{at: 1s, kind: pause, process: redis, for: 2s, stream: upstream}]`, []string{`"stream" only applies`}},
		{"one process killed twice at once", fullTopology(), `
- {at: 1s, kind: kill, process: worker-1, for: 5s}
- {at: 3s, kind: pause, process: worker-1, for: 1s}`, []string{"faults 1 (kill worker-1 at +1s for 5s) and 2 (pause worker-1 at +3s for 1s) act on process worker-1 at once"}},
		{"redis killed while restarted empty", fullTopology(), `
- {at: 2s, kind: redis-restart-empty}
- {at: 1s, kind: kill, process: redis, for: 5s}`, []string{"act on process redis at once"}},
		{"one proxy cut twice at once", fullTopology(), `
- {at: 4s, kind: latency, proxy: mariadb, latency: 5ms, for: 1s}
- {at: 1s, kind: down, proxy: mariadb, for: 20s}`, []string{"act on proxy mariadb at once"}},
		{"every problem at once", fullTopology(), `
- {at: -1s, kind: kill, process: nope, for: 1s}
- {at: 1s, kind: nope}`, []string{"fault 1 (kill at -1s): negative offset", `fault 1 (kill at -1s): unknown process "nope"`, `fault 2 (nope at 1s): unknown kind "nope"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte("name: t\nfaults: "+tc.faults+"\n"), "t.yaml")
			if err != nil {
				t.Fatal(err)
			}
			err = s.Validate(tc.topo)
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted it, want %q", tc.errs)
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate = %v\nwant it to say %q", err, want)
				}
			}
			if !strings.HasPrefix(err.Error(), "chaos schedule t") {
				t.Errorf("the error does not name the schedule: %v", err)
			}
		})
	}
}
