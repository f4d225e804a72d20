package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
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

// apiError is the body of every error answer.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func abort(c *gin.Context, status int, code, message string) {
	c.AbortWithStatusJSON(status, apiError{Code: code, Message: message})
}

// busy answers 503 with a short Retry-After: the condition is transient and
// the client should come back, not hammer.
func busy(c *gin.Context, message string) {
	c.Header("Retry-After", "1")
	abort(c, http.StatusServiceUnavailable, codeBusy, message)
}

func rateLimited(c *gin.Context, limiter string, retryAfter time.Duration) {
	secs := int((retryAfter + time.Second - 1) / time.Second)
	c.Header("Retry-After", strconv.Itoa(max(1, secs)))
	abort(c, http.StatusTooManyRequests, codeRateLimited, "too many requests ("+limiter+" limit); retry later")
}
