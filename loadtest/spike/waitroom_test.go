package spike

import (
	"context"
	"strings"
	"testing"

	"github.com/flashsale/seckill/loadtest/audit"
)

// TestRunQueueAdmission runs a small spike in-process in front of a
// waiting room, with bot accounts of a few operators: the audit, the
// waiting room's four checks included, passes, and the fairness section
// holds figures measured in the run.
func TestRunQueueAdmission(t *testing.T) {
	sc := small(1500, 40)
	sc.BotShare, sc.BotOperators = 0.1, 3
	rep, err := Run(context.Background(), Options{
		Admission: AdmissionQueue, Scenario: sc, GatewayLog: testLog(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Audit.OK() {
		t.Fatalf("audit failed: %+v", rep.Audit.Violations())
	}
	names := map[string]audit.Status{}
	for _, c := range rep.Audit.Checks {
		names[c.Name] = c.Status
	}
	for _, n := range []string{audit.NameAdmittedOnce, audit.NameQueueOrder, audit.NameFinalAnswer, audit.NameSoldAdmitted} {
		if names[n] != audit.OK {
			t.Errorf("check %q: %q, want it run and ok", n, names[n])
		}
	}
	if rep.Admission != AdmissionQueue || rep.Name != "pipeline-queue" {
		t.Errorf("admission %q name %q", rep.Admission, rep.Name)
	}
	f := rep.Fairness
	if f == nil {
		t.Fatal("no fairness section")
	}
	if f.Accounts != sc.Users || f.BotAccounts != 150 || f.Units < int(sc.Stock) {
		t.Errorf("accounts %d (bots %d), units %d; want %d accounts, 150 bots, at least the stock won", f.Accounts, f.BotAccounts, f.Units, sc.Users)
	}
	if f.BeforePeople == 0 || f.P == nil || f.DF == 0 {
		t.Errorf("pre-start arrivals %d, p %v, df %d; want a chi-square over the countdown's arrivals", f.BeforePeople, f.P, f.DF)
	}
	if f.PollPeak <= 0 || f.PollMean <= 0 || f.PollBudget <= 0 {
		t.Errorf("polling peak %v mean %v budget %v; want the queue's polls counted", f.PollPeak, f.PollMean, f.PollBudget)
	}
	if f.ReserveCalls == nil || *f.ReserveCalls < float64(f.Units) || f.QueueRedisCalls == nil || *f.QueueRedisCalls < float64(sc.Users) {
		t.Errorf("reserve calls %v, queue Redis calls %v; want at least one reserve per unit and one join per person", f.ReserveCalls, f.QueueRedisCalls)
	}
	if f.Unanswered != 0 || f.Answered != sc.Users || f.ArrivalToFinalP99 <= 0 || f.ArrivalToFinalP50 > f.ArrivalToFinalP99 {
		t.Errorf("answered %d, unanswered %d, p50 %v p99 %v", f.Answered, f.Unanswered, f.ArrivalToFinalP50, f.ArrivalToFinalP99)
	}
	if f.SoldOutLatency == nil || f.SoldOutHeard == 0 || f.PeakRequests <= 0 {
		t.Errorf("sold-out latency %v heard by %d, peak %v; want both measured", f.SoldOutLatency, f.SoldOutHeard, f.PeakRequests)
	}
	var sum strings.Builder
	rep.WriteSummary(&sum)
	for _, w := range []string{"fairness (queue admission)", "chi-square", "Redis reserves per unit sold", "waiting room: nobody admitted twice"} {
		if !strings.Contains(sum.String(), w) {
			t.Errorf("summary lacks %q", w)
		}
	}
	if got := rep.BuyAnswersByKind["bot"]["403 BUY_TOKEN_MISSING"]; got != 0 {
		t.Errorf("%d bot buys refused for a missing token; bots buy with the pass", got)
	}
}
