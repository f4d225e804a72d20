package scenario

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBuildShapesTheCrowd(t *testing.T) {
	c := Default()
	c.Users = 20000
	c.RequestIDShare = 0.7
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p := Build(c, "u")
	if len(p.Users) != c.Users {
		t.Fatalf("%d users, want %d", len(p.Users), c.Users)
	}
	counts := p.Counts()
	if counts[Bot] != 200 || counts[Late] != 1000 || counts[Human] != 18800 {
		t.Errorf("kinds %v, want 200 bots, 1000 late, 18800 humans", counts)
	}
	var firstSecond, doubles, viewers, prompt, race, noReqID int
	ids := map[string]bool{}
	for _, u := range p.Users {
		if ids[u.ID] {
			t.Fatalf("duplicate user id %s", u.ID)
		}
		ids[u.ID] = true
		for _, v := range u.PageViews {
			if v > 0 || v < -c.Countdown {
				t.Errorf("page view at %s, outside the countdown", v)
			}
		}
		if len(u.PageViews) > 0 {
			viewers++
		}
		switch u.Pay {
		case PayPrompt:
			prompt++
			if u.PayAfter <= 0 || u.PayAfter > c.PayWithin+300*time.Millisecond {
				t.Errorf("prompt payer pays after %s", u.PayAfter)
			}
		case PayAtDeadline:
			race++
			if u.Jitter < -150*time.Millisecond || u.Jitter >= 150*time.Millisecond {
				t.Errorf("deadline jitter %s", u.Jitter)
			}
		}
		switch u.Kind {
		case Human:
			if u.NoRequestID {
				noReqID++
			}
			if u.Arrive < 0 || u.Arrive >= time.Second+c.Tail {
				t.Errorf("human arrives at %s, outside [0, 1s+tail)", u.Arrive)
			}
			if u.Arrive < time.Second {
				firstSecond++
			}
			if u.DoubleClick != 0 {
				doubles++
			}
		case Late:
			if u.Arrive < time.Second+c.Tail || u.Arrive > time.Second+c.Tail+c.LateWindow {
				t.Errorf("late user arrives at %s", u.Arrive)
			}
			if u.DoubleClick != 0 {
				t.Error("late user double-clicks")
			}
		case Bot:
			if u.Arrive >= 0 {
				t.Errorf("bot starts at %s, want just before T0", u.Arrive)
			}
		}
	}
	near := func(name string, got int, of int, share float64) {
		if want := float64(of) * share; math.Abs(float64(got)-want) > 0.03*float64(of) {
			t.Errorf("%s: %d of %d, want about %.0f", name, got, of, want)
		}
	}
	near("first second", firstSecond, counts[Human], c.FirstSecondShare)
	near("humans without request_id", noReqID, counts[Human], 1-c.RequestIDShare)
	near("double clicks", doubles, counts[Human], c.DoubleClickShare)
	near("page viewers", viewers, c.Users, c.PageViewShare)
	near("prompt payers", prompt, c.Users, c.PayShare)
	near("deadline payers", race, c.Users, c.RaceShare)
	if end := p.End(); end < time.Second+c.Tail || end > time.Second+c.Tail+c.LateWindow+c.BotDuration {
		t.Errorf("End() = %s", end)
	}
}

func TestBuildIsDeterministicPerSeed(t *testing.T) {
	c := Default()
	c.Users = 500
	a, b := Build(c, "x"), Build(c, "x")
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two plans of one config differ")
	}
	c.Seed++
	if reflect.DeepEqual(a.Users, Build(c, "x").Users) {
		t.Fatal("another seed made the same plan")
	}
}

func TestValidateNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		flag string
		mod  func(*Config)
	}{
		{"--users", func(c *Config) { c.Users = 0 }},
		{"--stock", func(c *Config) { c.Stock = -1 }},
		{"--bot-share", func(c *Config) { c.BotShare = 1.5 }},
		{"--pay-share", func(c *Config) { c.PayShare, c.RaceShare = 0.8, 0.3 }},
		{"--pay-timeout", func(c *Config) { c.PayTimeout = 1500 * time.Millisecond }},
		{"--retries", func(c *Config) { c.Retries = -1 }},
		{"--request-id-share", func(c *Config) { c.RequestIDShare = -0.1 }},
		{"--countdown", func(c *Config) { c.Countdown = -time.Second }},
		{"--steady-window", func(c *Config) { c.SteadyShare = 0.3 }},
		{"--steady-share", func(c *Config) { c.SteadyShare, c.SteadyWindow = 2, time.Second }},
		{"--bot-share", func(c *Config) { c.SteadyShare, c.SteadyWindow = 0.99, time.Second }},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			c := Default()
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.flag) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.flag)
			}
		})
	}
	if err := Default().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

// Steady users arrive evenly over the steady window and act as humans; a
// config without them plays the same crowd as before they existed (the
// same seed replays the same spike).
func TestSteadyUsers(t *testing.T) {
	c := Default()
	c.Users, c.SteadyShare, c.SteadyWindow = 20000, 0.5, 40*time.Second
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p := Build(c, "u")
	if n := p.Counts()[Steady]; n != 10000 {
		t.Fatalf("%d steady users, want 10000", n)
	}
	var quarters [4]int
	for _, u := range p.Users {
		if u.Kind != Steady {
			continue
		}
		if u.Arrive < 0 || u.Arrive >= c.SteadyWindow {
			t.Fatalf("steady user arrives at %s, outside [0, %s)", u.Arrive, c.SteadyWindow)
		}
		quarters[int(u.Arrive*4/c.SteadyWindow)]++
	}
	for i, n := range quarters {
		if math.Abs(float64(n)-2500) > 150 {
			t.Errorf("quarter %d of the window: %d arrivals, want about 2500 (even)", i, n)
		}
	}
	if end := p.End(); end < 39*time.Second {
		t.Errorf("End() = %s, want the steady window's end", end)
	}

	plain := Default()
	plain.Users = 2000
	withField := plain
	withField.SteadyWindow = time.Minute // no share: no steady user
	if !reflect.DeepEqual(Build(plain, "x").Users, Build(withField, "x").Users) {
		t.Fatal("a steady window without steady users changed the crowd")
	}
}

// TestBotOperators: with operators, each operator's accounts start at one
// instant before the start, and everyone else's plan is unchanged.
func TestBotOperators(t *testing.T) {
	c := Default()
	c.Users, c.BotShare = 2000, 0.1
	plain := Build(c, "u")
	c.BotOperators = 3
	ops := Build(c, "u")
	instants := map[time.Duration]int{}
	for i, u := range ops.Users {
		if u.Kind != Bot {
			if u.Arrive != plain.Users[i].Arrive {
				t.Fatalf("user %d (%s) arrives at %s with operators, %s without", i, u.Kind, u.Arrive, plain.Users[i].Arrive)
			}
			continue
		}
		if u.Arrive >= 0 || u.Arrive < -200*time.Millisecond {
			t.Errorf("bot %s starts at %s, want in [-200ms, 0)", u.ID, u.Arrive)
		}
		instants[u.Arrive]++
	}
	if len(instants) != 3 {
		t.Errorf("bots start at %d instants, want one per operator (3): %v", len(instants), instants)
	}
	c.BotOperators = -1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--bot-operators") {
		t.Errorf("Validate = %v, want --bot-operators named", err)
	}
}
