package sale

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flashsale/seckill/gateway/auth"
	"github.com/flashsale/seckill/order"
)

// The buy path does not exist before the start: the sale page asks for a
// buy token from the start (IssueBuyToken, never cached) and the buy
// carries it. A script that fires at the buy before the start, or replays
// one captured request for many users, is refused in memory, before
// anything is reserved.

// tokenRefusals are the answers to a refused token, each a shared value
// (answered over and over in a bot storm), with the reason the metrics and
// the dashboard count it under.
var tokenRefusals = []struct {
	err    error
	answer *Error
}{
	{auth.ErrBuyTokenMissing, &Error{Kind: KindTokenRefused, Code: CodeBuyTokenMissing, Reason: "missing",
		Message: "buy_token is required: get one from GET /api/v1/activities/{id}/buy-token once the sale has started"}},
	{auth.ErrBuyTokenInvalid, &Error{Kind: KindTokenRefused, Code: CodeBuyTokenInvalid, Reason: "invalid",
		Message: "buy_token is not a token this service issued"}},
	{auth.ErrBuyTokenExpired, &Error{Kind: KindTokenRefused, Code: CodeBuyTokenExpired, Reason: "expired",
		Message: "buy_token has expired: get a new one"}},
	{auth.ErrBuyTokenUser, &Error{Kind: KindTokenRefused, Code: CodeBuyTokenWrongUser, Reason: "wrong_user",
		Message: "buy_token was issued to another user"}},
	{auth.ErrBuyTokenActivity, &Error{Kind: KindTokenRefused, Code: CodeBuyTokenWrongActivity, Reason: "wrong_activity",
		Message: "buy_token was issued for another activity"}},
}

// TokenRefusals are the shared answers of a refused buy token, one per
// reason, for a port that renders them once.
func TokenRefusals() []*Error {
	out := make([]*Error, len(tokenRefusals))
	for i, r := range tokenRefusals {
		out[i] = r.answer
	}
	return out
}

// checkPass admits p to the buy of a: with queue admission only with a
// pass from its waiting room, whatever SECKILL_BUY_TOKEN says (the queue
// is the door); with open admission as checkBuyToken says.
func (s *Service) checkPass(a *order.Activity, p Purchase) *Error {
	if a.Admission != order.AdmissionQueue {
		return s.checkBuyToken(p)
	}
	if s.deps.Passes == nil {
		return internal(errors.New("a queue activity without waiting-room passes"))
	}
	return s.refusal(s.deps.Passes.Verify(p.BuyToken, p.UserID, p.ActivityID))
}

// checkBuyToken admits p when buy tokens are off or p carries a valid one.
func (s *Service) checkBuyToken(p Purchase) *Error {
	if !s.cfg.RequireBuyToken {
		return nil
	}
	return s.refusal(s.deps.BuyTokens.Verify(p.BuyToken, p.UserID, p.ActivityID))
}

// refusal is the answer to a token that failed to verify with err (nil:
// admitted), counted by reason.
func (s *Service) refusal(err error) *Error {
	if err == nil {
		return nil
	}
	for _, r := range tokenRefusals {
		if errors.Is(err, r.err) {
			s.metrics.buyTokenRefused.WithLabelValues(r.answer.Reason).Inc()
			return r.answer
		}
	}
	return internal(err)
}

// BuyToken is a pass to the buy path of one activity.
type BuyToken struct {
	Token     string
	ExpiresAt time.Time
}

// IssueBuyToken gives user a token for the activity, from its start to its
// end. It is issued whether or not buys require one, so the page works the
// same either way.
func (s *Service) IssueBuyToken(ctx context.Context, activityID int64, user string) (BuyToken, error) {
	a, err := s.activity(ctx, activityID)
	if err != nil {
		return BuyToken{}, err
	}
	if a.Admission == order.AdmissionQueue {
		return BuyToken{}, &Error{Kind: KindTokenRefused, Code: CodeQueueAdmission, Reason: "queue",
			Message: fmt.Sprintf("activity %d admits buyers through its waiting room: join with POST /api/v1/activities/%d/queue, and the pass to buy comes from there", a.ID, a.ID)}
	}
	now := s.now()
	switch {
	case now.Before(a.StartsAt):
		return BuyToken{}, &Error{Kind: KindNotStarted,
			Message: "the sale starts at " + a.StartsAt.UTC().Format(time.RFC3339) + "; buy tokens are issued from then"}
	case !now.Before(a.EndsAt):
		return BuyToken{}, &Error{Kind: KindEnded, Message: "the sale ended at " + a.EndsAt.UTC().Format(time.RFC3339)}
	}
	tok, exp, err := s.deps.BuyTokens.Issue(user, a.ID)
	if err != nil {
		return BuyToken{}, internal(err)
	}
	s.metrics.buyTokensIssued.Inc()
	return BuyToken{Token: tok, ExpiresAt: exp.UTC()}, nil
}
