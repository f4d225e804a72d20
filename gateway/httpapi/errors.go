package httpapi

// Every answer that is not a success goes through respond: a handler (or
// middleware) returns an error, and respond maps it, once, to the status,
// code and message of the v1 contract. The error is either an *apiError
// (made by the constructors below, with the handler's wording) or an error
// of the packages the gateway calls, matched by its sentinel in classify;
// anything else is an internal failure, answered 500 with a generic message
// and logged. The text of an internal error never reaches the client: it is
// logged with the request id the client got, so an operator can find it.

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order"
)

// Error codes of the v1 contract.
const (
	codeValidation       = "VALIDATION"
	codeBadJSON          = "BAD_JSON"
	codeBodyTooLarge     = "BODY_TOO_LARGE"
	codeUnauthorized     = "UNAUTHORIZED"
	codeNotFound         = "NOT_FOUND"
	codeAlreadyPurchased = "ALREADY_PURCHASED"
	codeSoldOut          = "SOLD_OUT"
	codeNotStarted       = "NOT_STARTED"
	codeEnded            = "ENDED"
	codeRateLimited      = "RATE_LIMITED"
	codeBusy             = "BUSY"
	codeOrderCancelled   = "ORDER_CANCELLED"
	codeNotPayable       = "NOT_PAYABLE"
	codeUnavailable      = "UNAVAILABLE"
	codeInternal         = "INTERNAL"
	codeNotImplemented   = "NOT_IMPLEMENTED"
)

// errorBody is the body of every error answer.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// apiError is an answer of the contract that is not a success.
type apiError struct {
	status  int
	code    string
	message string // what the client reads: it names what was wrong, never an internal error's text
	// retryAfter, when positive, is sent as Retry-After (whole seconds,
	// at least 1): the condition is transient and the client should come
	// back then, not hammer.
	retryAfter time.Duration
	// cause is the internal failure behind the answer, for the log only.
	cause error
	// body is the answer's JSON, rendered once for the answers the hot
	// path gives over and over (prerendered); nil renders per answer.
	body []byte
}

// prerendered renders e's body once, for an answer shared by every request
// that gets it (sold out, a refused buy token...).
func prerendered(e *apiError) *apiError {
	b, err := json.Marshal(errorBody{Code: e.code, Message: e.message})
	if err != nil {
		panic(err) // two strings always marshal
	}
	e.body = b
	return e
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("%d %s: %s", e.status, e.code, e.message)
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *apiError) Unwrap() error { return e.cause }

// The answers of the contract, one constructor per status and code.

func errValidation(message string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: codeValidation, message: message}
}

func errBadJSON(message string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: codeBadJSON, message: message}
}

func errBodyTooLarge(limit int64) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, code: codeBodyTooLarge,
		message: fmt.Sprintf("request body is larger than %d bytes", limit)}
}

func errUnauthorized(message string) *apiError {
	return &apiError{status: http.StatusUnauthorized, code: codeUnauthorized, message: message}
}

func errNotFound(format string, args ...any) *apiError {
	return &apiError{status: http.StatusNotFound, code: codeNotFound, message: fmt.Sprintf(format, args...)}
}

func errNotStarted(message string) *apiError {
	return &apiError{status: http.StatusForbidden, code: codeNotStarted, message: message}
}

func errEnded(message string) *apiError {
	return &apiError{status: http.StatusForbidden, code: codeEnded, message: message}
}

// errConflict is a 409: the request is valid but the resource's state
// refuses it (codeAlreadyPurchased, codeOrderCancelled, codeNotPayable).
func errConflict(code, message string) *apiError {
	return &apiError{status: http.StatusConflict, code: code, message: message}
}

func errRateLimited(limiter string, retryAfter time.Duration) *apiError {
	return &apiError{status: http.StatusTooManyRequests, code: codeRateLimited,
		message: "too many requests (" + limiter + " limit); retry later", retryAfter: retryAfter}
}

// errBusy is a 503 the client should retry after a second: a backend is
// away or the gateway is saturated. cause, if any, is logged.
func errBusy(message string, cause error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: codeBusy, message: message,
		retryAfter: time.Second, cause: cause}
}

// errUnavailable is a 503 without Retry-After: an operation (readiness, an
// admin action) that failed and that nothing will retry by itself.
func errUnavailable(message string, cause error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable, message: message, cause: cause}
}

func errNotImplemented(message string) *apiError {
	return &apiError{status: http.StatusNotImplemented, code: codeNotImplemented, message: message}
}

// errInternal is a 500: a bug or a broken invariant. The client reads a
// generic message; cause is logged.
func errInternal(cause error) *apiError {
	return &apiError{status: http.StatusInternalServerError, code: codeInternal, message: "internal error", cause: cause}
}

// The answers of the buy route that Redis (inventory.Outcome) and the naive
// mode (order's sentinels) share.
var (
	errAlreadyPurchased = prerendered(errConflict(codeAlreadyPurchased, "this user already holds an order for this activity"))
	errSoldOut          = prerendered(&apiError{status: http.StatusGone, code: codeSoldOut, message: "sold out"})
	errSaleNotStarted   = prerendered(errNotStarted("the sale has not started"))
	errSaleEnded        = prerendered(errEnded("the sale has ended"))
)

// classify maps err to its answer: an *apiError as it is, a sentinel of the
// packages the gateway calls to the answer the contract gives it, anything
// else to 500.
func classify(err error) *apiError {
	if ae, ok := err.(*apiError); ok { // the common case, without errors.As's allocation
		return ae
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	switch {
	case errors.Is(err, order.ErrInvalidActivity):
		// The store's checks name the field; the sentinel's own text is
		// noise to the client.
		msg := strings.TrimPrefix(err.Error(), order.ErrInvalidActivity.Error()+": ")
		return errValidation(msg)
	case errors.Is(err, order.ErrUserHasOrder):
		return errAlreadyPurchased
	case errors.Is(err, order.ErrSoldOut):
		return errSoldOut
	case errors.Is(err, order.ErrNotStarted):
		return errSaleNotStarted
	case errors.Is(err, order.ErrEnded):
		return errSaleEnded
	case errors.Is(err, order.ErrOrderCancelled):
		return errConflict(codeOrderCancelled, "the order was cancelled: its pay deadline passed and the unit went back on sale")
	case errors.Is(err, order.ErrNotFound):
		return errNotFound("not found")
	case errors.Is(err, mq.ErrQueueFull):
		return errBusy("order queue is full; nothing was reserved, try again", err)
	case errors.Is(err, inventory.ErrNotLoaded):
		return errBusy("activity stock is not loaded in redis; try again", err)
	case errors.Is(err, inventory.ErrUnavailable):
		return errBusy("inventory unavailable; try again", err)
	}
	return errInternal(err)
}

// respond answers err and logs the server-side failures: a BUSY at warn
// (transient, expected under load or during an outage), any other 5xx at
// error. It aborts the gin chain.
func (s *Server) respond(c *gin.Context, err error) {
	e := classify(err)
	if e.status >= http.StatusInternalServerError && e.cause != nil {
		level := slog.LevelError
		if e.code == codeBusy {
			level = slog.LevelWarn
		}
		s.log.Log(c, level, "request failed", "request_id", c.GetString(keyRequestID), "method", c.Request.Method,
			"route", c.FullPath(), "status", e.status, "code", e.code, "err", e.cause)
	}
	if e.retryAfter > 0 {
		secs := int((e.retryAfter + time.Second - 1) / time.Second)
		c.Header("Retry-After", strconv.Itoa(max(1, secs)))
	}
	if e.body != nil {
		c.Abort()
		c.Data(e.status, "application/json; charset=utf-8", e.body)
		return
	}
	c.AbortWithStatusJSON(e.status, errorBody{Code: e.code, Message: e.message})
}
