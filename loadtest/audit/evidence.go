package audit

import "github.com/flashsale/seckill/loadtest/api"

// Mode is the gateway's buy mode, which decides what the invariants are
// about: in naive mode Redis holds no stock, so only the database counts.
type Mode string

// Buy modes (SECKILL_BUY_MODE).
const (
	Pipeline Mode = "pipeline"
	Naive    Mode = "naive"
)

// Order states.
const (
	StateQueued    = "queued"
	StateCreated   = "created"
	StatePaid      = "paid"
	StateCancelled = "cancelled"
)

// PayAnswer is the last definite answer the tool got to paying an order.
type PayAnswer string

// Pay answers.
const (
	PayOK        PayAnswer = "paid"      // 200 {"state":"paid"}
	PayCancelled PayAnswer = "cancelled" // 409 ORDER_CANCELLED
	// PayUnknown: every attempt failed without a definite answer (a
	// timeout may still have paid), so the order is left out of the
	// answer-by-answer comparison.
	PayUnknown PayAnswer = "unknown"
)

// Resale is the phase that buys the units returned by cancellations.
type Resale struct {
	Before   api.Stats `json:"before"`   // stats when it started (every cancellation processed)
	Users    int       `json:"users"`    // fresh users who tried
	Accepted int       `json:"accepted"` // distinct orders they got
}

// DBFacts are read from the database itself (nil without a DSN).
type DBFacts struct {
	Stock     int64            `json:"stock"`
	Available int64            `json:"available"`
	ByState   map[string]int64 `json:"by_state"`
	// UsersWithTwoLive are users holding more than one live order.
	UsersWithTwoLive []string `json:"users_with_two_live"`
	// LiveAtOnce describes each pair of one user's orders that were live
	// at the same time, from the rows' timestamps: a cancelled order was
	// live from its creation to its cancellation (its last update), any
	// other from its creation on. The schema's unique index covers live
	// orders only as they are now; this sees two that overlapped before
	// one of them was cancelled.
	LiveAtOnce []string `json:"live_at_once,omitempty"`
	// States and Users of every order of the activity, by id.
	States map[string]string `json:"-"`
	Users  map[string]string `json:"-"`
	// BornCancelled are the orders written already cancelled (created and
	// last updated at once): a worker found the reservation gone, so the
	// order never held a unit.
	BornCancelled map[string]bool `json:"-"`
}

// InFlight is a buy that failed on its way (api.Answer.InFlightFailure):
// no answer at all, or the load balancer's 502 or 504 because the gateway
// died or hung with it. Whether it reserved is unknown. It is not a
// promise: only a 202 the buyer received is.
type InFlight struct {
	User      string `json:"user"`
	RequestID string `json:"request_id,omitempty"`
	Outcome   string `json:"outcome"` // "error" (no answer), "502", "504"
}

// Evidence is what a run collected about one activity.
type Evidence struct {
	Mode  Mode
	Stock int64
	// Final is the stats read once the queue drained and the lifecycle
	// settled; Samples were polled during the run.
	Final   api.Stats
	Samples []api.Stats
	// UsersTried counts distinct users whose buy got past the rate limits.
	UsersTried int
	// Accepted maps every order id answered 202 to its user.
	Accepted map[string]string
	// RequestOrders maps "user/request_id" to every distinct order id
	// answered 202 for it (a double click must see one).
	RequestOrders map[string][]string
	// FinalStates are the orders' states read back at the end (GET
	// /api/v1/orders/{id} as the owner; "" when it answered 404).
	FinalStates map[string]string
	// Pays holds, per order the tool tried to pay, the definite answer.
	Pays map[string]PayAnswer
	// Lifecycle is true when the gateway serves pay and delayed cancel,
	// so invariants 6 and 7 can be exercised.
	Lifecycle bool
	Resale    *Resale
	DB        *DBFacts
	// InFlight are the buys that failed on their way; UserAnswers the
	// outcomes of each user's buys (the first few), to explain an order
	// that no answer promised.
	InFlight    []InFlight
	UserAnswers map[string][]string
	// DeadLetters are the messages dead-lettered during the run, by
	// topic (Count is what the dead-letter topic holds in all). nil when
	// they were not read: DeadLettersSkipped says why.
	DeadLetters        []api.DeadLetterTopic
	DeadLettersSkipped string
	// Queue is the waiting room's evidence (queue admission; nil: open).
	Queue *QueueEvidence
}
