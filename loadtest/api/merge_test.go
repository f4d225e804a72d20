package api

import (
	"strings"
	"testing"
)

func mustParse(t *testing.T, text string) Metrics {
	t.Helper()
	m, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestIsCounter(t *testing.T) {
	for key, want := range map[string]bool{
		`seckill_reserve_total{outcome="reserved"}`:      true,
		`seckill_order_batch_size_count`:                 true,
		`seckill_order_db_write_seconds_sum`:             true,
		`seckill_http_request_duration_seconds_bucket`:   true,
		`seckill_queue_depth`:                            false,
		`seckill_buys_in_flight`:                         false,
		`seckill_dead_letters{topic="orders"}`:           false,
		`seckill_total_things_gauge{outcome="reserved"}`: false,
	} {
		if got := IsCounter(key); got != want {
			t.Errorf("IsCounter(%s) = %v, want %v", key, got, want)
		}
	}
}

// The /metrics of the gateways and workers of a cluster read as one:
// counters summed, the system-wide gauges (one queue seen by every
// process) taken once, a process's own gauges summed; and the counters
// stay monotonic across a process's restart and a failed scrape.
func TestMergerSumsTheProcesses(t *testing.T) {
	const reserved = `seckill_reserve_total{outcome="reserved"}`
	type round struct {
		scrapes map[string]string // target -> /metrics ("" = the scrape failed)
		want    map[string]float64
		absent  []string
	}
	for _, tc := range []struct {
		name   string
		rounds []round
	}{
		{"two gateways and a worker", []round{{
			scrapes: map[string]string{
				"gw1": "seckill_reserve_total{outcome=\"reserved\"} 10\nseckill_buys_in_flight 3\nseckill_queue_depth 40\nseckill_queue_oldest_age_seconds 2.5\nseckill_dead_letters{topic=\"orders\"} 1\n",
				"gw2": "seckill_reserve_total{outcome=\"reserved\"} 7\nseckill_buys_in_flight 4\nseckill_queue_depth 41\nseckill_queue_oldest_age_seconds 2.7\nseckill_dead_letters{topic=\"orders\"} 1\n",
				"w1":  "seckill_orders_written_total{result=\"created\"} 12\nseckill_queue_depth 39\nseckill_queue_oldest_age_seconds -1\n",
			},
			want: map[string]float64{reserved: 17, "seckill_buys_in_flight": 7, "seckill_queue_depth": 41,
				"seckill_queue_oldest_age_seconds": 2.7, `seckill_dead_letters{topic="orders"}`: 1,
				`seckill_orders_written_total{result="created"}`: 12},
		}}},
		{"a queue nobody can read stays unknown", []round{{
			scrapes: map[string]string{"gw1": "seckill_queue_oldest_age_seconds -1\n", "gw2": "seckill_queue_oldest_age_seconds -1\n"},
			want:    map[string]float64{"seckill_queue_oldest_age_seconds": -1},
		}}},
		{"a gateway killed and restarted", []round{
			{scrapes: map[string]string{"gw1": reserved + " 100\n", "gw2": reserved + " 50\n"}, want: map[string]float64{reserved: 150}},
			// gw1 is down: its counters are kept, not lost from the sum.
			{scrapes: map[string]string{"gw1": "", "gw2": reserved + " 60\nseckill_buys_in_flight 2\n"}, want: map[string]float64{reserved: 160, "seckill_buys_in_flight": 2}},
			// gw1 is back from zero: its 100 before the restart stay.
			{scrapes: map[string]string{"gw1": reserved + " 5\nseckill_buys_in_flight 1\n", "gw2": reserved + " 70\n"}, want: map[string]float64{reserved: 175, "seckill_buys_in_flight": 1}},
			{scrapes: map[string]string{"gw1": reserved + " 8\n", "gw2": reserved + " 70\n"}, want: map[string]float64{reserved: 178}},
		}},
		{"a restarted process that has not reported a series again keeps it", []round{
			{scrapes: map[string]string{"w1": "seckill_orders_written_total{result=\"created\"} 30\nseckill_order_batch_size_count 6\n"},
				want: map[string]float64{`seckill_orders_written_total{result="created"}`: 30, "seckill_order_batch_size_count": 6}},
			{scrapes: map[string]string{"w1": "seckill_order_batch_size_count 1\n"},
				want: map[string]float64{`seckill_orders_written_total{result="created"}`: 30, "seckill_order_batch_size_count": 7}},
			{scrapes: map[string]string{"w1": "seckill_orders_written_total{result=\"created\"} 4\nseckill_order_batch_size_count 2\n"},
				want: map[string]float64{`seckill_orders_written_total{result="created"}`: 34, "seckill_order_batch_size_count": 8}},
		}},
		{"a paused process's gauges are left out", []round{
			{scrapes: map[string]string{"w1": "seckill_queue_depth 5\n", "w2": ""}, want: map[string]float64{"seckill_queue_depth": 5}},
			{scrapes: map[string]string{"w1": "", "w2": ""}, absent: []string{"seckill_queue_depth"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMerger(GlobalGauges())
			for i, r := range tc.rounds {
				scrapes := map[string]Metrics{}
				for target, text := range r.scrapes {
					if text == "" {
						scrapes[target] = nil
					} else {
						scrapes[target] = mustParse(t, text)
					}
				}
				got := m.Merge(scrapes)
				for k, want := range r.want {
					if v, ok := got[k]; !ok || v != want {
						t.Errorf("round %d: %s = %v (present %v), want %v", i+1, k, v, ok, want)
					}
				}
				for _, k := range r.absent {
					if v, ok := got[k]; ok {
						t.Errorf("round %d: %s = %v, want no value (nobody answered)", i+1, k, v)
					}
				}
			}
		})
	}
}
