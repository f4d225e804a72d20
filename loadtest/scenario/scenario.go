// Package scenario plans a Double-11 spike: who arrives when and how each
// simulated user behaves. A plan is a pure function of its Config (and its
// seed), so the naive and the pipeline run of a comparison see exactly the
// same crowd, and a surprising run can be replayed.
package scenario

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Kind is what sort of user a simulated user is.
type Kind int

const (
	// Human clicks once at the spike (sometimes twice: the double click),
	// retries after 429/503 with backoff, and pays or not.
	Human Kind = iota
	// Bot fires at a fixed high rate from just before the start, ignoring
	// the answers; the per-user rate limit is there for it.
	Bot
	// Late arrives after the sell-out and meets the sold-out answer.
	Late
	// Steady is a human who arrives at an even pace over the steady
	// window rather than in the spike: demand that lasts, so a chaos run
	// has buyers during and after each fault, and "202s flow again" can
	// be seen at all.
	Steady
)

func (k Kind) String() string {
	switch k {
	case Human:
		return "human"
	case Bot:
		return "bot"
	case Late:
		return "late"
	case Steady:
		return "steady"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// PayPlan is what a user does with an order it won.
type PayPlan int

const (
	// PayNever leaves the order to time out (its unit returns at the deadline).
	PayNever PayPlan = iota
	// PayPrompt pays PayAfter after the 202.
	PayPrompt
	// PayAtDeadline pays within a few hundred milliseconds of the pay
	// deadline, racing the delayed cancel: exactly one of them must win.
	PayAtDeadline
)

func (p PayPlan) String() string {
	return [...]string{"never", "prompt", "at_deadline"}[p]
}

// Config are the scenario knobs. Zero values are not defaults: use
// Default() and change what you need, then Validate.
type Config struct {
	Users int   `json:"users"` // simulated users, all kinds
	Stock int64 `json:"stock"` // units on sale

	Countdown     time.Duration `json:"countdown"`       // page traffic before T0 (activity GETs)
	PageViewShare float64       `json:"page_view_share"` // share of users who open the page during the countdown (1-3 loads each)

	FirstSecondShare float64       `json:"first_second_share"` // share of humans whose first click is in [T0, T0+1s)
	Tail             time.Duration `json:"tail"`               // the decaying tail after the first second

	DoubleClickShare float64       `json:"double_click_share"` // humans who click twice with the same request_id
	RequestIDShare   float64       `json:"request_id_share"`   // humans and late users who send a request_id (the buyer page always does)
	Retries          int           `json:"retries"`            // retries after 429/503 per click
	RetryBackoff     time.Duration `json:"retry_backoff"`      // first backoff (doubles, jittered; Retry-After wins when longer)

	BotShare    float64       `json:"bot_share"`
	BotRate     float64       `json:"bot_rate"`     // requests/s of one bot
	BotDuration time.Duration `json:"bot_duration"` // how long a bot fires
	// BotOperators, when positive, hold the bot accounts between them:
	// each operator starts all its accounts at one instant (just before
	// the start), and they use them as the front door asks (a buy token,
	// the waiting room) instead of firing bare buys. 0: independent
	// bots that skip the buy token, as scripts do.
	BotOperators int `json:"bot_operators,omitempty"`

	LateShare  float64       `json:"late_share"`
	LateWindow time.Duration `json:"late_window"` // late users arrive within this after the tail

	// SteadyShare of the users arrive evenly over [T0, T0+SteadyWindow)
	// (the chaos runs; 0 in a plain spike). They behave as humans.
	SteadyShare  float64       `json:"steady_share"`
	SteadyWindow time.Duration `json:"steady_window"`

	PayShare   float64       `json:"pay_share"`   // winners who pay promptly
	RaceShare  float64       `json:"race_share"`  // winners who pay right at the deadline (pay/cancel race)
	PayWithin  time.Duration `json:"pay_within"`  // prompt payers pay within this after their order exists
	PayTimeout time.Duration `json:"pay_timeout"` // the activity's pay_timeout_seconds

	Seed uint64 `json:"seed"`
}

// Default is the shape of a real flash sale at the scale: 100,000
// users for 1,000 units, most of them in the first second.
func Default() Config {
	return Config{
		Users: 100000, Stock: 1000,
		Countdown: 5 * time.Second, PageViewShare: 0.3,
		FirstSecondShare: 0.8, Tail: 4 * time.Second,
		DoubleClickShare: 0.2, RequestIDShare: 1, Retries: 3, RetryBackoff: 200 * time.Millisecond,
		BotShare: 0.01, BotRate: 20, BotDuration: 2 * time.Second,
		LateShare: 0.05, LateWindow: 3 * time.Second,
		PayShare: 0.6, RaceShare: 0.1, PayWithin: 2 * time.Second, PayTimeout: 10 * time.Second,
		Seed: 1,
	}
}

// Validate reports every bad knob, each by its flag name.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s %s", name, fmt.Sprintf(format, args...)))
	}
	if c.Users <= 0 {
		bad("users", "must be positive, got %d", c.Users)
	}
	if c.Stock <= 0 || c.Stock > 10_000_000 {
		bad("stock", "must be between 1 and 10000000, got %d", c.Stock)
	}
	for name, v := range map[string]float64{
		"page-view-share": c.PageViewShare, "first-second-share": c.FirstSecondShare, "double-click-share": c.DoubleClickShare,
		"request-id-share": c.RequestIDShare,
		"bot-share":        c.BotShare, "late-share": c.LateShare, "pay-share": c.PayShare, "race-share": c.RaceShare,
		"steady-share": c.SteadyShare,
	} {
		if v < 0 || v > 1 || math.IsNaN(v) {
			bad(name, "must be a share between 0 and 1, got %v", v)
		}
	}
	if c.BotShare+c.LateShare+c.SteadyShare > 1 {
		bad("bot-share", "plus --late-share and --steady-share must not exceed 1 (got %v + %v + %v)", c.BotShare, c.LateShare, c.SteadyShare)
	}
	if c.SteadyShare > 0 && c.SteadyWindow <= 0 {
		bad("steady-window", "must be positive with --steady-share %v, got %s", c.SteadyShare, c.SteadyWindow)
	}
	if c.PayShare+c.RaceShare > 1 {
		bad("pay-share", "plus --race-share must not exceed 1 (got %v + %v)", c.PayShare, c.RaceShare)
	}
	if c.Countdown < 0 || c.Tail < 0 || c.LateWindow < 0 || c.BotDuration < 0 || c.RetryBackoff < 0 || c.PayWithin < 0 || c.SteadyWindow < 0 {
		bad("countdown", "and the other durations must not be negative")
	}
	if c.BotOperators < 0 {
		bad("bot-operators", "must not be negative, got %d", c.BotOperators)
	}
	if c.Retries < 0 || c.Retries > 20 {
		bad("retries", "must be between 0 and 20, got %d", c.Retries)
	}
	if c.BotRate < 0 || c.BotRate > 1000 {
		bad("bot-rate", "must be between 0 and 1000 requests/s, got %v", c.BotRate)
	}
	if c.PayTimeout < time.Second || c.PayTimeout%time.Second != 0 {
		bad("pay-timeout", "must be whole seconds, at least 1s (it becomes pay_timeout_seconds), got %s", c.PayTimeout)
	}
	return errors.Join(errs...)
}

// User is one simulated user's plan. Offsets are relative to T0, the
// start of the sale.
type User struct {
	ID   string
	Kind Kind
	// PageViews are the activity GETs before (and a little after) T0.
	PageViews []time.Duration
	// Arrive is the first buy click.
	Arrive time.Duration
	// DoubleClick, when non-zero, is the delay of a second click with the
	// same request_id (it leaves whether or not the first returned).
	DoubleClick time.Duration
	// NoRequestID: this user's clicks carry no request_id (a script, an
	// old client). Bots never send one.
	NoRequestID bool
	// Pay is what the user does with an order it wins.
	Pay PayPlan
	// PayAfter is the delay of a prompt payment after the order exists.
	PayAfter time.Duration
	// Jitter spreads deadline payers around the deadline (-150ms..+150ms).
	Jitter time.Duration
}

// Plan is the crowd of one run.
type Plan struct {
	Config Config
	Users  []User
}

// Counts returns how many users of each kind the plan holds.
func (p Plan) Counts() map[Kind]int {
	m := map[Kind]int{}
	for _, u := range p.Users {
		m[u.Kind]++
	}
	return m
}

// End is the offset after which no user starts anything new.
func (p Plan) End() time.Duration {
	var end time.Duration
	for _, u := range p.Users {
		last := u.Arrive + u.DoubleClick
		if u.Kind == Bot {
			last = u.Arrive + p.Config.BotDuration
		}
		end = max(end, last)
	}
	return end
}

// Build makes the plan of c, which must be valid. User ids are
// "<prefix>-<n>" so that two runs against one deployment do not share users.
func Build(c Config, prefix string) Plan {
	r := rand.New(rand.NewPCG(c.Seed, 0x5eccc11))
	users := make([]User, c.Users)
	nBots := int(math.Round(float64(c.Users) * c.BotShare))
	nLate := int(math.Round(float64(c.Users) * c.LateShare))
	nSteady := int(math.Round(float64(c.Users) * c.SteadyShare))
	kinds := make([]Kind, c.Users)
	for i := range kinds {
		switch {
		case i < nBots:
			kinds[i] = Bot
		case i < nBots+nLate:
			kinds[i] = Late
		case i < nBots+nLate+nSteady:
			kinds[i] = Steady
		default:
			kinds[i] = Human
		}
	}
	r.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	afterTail := time.Second + c.Tail
	for i := range users {
		u := User{ID: fmt.Sprintf("%s-%06d", prefix, i), Kind: kinds[i]}
		if r.Float64() < c.PageViewShare && c.Countdown > 0 {
			for range 1 + r.IntN(3) {
				u.PageViews = append(u.PageViews, -time.Duration(r.Int64N(int64(c.Countdown))))
			}
			slices.Sort(u.PageViews)
		}
		switch u.Kind {
		case Bot:
			// Bots start a little early: the window filter answers them.
			u.Arrive = -200*time.Millisecond + time.Duration(r.Int64N(int64(100*time.Millisecond)))
		case Late:
			u.Arrive = afterTail + time.Duration(r.Float64()*float64(c.LateWindow))
			u.NoRequestID = r.Float64() >= c.RequestIDShare
		default:
			if u.Kind == Steady {
				u.Arrive = time.Duration(r.Float64() * float64(c.SteadyWindow))
			} else {
				u.Arrive = arrival(r, c)
			}
			u.NoRequestID = r.Float64() >= c.RequestIDShare
			if r.Float64() < c.DoubleClickShare {
				u.DoubleClick = 30*time.Millisecond + time.Duration(r.Int64N(int64(170*time.Millisecond)))
			}
		}
		switch x := r.Float64(); {
		case x < c.PayShare:
			u.Pay = PayPrompt
			u.PayAfter = 300*time.Millisecond + time.Duration(r.Float64()*float64(c.PayWithin))
		case x < c.PayShare+c.RaceShare:
			u.Pay = PayAtDeadline
			u.Jitter = time.Duration(r.Int64N(int64(300*time.Millisecond))) - 150*time.Millisecond
		}
		users[i] = u
	}
	if c.BotOperators > 0 {
		// A separate stream: the rest of the crowd is the same with or
		// without operators.
		or := rand.New(rand.NewPCG(c.Seed, 0xb07))
		at := make([]time.Duration, c.BotOperators)
		for i := range at {
			at[i] = -200*time.Millisecond + time.Duration(or.Int64N(int64(100*time.Millisecond)))
		}
		k := 0
		for i := range users {
			if users[i].Kind == Bot {
				users[i].Arrive = at[k%len(at)]
				k++
			}
		}
	}
	return Plan{Config: c, Users: users}
}

// arrival draws a human's first click: with probability FirstSecondShare
// in the first second, denser at its start (an exponential with a mean of
// 250ms, folded into the second), otherwise in the tail, decaying (an
// exponential with a mean of a third of the tail, folded into it).
func arrival(r *rand.Rand, c Config) time.Duration {
	if r.Float64() < c.FirstSecondShare || c.Tail <= 0 {
		s := math.Mod(r.ExpFloat64()*0.25, 1)
		return time.Duration(s * float64(time.Second))
	}
	tail := c.Tail.Seconds()
	s := math.Mod(r.ExpFloat64()*tail/3, tail)
	return time.Second + time.Duration(s*float64(time.Second))
}
