package metrics_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flashsale/seckill/platform/metrics"
)

func counter(name string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "test"})
}

func TestRegister(t *testing.T) {
	for _, tc := range []struct {
		name     string
		taken    []string // registered before
		register []string
		failed   []string // names the error must mention, one line each
	}{
		{"all new", nil, []string{"a_total", "b_total"}, nil},
		{"nothing", nil, nil, nil},
		{"one clash", []string{"a_total"}, []string{"a_total", "b_total"}, []string{"a_total"}},
		{"every clash reported", []string{"a_total", "b_total"}, []string{"a_total", "b_total", "c_total"}, []string{"a_total", "b_total"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			for _, n := range tc.taken {
				reg.MustRegister(counter(n))
			}
			var cs []prometheus.Collector
			for _, n := range tc.register {
				cs = append(cs, counter(n))
			}
			err := metrics.Register(reg, cs...)
			if len(tc.failed) == 0 {
				if err != nil {
					t.Fatalf("Register: %v", err)
				}
			} else {
				if err == nil {
					t.Fatal("Register: nil, want the clashes")
				}
				if lines := strings.Split(err.Error(), "\n"); len(lines) != len(tc.failed) {
					t.Fatalf("error has %d lines, want one per refused collector (%d):\n%v", len(lines), len(tc.failed), err)
				}
				for _, n := range tc.failed {
					if !strings.Contains(err.Error(), "register metric "+n+":") {
						t.Errorf("error does not name %s:\n%v", n, err)
					}
				}
				var are prometheus.AlreadyRegisteredError
				if !errors.As(err, &are) {
					t.Errorf("error %v does not wrap prometheus.AlreadyRegisteredError", err)
				}
			}
			// What did not clash is registered: the registry now has every name once.
			want := map[string]bool{}
			for _, n := range append(tc.taken, tc.register...) {
				want[n] = true
			}
			if n, err := testutil.GatherAndCount(reg); err != nil || n != len(want) {
				t.Fatalf("registry holds %d series (%v), want %d", n, err, len(want))
			}
		})
	}
}

func TestMustRegisterPanicsWithTheClashes(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.MustRegister(reg, counter("a_total"))
	defer func() {
		r := recover()
		err, ok := r.(error)
		if !ok || !strings.Contains(err.Error(), "a_total") {
			t.Fatalf("recovered %v, want an error naming a_total", r)
		}
	}()
	metrics.MustRegister(reg, counter("a_total"))
	t.Fatal("MustRegister of a duplicate did not panic")
}

// Two instances of a component share the first one's collector; a clash
// with a collector of another kind is an error, not a silent share.
func TestShared(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := metrics.Shared(reg, counter("shared_total"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := metrics.Shared(reg, counter("shared_total"))
	if err != nil {
		t.Fatal(err)
	}
	first.Inc()
	second.Inc()
	if second != first {
		t.Fatal("the second instance got a collector of its own, want the registered one")
	}
	if got := testutil.ToFloat64(first); got != 2 {
		t.Fatalf("shared counter = %v, want 2 (both instances count into it)", got)
	}

	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kind_total", Help: "test"}, []string{"l"})
	if _, err := metrics.Shared(reg, vec); err != nil {
		t.Fatal(err)
	}
	other := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kind_total", Help: "other help"}, []string{"l"})
	if got, err := metrics.Shared(reg, other); err == nil || got != other {
		t.Fatalf("Shared of a different collector under a taken name: %v, %v; want an error and the collector back", got == other, err)
	}
}
