package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/flashsale/seckill/gateway/auth"
)

// The buy path does not exist before the start: the sale page asks for a
// buy token from the start (GET /activities/{id}/buy-token, never cached)
// and the buy carries it. A script that fires at the buy route before the
// start, or replays one captured request for many users, is refused at the
// door, in memory, before anything is reserved.

// Error codes of a refused buy token (403).
const (
	codeBuyTokenMissing       = "BUY_TOKEN_MISSING"
	codeBuyTokenInvalid       = "BUY_TOKEN_INVALID"
	codeBuyTokenExpired       = "BUY_TOKEN_EXPIRED"
	codeBuyTokenWrongUser     = "BUY_TOKEN_WRONG_USER"
	codeBuyTokenWrongActivity = "BUY_TOKEN_WRONG_ACTIVITY"
)

// buyTokenRefusals are the answers to a refused token, with the reason
// seckill_buy_token_refused_total counts them under.
var buyTokenRefusals = []struct {
	err    error
	reason string
	answer *apiError
}{
	{auth.ErrBuyTokenMissing, "missing", prerendered(&apiError{status: http.StatusForbidden, code: codeBuyTokenMissing,
		message: "buy_token is required: get one from GET /api/v1/activities/{id}/buy-token once the sale has started"})},
	{auth.ErrBuyTokenInvalid, "invalid", prerendered(&apiError{status: http.StatusForbidden, code: codeBuyTokenInvalid,
		message: "buy_token is not a token this service issued"})},
	{auth.ErrBuyTokenExpired, "expired", prerendered(&apiError{status: http.StatusForbidden, code: codeBuyTokenExpired,
		message: "buy_token has expired: get a new one"})},
	{auth.ErrBuyTokenUser, "wrong_user", prerendered(&apiError{status: http.StatusForbidden, code: codeBuyTokenWrongUser,
		message: "buy_token was issued to another user"})},
	{auth.ErrBuyTokenActivity, "wrong_activity", prerendered(&apiError{status: http.StatusForbidden, code: codeBuyTokenWrongActivity,
		message: "buy_token was issued for another activity"})},
}

// checkBuyToken admits p when buy tokens are off or p carries a valid one;
// a refusal comes with its reason (a label of seckill_buy_token_refused_total).
func (s *Server) checkBuyToken(p purchase) (reason string, err error) {
	if !s.cfg.RequireBuyToken {
		return "", nil
	}
	id, err := strconv.ParseInt(p.activity, 10, 64)
	if err != nil || id <= 0 {
		return "", errNotFound("activity %q not found", p.activity)
	}
	err = s.cfg.BuyTokens.Verify(p.buyToken, p.user, id)
	if err == nil {
		return "", nil
	}
	for _, r := range buyTokenRefusals {
		if errors.Is(err, r.err) {
			s.metrics.buyTokenRefused.WithLabelValues(r.reason).Inc()
			return r.reason, r.answer
		}
	}
	return "", errInternal(err)
}

// buyTokenJSON is the answer of GET /activities/{id}/buy-token.
type buyTokenJSON struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Server) limitBuyTokenUser(c *gin.Context) {
	if k := s.cfg.Limits.BuyTokenPerUser; k != nil {
		if ok, retry := k.Allow(c.GetString(keyUser)); !ok {
			s.metrics.rateLimited.WithLabelValues("buy_token_user").Inc()
			s.respond(c, errRateLimited("per-user buy-token", retry))
			return
		}
	}
	c.Next()
}

func (s *Server) getBuyToken(c *gin.Context) {
	t, err := s.issueBuyToken(c.Request.Context(), c.Param("id"), c.GetString(keyUser))
	if err != nil {
		s.respond(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "application/json; charset=utf-8", t.appendJSON(make([]byte, 0, 160)))
}

// appendJSON encodes t as encoding/json would: a token is digits, a user
// id and base64url (auth.ValidUserID: nothing to escape), and expires_at
// is whole seconds in UTC. Every buyer asks for one at the start instant,
// so it skips the reflection.
func (t buyTokenJSON) appendJSON(b []byte) []byte {
	b = append(b, `{"token":"`...)
	b = append(b, t.Token...)
	b = append(b, `","expires_at":"`...)
	b = t.ExpiresAt.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// issueBuyToken gives user a token for the activity, from its start to its
// end. It is issued whether or not buys require one, so the page works the
// same either way.
func (s *Server) issueBuyToken(ctx context.Context, idParam, user string) (buyTokenJSON, error) {
	a, err := s.activity(ctx, idParam)
	if err != nil {
		return buyTokenJSON{}, err
	}
	now := s.now()
	switch {
	case now.Before(a.StartsAt):
		return buyTokenJSON{}, errNotStarted("the sale starts at " + a.StartsAt.UTC().Format(time.RFC3339) + "; buy tokens are issued from then")
	case !now.Before(a.EndsAt):
		return buyTokenJSON{}, errEnded("the sale ended at " + a.EndsAt.UTC().Format(time.RFC3339))
	}
	tok, exp, err := s.cfg.BuyTokens.Issue(user, a.ID)
	if err != nil {
		return buyTokenJSON{}, errInternal(err)
	}
	s.metrics.buyTokensIssued.Inc()
	return buyTokenJSON{Token: tok, ExpiresAt: exp.UTC()}, nil
}
