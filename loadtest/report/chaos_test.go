package report

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/flashsale/seckill/loadtest/audit"
)

func f64(v float64) *float64 { return &v }

// chaosRun is a run with two faults: a kill recovered from, a proxy cut
// that was not.
func chaosRun() *Run {
	r := sampleRun("chaos-default", audit.Pipeline, 40, 4000, false)
	r.Timeline[1].QueueAge, r.Timeline[2].QueueAge, r.Timeline[3].QueueAge = 0.2, 3.5, -1
	r.Chaos = &Chaos{
		Schedule: "default", Seed: 7,
		Faults: []Fault{
			{Fault: "kill gateway-1 at +0s for 1s", Kind: "kill", Target: "gateway-1", Began: f64(0), Ended: f64(1), Ready: f64(1.4),
				StartFailures: 2, StartFailure: "connection refused",
				Recovered: true, RecoverySeconds: f64(0.75), RecoveredAt: f64(1.75), First202: f64(1.1), QueueAgeAllowed: 1},
			{Fault: "down mariadb at +1s for 1s", Kind: "down", Target: "mariadb", Began: f64(1), Ended: f64(2),
				NotRecovered: "the queue's oldest order was still 3.5s old at the last sample", Overlaps: []int{1}, OthersUntil: f64(1)},
		},
		InFlight: InFlight{Total: 3, ByOutcome: map[string]int{"502": 2, "error": 1}, Users: 3, LaterAccepted: 2},
		Alerts:   []Alert{{Alert: "SeckillOrderQueueBehind (warning)", Name: "SeckillOrderQueueBehind", Severity: "warning", First: 1.5, Last: 2, Faults: []int{1, 2}}},
	}
	r.Settles = []Settle{{Phase: "drain after the spike", Settled: false, Waited: 60, Bound: 60, Unmet: []string{"Redis remaining 5, want 8"}}}
	return r
}

func TestChaosInTheReport(t *testing.T) {
	r := chaosRun()
	var sum bytes.Buffer
	r.WriteSummary(&sum)
	for _, want := range []string{
		"chaos: schedule default, seed 7",
		"kill gateway-1 at +0s for 1s                 0.0    1.0    1.4  0.8s  [alone]",
		"2 starts failed before it stayed up; the last: connection refused",
		"not recovered: the queue's oldest order was still 3.5s old",
		"[with 1 (until +1.0s)]",
		"buys failed in flight: 3 (502 2, error 1) from 3 users, 2 of whom later received a 202",
		"drain after the spike: NOT settled within 60s: Redis remaining 5, want 8",
		"alert SeckillOrderQueueBehind (warning)",
	} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}

	var h bytes.Buffer
	if err := r.WriteHTML(&h); err != nil {
		t.Fatal(err)
	}
	page := h.String()
	for _, want := range []string{
		"Chaos: schedule default, seed 7",
		"buys answered per second, faults as numbered bands",
		"age of the oldest unwritten order",
		// A band per fault, labelled with its number, on the charts.
		"<title>fault 1</title>", "<title>fault 2</title>",
		"2 starts failed first: connection refused",
		"NOT settled within 60s",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if externalRef.MatchString(page) {
		t.Error("the chaos section loads something from the network")
	}

	var j bytes.Buffer
	if err := r.WriteJSON(&j); err != nil {
		t.Fatal(err)
	}
	var back Run
	if err := json.Unmarshal(j.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Chaos == nil || len(back.Chaos.Faults) != 2 || *back.Chaos.Faults[0].RecoverySeconds != 0.75 || back.Chaos.Faults[1].RecoverySeconds != nil {
		t.Errorf("chaos section after JSON: %+v", back.Chaos)
	}
	if back.Timeline[2].QueueAge != 3.5 {
		t.Errorf("queue age after JSON: %v", back.Timeline[2].QueueAge)
	}
}

// A plain spike's page has no chaos section and its charts no bands.
func TestNoChaosNoBands(t *testing.T) {
	r := sampleRun("pipeline", audit.Pipeline, 40, 4000, false)
	var h bytes.Buffer
	if err := r.WriteHTML(&h); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.String(), "Chaos:") || strings.Contains(h.String(), "<title>fault") {
		t.Error("a run without faults shows a chaos section or bands")
	}
}

func TestAlertFaults(t *testing.T) {
	faults := chaosRun().Chaos.Faults // 1: 0..1s, recovered at 1.75; 2: 1..2s, never recovered
	for _, tc := range []struct {
		at   float64
		want []int
	}{
		{-1, nil},
		{0.5, []int{1}},
		{1.5, []int{1, 2}},
		{1.75 + AlertGrace, []int{1, 2}},
		{1.76 + AlertGrace, []int{2}}, // long after fault 1's recovery
		{500, []int{2}},               // fault 2 never recovered
	} {
		if got := AlertFaults(faults, tc.at); !slices.Equal(got, tc.want) {
			t.Errorf("AlertFaults(+%vs) = %v, want %v", tc.at, got, tc.want)
		}
	}
}
