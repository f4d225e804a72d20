package sale

import (
	"errors"
	"fmt"
	"time"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order"
)

// Kind is what went wrong, in the sale's terms. The HTTP port gives each
// Kind its status; the contract's code is Error.Code when the Kind alone
// does not say it.
type Kind uint8

// Kinds of Error.
const (
	KindInternal         Kind = iota // a bug or a broken invariant; the message is generic
	KindInvalid                      // the request names something invalid (a field, an id)
	KindNotFound                     // no such activity or order (for this user)
	KindNotStarted                   // the sale has not started
	KindEnded                        // the sale has ended
	KindSoldOut                      // nothing left
	KindAlreadyPurchased             // one unit per user per activity
	KindConflict                     // the order's state refuses the request (Code says which)
	KindTokenRefused                 // the buy token is missing or wrong (Code and Reason say which)
	KindBusy                         // a backend is away or the gateway is saturated: retry after RetryAfter
	KindUnavailable                  // an operation failed and nothing retries it by itself
)

// Codes of the contract that a Kind alone does not determine.
const (
	CodeOrderCancelled        = "ORDER_CANCELLED"
	CodeNotPayable            = "NOT_PAYABLE"
	CodeBuyTokenMissing       = "BUY_TOKEN_MISSING"
	CodeBuyTokenInvalid       = "BUY_TOKEN_INVALID"
	CodeBuyTokenExpired       = "BUY_TOKEN_EXPIRED"
	CodeBuyTokenWrongUser     = "BUY_TOKEN_WRONG_USER"
	CodeBuyTokenWrongActivity = "BUY_TOKEN_WRONG_ACTIVITY"
	// CodeOpenAdmission answers a waiting-room route of an activity with
	// open admission (409).
	CodeOpenAdmission = "OPEN_ADMISSION"
	// CodeQueueAdmission answers GET /buy-token of an activity that
	// admits through its waiting room (403): the pass comes from there.
	CodeQueueAdmission = "QUEUE_ADMISSION"
)

// Error is a use case's answer that is not a success.
type Error struct {
	Kind Kind
	// Code is the contract's code when the Kind does not imply it (a
	// refused buy token, a conflict); empty otherwise.
	Code string
	// Message is what the client reads: it names what was wrong, never an
	// internal error's text.
	Message string
	// Reason labels a refused buy token (missing, invalid, expired,
	// wrong_user, wrong_activity) for the metrics and the dashboard.
	Reason string
	// RetryAfter, when positive, is how long the client should wait
	// before trying again: the condition is transient.
	RetryAfter time.Duration
	// Cause is the internal failure behind the answer, for the log only.
	Cause error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s", e.Kind, e.Message)
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Cause }

func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindNotFound:
		return "not found"
	case KindNotStarted:
		return "not started"
	case KindEnded:
		return "ended"
	case KindSoldOut:
		return "sold out"
	case KindAlreadyPurchased:
		return "already purchased"
	case KindConflict:
		return "conflict"
	case KindTokenRefused:
		return "buy token refused"
	case KindBusy:
		return "busy"
	case KindUnavailable:
		return "unavailable"
	}
	return "internal"
}

// The answers a spike gives over and over: shared values, so answering
// them allocates nothing (the HTTP port renders each body once).
var (
	ErrSoldOut          = &Error{Kind: KindSoldOut, Message: "sold out"}
	ErrAlreadyPurchased = &Error{Kind: KindAlreadyPurchased, Message: "this user already holds an order for this activity"}
	ErrNotStarted       = &Error{Kind: KindNotStarted, Message: "the sale has not started"}
	ErrEnded            = &Error{Kind: KindEnded, Message: "the sale has ended"}
)

// Shared answers of every Error constructor below.

func invalidf(format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Message: fmt.Sprintf(format, args...)}
}

func notFoundf(format string, args ...any) *Error {
	return &Error{Kind: KindNotFound, Message: fmt.Sprintf(format, args...)}
}

func busy(message string, cause error) *Error {
	return &Error{Kind: KindBusy, Message: message, RetryAfter: time.Second, Cause: cause}
}

func internal(cause error) *Error {
	return &Error{Kind: KindInternal, Message: "internal error", Cause: cause}
}

func conflict(code, message string) *Error {
	return &Error{Kind: KindConflict, Code: code, Message: message}
}

// Classify returns err as an *Error: itself when it is one, the answer the
// contract gives a sentinel of the packages the sale calls, or an internal
// error. The HTTP port calls it for every error a use case returns.
func Classify(err error) *Error {
	if e, ok := err.(*Error); ok { // the common case, without errors.As's allocation
		return e
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, order.ErrUserHasOrder):
		return ErrAlreadyPurchased
	case errors.Is(err, order.ErrSoldOut):
		return ErrSoldOut
	case errors.Is(err, order.ErrNotStarted):
		return ErrNotStarted
	case errors.Is(err, order.ErrEnded):
		return ErrEnded
	case errors.Is(err, order.ErrOrderCancelled):
		return conflict(CodeOrderCancelled, "the order was cancelled: its pay deadline passed and the unit went back on sale")
	case errors.Is(err, order.ErrNotFound):
		return notFoundf("not found")
	case errors.Is(err, mq.ErrQueueFull):
		return busy("order queue is full; nothing was reserved, try again", err)
	case errors.Is(err, inventory.ErrNotLoaded):
		return busy("activity stock is not loaded in redis; try again", err)
	case errors.Is(err, inventory.ErrUnavailable):
		return busy("inventory unavailable; try again", err)
	}
	return internal(err)
}
