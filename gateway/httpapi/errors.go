package httpapi

// Every answer that is not a success goes through respond: a handler (or
// middleware) returns an error, and respond maps it, once, to the status,
// code and message of the v1 contract. The error is either an *apiError of
// the door itself (a body, a token, a rate limit: the constructors below)
// or whatever a use case returned, which sale.Classify turns into a
// *sale.Error whose Kind picks the status; anything else is an internal
// failure, answered 500 with a generic message and logged. The text of an
// internal error never reaches the client: it is logged with the request id
// the client got, so an operator can find it.

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/flashsale/seckill/gateway/sale"
)

// Error codes of the v1 contract.
const (
	codeValidation       = "VALIDATION"
	codeBadJSON          = "BAD_JSON"
	codeBodyTooLarge     = "BODY_TOO_LARGE"
	codeRequestTimeout   = "REQUEST_TIMEOUT"
	codeUnauthorized     = "UNAUTHORIZED"
	codeNotFound         = "NOT_FOUND"
	codeAlreadyPurchased = "ALREADY_PURCHASED"
	codeSoldOut          = "SOLD_OUT"
	codeNotStarted       = "NOT_STARTED"
	codeEnded            = "ENDED"
	codeRateLimited      = "RATE_LIMITED"
	codeBusy             = "BUSY"
	codeConflict         = "CONFLICT"
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
	// outcome is how a buy answered with it counts on the dashboard.
	outcome outcome
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

// The door's own answers, one constructor per status and code.

func errValidation(message string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: codeValidation, message: message, outcome: outRejected}
}

func errBadJSON(message string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: codeBadJSON, message: message, outcome: outRejected}
}

func errBodyTooLarge(limit int64) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, code: codeBodyTooLarge,
		message: fmt.Sprintf("request body is larger than %d bytes", limit), outcome: outRejected}
}

func errUnauthorized(message string) *apiError {
	return &apiError{status: http.StatusUnauthorized, code: codeUnauthorized, message: message, outcome: outRejected}
}

func errNotFound(format string, args ...any) *apiError {
	return &apiError{status: http.StatusNotFound, code: codeNotFound, message: fmt.Sprintf(format, args...), outcome: outRejected}
}

func errRateLimited(limiter string, retryAfter time.Duration) *apiError {
	return &apiError{status: http.StatusTooManyRequests, code: codeRateLimited,
		message: "too many requests (" + limiter + " limit); retry later", retryAfter: retryAfter, outcome: outRateLimited}
}

// errBusy is a 503 the client should retry after a second: the door is
// saturated. cause, if any, is logged.
func errBusy(message string, cause error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: codeBusy, message: message,
		retryAfter: time.Second, cause: cause, outcome: outBusy}
}

// errUnavailable is a 503 without Retry-After: an operation (readiness, an
// admin action) that failed and that nothing will retry by itself.
func errUnavailable(message string, cause error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable, message: message, cause: cause, outcome: outError}
}

func errNotImplemented(message string) *apiError {
	return &apiError{status: http.StatusNotImplemented, code: codeNotImplemented, message: message, outcome: outError}
}

// errInternal is a 500: a bug or a broken invariant. The client reads a
// generic message; cause is logged.
func errInternal(cause error) *apiError {
	return &apiError{status: http.StatusInternalServerError, code: codeInternal, message: "internal error", cause: cause, outcome: outError}
}

// fromSale is the answer the contract gives a use case's error: its Kind
// picks the status, its Code (when set) the code.
func fromSale(e *sale.Error) *apiError {
	a := &apiError{message: e.Message, cause: e.Cause, retryAfter: e.RetryAfter}
	switch e.Kind {
	case sale.KindInvalid:
		a.status, a.code, a.outcome = http.StatusBadRequest, codeValidation, outRejected
	case sale.KindNotFound:
		a.status, a.code, a.outcome = http.StatusNotFound, codeNotFound, outRejected
	case sale.KindNotStarted:
		a.status, a.code, a.outcome = http.StatusForbidden, codeNotStarted, outNotOpen
	case sale.KindEnded:
		a.status, a.code, a.outcome = http.StatusForbidden, codeEnded, outNotOpen
	case sale.KindSoldOut:
		a.status, a.code, a.outcome = http.StatusGone, codeSoldOut, outSoldOut
	case sale.KindAlreadyPurchased:
		a.status, a.code, a.outcome = http.StatusConflict, codeAlreadyPurchased, outAlreadyPurchased
	case sale.KindConflict:
		a.status, a.code, a.outcome = http.StatusConflict, codeConflict, outRejected
	case sale.KindTokenRefused:
		a.status, a.code, a.outcome = http.StatusForbidden, codeNotStarted, tokenOutcome(e.Reason)
	case sale.KindBusy:
		a.status, a.code, a.outcome = http.StatusServiceUnavailable, codeBusy, outBusy
	case sale.KindUnavailable:
		a.status, a.code, a.outcome = http.StatusServiceUnavailable, codeUnavailable, outError
	default:
		a.status, a.code, a.message, a.outcome = http.StatusInternalServerError, codeInternal, "internal error", outError
	}
	if e.Code != "" {
		a.code = e.Code
	}
	return a
}

// shared are the answers a spike gives over and over, each rendered once:
// the sale's shared errors map to these without an allocation.
var shared = func() map[*sale.Error]*apiError {
	m := map[*sale.Error]*apiError{}
	for _, e := range append([]*sale.Error{sale.ErrSoldOut, sale.ErrAlreadyPurchased, sale.ErrNotStarted, sale.ErrEnded},
		sale.TokenRefusals()...) {
		m[e] = prerendered(fromSale(e))
	}
	return m
}()

// classify maps err to its answer.
func classify(err error) *apiError {
	if ae, ok := err.(*apiError); ok { // the door's own, without errors.As's allocation
		return ae
	}
	se := sale.Classify(err)
	if ae, ok := shared[se]; ok {
		return ae
	}
	return fromSale(se)
}

// respond answers err and logs the server-side failures: a BUSY at warn
// (transient, expected under load or during an outage), any other 5xx at
// error. It aborts the gin chain. On the buy route it also counts the
// answer's outcome on the dashboard.
func (s *Server) respond(c *gin.Context, err error) {
	e := classify(err)
	if c.FullPath() == buyRoute {
		s.dash.record(c.Param("id"), e.outcome)
	}
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
