package spike

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/seckill/loadtest/api"
	"github.com/flashsale/seckill/loadtest/internal/fakegw"
	"github.com/flashsale/seckill/loadtest/report"
	"github.com/flashsale/seckill/loadtest/scenario"
)

// kinds maps a user id ("<prefix>-<n>") to the kind the plan gave it: the
// plan is a function of the scenario, whatever the prefix.
func kinds(t *testing.T, c scenario.Config) func(user string) scenario.Kind {
	t.Helper()
	plan := scenario.Build(c, "x")
	return func(user string) scenario.Kind {
		i, err := strconv.Atoi(user[strings.LastIndexByte(user, '-')+1:])
		if err != nil || i >= len(plan.Users) {
			t.Fatalf("user %q is not one of the plan's", user)
		}
		return plan.Users[i].Kind
	}
}

// fakeDoor runs a small spike against the fake gateway g with the door set
// as given.
func fakeDoor(t *testing.T, g *fakegw.Gateway, setting BuyTokenSetting, tune func(*scenario.Config)) (*report.Run, scenario.Config) {
	t.Helper()
	ts := httptest.NewServer(g)
	t.Cleanup(ts.Close)
	c := small(300, 20)
	c.Countdown = 0
	if tune != nil {
		tune(&c)
	}
	rep, err := Run(context.Background(), Options{
		URL: ts.URL, AdminToken: "fake-admin-token", JWTSecret: "fake-jwt-secret-0123456789",
		Scenario: c, SettleTimeout: 2 * time.Second, BuyToken: setting,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Audit.OK() {
		t.Fatalf("audit failed: %+v", rep.Audit.Violations())
	}
	return rep, c
}

func newFake() *fakegw.Gateway {
	return fakegw.New("fake-admin-token", []byte("fake-jwt-secret-0123456789"))
}

// stage returns the funnel stage of that name.
func stage(t *testing.T, rep *report.Run, name string) report.Stage {
	t.Helper()
	for _, s := range rep.Funnel {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("funnel %+v has no stage %q", rep.Funnel, name)
	return report.Stage{}
}

// TestCrowdAtTheDoor: with buy tokens required, every human and late user
// fetches one token before buying and every buy of theirs carries it;
// bots never ask and every buy of theirs is refused BUY_TOKEN_MISSING,
// which the funnel's layer counts.
func TestCrowdAtTheDoor(t *testing.T) {
	g := newFake()
	g.RequireBuyToken = true
	rep, c := fakeDoor(t, g, BuyTokenRequired, nil)
	kindOf := kinds(t, c)
	fetches := g.Fetches()
	var botBuys, fetched int
	for user, buys := range g.Buys() {
		if kindOf(user) == scenario.Bot {
			if n := len(fetches[user]); n != 0 {
				t.Errorf("bot %s asked for %d buy tokens; bots skip the token", user, n)
			}
			for _, b := range buys {
				if b.Status != http.StatusForbidden || b.Token {
					t.Fatalf("bot %s: buy %+v got past the door", user, b)
				}
			}
			botBuys += len(buys)
			continue
		}
		if n := len(fetches[user]); n != 1 {
			t.Errorf("%s %s fetched %d buy tokens, want one before the first buy, reused after", kindOf(user), user, n)
		}
		for _, b := range buys {
			if !b.Token || b.Status != http.StatusAccepted {
				t.Errorf("%s %s: buy %+v without its buy token", kindOf(user), user, b)
			}
			if b.At.Before(fetches[user][0]) {
				t.Errorf("%s %s bought before fetching its token", kindOf(user), user)
			}
		}
		fetched++
	}
	if botBuys == 0 || fetched < int(c.Stock) {
		t.Fatalf("%d bot buys, %d users with a token; want both (the scenario has bots)", botBuys, fetched)
	}
	past, door := stage(t, rep, "past the rate limits"), stage(t, rep, "past the buy-token check")
	if got := int(past.Count - door.Count); got != botBuys {
		t.Errorf("the door layer took away %d buys, want the %d bot buys refused", got, botBuys)
	}
	if !strings.Contains(door.Note, "missing "+strconv.Itoa(botBuys)) {
		t.Errorf("door note %q does not name the reason", door.Note)
	}
	if got := rep.BuyAnswersByKind["bot"]; len(got) != 1 || got["403 BUY_TOKEN_MISSING"] != int64(botBuys) {
		t.Errorf("bot answers %v, want only 403 BUY_TOKEN_MISSING x%d", got, botBuys)
	}
	if d := rep.BuyToken; d.Setting != "required" || d.AcceptedWithoutToken != 0 || d.UsersWithToken != fetched {
		t.Errorf("door %+v; want required, %d users with a token, none accepted without", d, fetched)
	}
	if n := rep.Figures.PhysicalLimit.ByEndpoint[epBuyToken]; n != int64(fetched) {
		t.Errorf("physical limit counts %d buy-token requests, want the %d fetches", n, fetched)
	}
	if rep.Final.Remaining != 0 {
		t.Errorf("final %+v; want the stock sold to token holders", rep.Final)
	}
}

// TestCrowdWithoutTokens: --buy-token off fetches nothing and the door
// layer says so, taking nothing away.
func TestCrowdWithoutTokens(t *testing.T) {
	g := newFake()
	rep, _ := fakeDoor(t, g, BuyTokenOff, nil)
	if n := len(g.Fetches()); n != 0 {
		t.Errorf("%d users fetched a buy token with --buy-token off", n)
	}
	past, door := stage(t, rep, "past the rate limits"), stage(t, rep, "past the buy-token check")
	if door.Count != past.Count || !strings.Contains(door.Note, "buy tokens off") {
		t.Errorf("door layer %+v after %+v; want the same count and a note saying tokens are off", door, past)
	}
	if _, ok := rep.Figures.PhysicalLimit.ByEndpoint[epBuyToken]; ok {
		t.Error("the physical limit counts buy-token requests that were never sent")
	}
	if !strings.Contains(rep.BuyToken.Summary(), "off") {
		t.Errorf("door summary %q does not say off", rep.BuyToken.Summary())
	}
}

// TestExpiredTokenRefreshedOnce: a buy refused BUY_TOKEN_EXPIRED fetches
// a fresh token once and is sent again with the same request_id.
func TestExpiredTokenRefreshedOnce(t *testing.T) {
	g := newFake()
	g.RequireBuyToken, g.ExpireFirstToken = true, true
	rep, c := fakeDoor(t, g, BuyTokenRequired, nil)
	kindOf := kinds(t, c)
	fetches := g.Fetches()
	refreshed := 0
	for user, buys := range g.Buys() {
		if kindOf(user) == scenario.Bot {
			continue
		}
		if n := len(fetches[user]); n != 2 {
			t.Errorf("%s fetched %d tokens; want its first, refused as expired, and one fresh one", user, n)
		}
		var retried bool
		for i, b := range buys {
			if b.Status != http.StatusForbidden {
				continue
			}
			if i+1 < len(buys) && buys[i+1].Token && buys[i+1].RequestID == b.RequestID {
				retried = true
			}
		}
		if !retried {
			t.Errorf("%s: buys %+v; want the refused buy sent again with a fresh token and the same request_id", user, buys)
		}
		refreshed++
	}
	if refreshed < int(c.Stock) {
		t.Fatalf("%d users refreshed their token, want at least the stock %d", refreshed, c.Stock)
	}
	if rep.Final.Remaining != 0 {
		t.Errorf("final %+v; want the stock sold with the fresh tokens", rep.Final)
	}
	if door := stage(t, rep, "past the buy-token check"); !strings.Contains(door.Note, "expired") {
		t.Errorf("door note %q does not name the expired tokens", door.Note)
	}
}

// TestTokenFetchHonoursRetryAfter: a 429 on the token fetch is retried no
// sooner than its Retry-After, like a buy.
func TestTokenFetchHonoursRetryAfter(t *testing.T) {
	g := newFake()
	g.RequireBuyToken, g.LimitTokenFetches, g.RetryAfter = true, 1, 1
	rep, _ := fakeDoor(t, g, BuyTokenRequired, func(c *scenario.Config) {
		c.BotShare, c.RetryBackoff = 0, 10*time.Millisecond
	})
	for user, ts := range g.Fetches() {
		if len(ts) != 2 {
			t.Errorf("%s fetched %d times, want a 429 then a token", user, len(ts))
			continue
		}
		if gap := ts[1].Sub(ts[0]); gap < time.Second {
			t.Errorf("%s asked again %s after a 429 with Retry-After: 1; want at least 1s", user, gap)
		}
	}
	if rep.Final.Remaining != 0 {
		t.Errorf("final %+v; want the stock sold after the retried fetches", rep.Final)
	}
}

func TestDoorStage(t *testing.T) {
	metrics := func(missing, expired float64) api.Metrics {
		return api.Metrics{
			`seckill_buy_token_refused_total{reason="missing"}`: missing,
			`seckill_buy_token_refused_total{reason="expired"}`: expired,
			`seckill_buy_token_refused_total{reason="invalid"}`: 0,
		}
	}
	for _, tc := range []struct {
		name          string
		setting       BuyTokenSetting
		before, after api.Metrics
		want          float64
		note          string
	}{
		{"bots refused", BuyTokenRequired, metrics(5, 0), metrics(245, 3), 900 - 243, "refused 403 at the door, expired 3, missing 240"},
		{"none refused", BuyTokenRequired, metrics(5, 0), metrics(5, 0), 900, "none refused"},
		{"gateway without the counter", BuyTokenRequired, api.Metrics{}, api.Metrics{"seckill_queue_depth": 0}, 900, "exports no seckill_buy_token_refused_total"},
		{"off", BuyTokenOff, metrics(0, 0), metrics(0, 0), 900, "buy tokens off (--buy-token off)"},
		{"off, yet refused", BuyTokenOff, metrics(0, 0), metrics(7, 0), 893, "it runs SECKILL_BUY_TOKEN=required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := doorStage(tc.setting, 900, tc.before, tc.after)
			if st.Name != "past the buy-token check" || st.Count != tc.want || !strings.Contains(st.Note, tc.note) {
				t.Errorf("doorStage = %+v, want %v and a note with %q", st, tc.want, tc.note)
			}
		})
	}
}
