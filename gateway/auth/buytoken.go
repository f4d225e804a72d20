package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Buy token refusals. Each is its own error so the gateway can answer with
// a code that says which, and count refusals by reason.
var (
	ErrBuyTokenMissing  = errors.New("buy token missing")
	ErrBuyTokenInvalid  = errors.New("buy token invalid")
	ErrBuyTokenExpired  = errors.New("buy token expired")
	ErrBuyTokenUser     = errors.New("buy token issued to another user")
	ErrBuyTokenActivity = errors.New("buy token issued for another activity")
)

// DefaultBuyTokenTTL is how long a buy token stays valid: long enough for
// a buyer's retries through a spike, short enough that a token captured
// and replayed later is refused.
const DefaultBuyTokenTTL = 2 * time.Minute

// buyTokenContext separates buy-token MACs from every other use of the
// secret: a user JWT's signature can never pass as a buy token's.
const buyTokenContext = "seckill buy token v1"

// BuyTokens issues and verifies buy tokens: proof, checked in memory, that
// a user asked for the buy path of one activity after its start. A token
// is "<activity>.<user>.<expiry>.<mac>", the first three in clear so a
// refusal can say whose token it was; the MAC is HMAC-SHA256 (truncated to
// 128 bits) under a key derived from the user-token secret, so every
// gateway of a deployment verifies every other's tokens without a
// round trip.
type BuyTokens struct {
	key  []byte
	ttl  time.Duration
	macs sync.Pool // of *scratch
	now  func() time.Time
}

// queuePassContext keys the passes of a waiting room (NewQueuePasses)
// apart from the buy tokens: a token from GET /buy-token is never a pass.
const queuePassContext = "seckill queue pass v1"

// NewBuyTokens returns BuyTokens keyed from secret (the user-token secret)
// whose tokens live ttl (DefaultBuyTokenTTL when ttl <= 0).
func NewBuyTokens(secret []byte, ttl time.Duration) *BuyTokens {
	return newBuyTokens(secret, ttl, buyTokenContext)
}

// NewQueuePasses returns the passes a waiting room hands to the people it
// admits: buy tokens of their own kind, keyed apart from NewBuyTokens's,
// each valid until the admission's expiry (IssueUntil).
func NewQueuePasses(secret []byte) *BuyTokens {
	return newBuyTokens(secret, DefaultBuyTokenTTL, queuePassContext)
}

func newBuyTokens(secret []byte, ttl time.Duration, context string) *BuyTokens {
	if ttl <= 0 {
		ttl = DefaultBuyTokenTTL
	}
	derive := hmac.New(sha256.New, secret)
	derive.Write([]byte(context))
	b := &BuyTokens{key: derive.Sum(nil), ttl: ttl, now: time.Now}
	b.macs.New = func() any { return &scratch{mac: hmac.New(sha256.New, b.key)} }
	return b
}

// TTL is how long an issued token is valid.
func (b *BuyTokens) TTL() time.Duration { return b.ttl }

func (b *BuyTokens) mac(dst []byte, signed string) []byte {
	sc := b.macs.Get().(*scratch)
	dst = base64.RawURLEncoding.AppendEncode(dst, sc.sum(signed)[:16])
	b.macs.Put(sc)
	return dst
}

// Issue returns a token for userID and activityID and when it expires.
// The caller checks that the sale has started.
func (b *BuyTokens) Issue(userID string, activityID int64) (string, time.Time, error) {
	return b.IssueUntil(userID, activityID, b.now().Add(b.ttl))
}

// IssueUntil returns a token for userID and activityID valid until expiry
// (to the second). Every gateway issues the same token for the same
// expiry, so a pass answered twice by two gateways is one pass.
func (b *BuyTokens) IssueUntil(userID string, activityID int64, expiry time.Time) (string, time.Time, error) {
	if !ValidUserID(userID) {
		return "", time.Time{}, fmt.Errorf("user id %q: want 1-64 characters of letters, digits and _.@:-", userID)
	}
	exp := expiry.Truncate(time.Second)
	tok := make([]byte, 0, 20+1+len(userID)+1+11+1+22)
	tok = strconv.AppendInt(tok, activityID, 10)
	tok = append(tok, '.')
	tok = append(tok, userID...)
	tok = append(tok, '.')
	tok = strconv.AppendInt(tok, exp.Unix(), 10)
	tok = append(tok, '.')
	tok = b.mac(tok, string(tok))
	return string(tok), exp, nil
}

// Verify checks that token was issued by this deployment to userID for
// activityID and has not expired. The MAC is checked first: a token that
// is not ours is ErrBuyTokenInvalid whatever it claims.
func (b *BuyTokens) Verify(token, userID string, activityID int64) error {
	if token == "" {
		return ErrBuyTokenMissing
	}
	dot := strings.LastIndexByte(token, '.')
	if dot < 0 || len(token) > 160 {
		return ErrBuyTokenInvalid
	}
	signed, sig := token[:dot+1], token[dot+1:]
	var buf [24]byte
	want := b.mac(buf[:0], signed)
	if !hmac.Equal(want, []byte(sig)) {
		return ErrBuyTokenInvalid
	}
	// The activity and the expiry are digits; the user id between them may
	// hold dots of its own.
	act, rest, ok1 := strings.Cut(signed[:dot], ".")
	i := strings.LastIndexByte(rest, '.')
	if !ok1 || i < 0 {
		return ErrBuyTokenInvalid // signed by us, so never: a format change without a version bump
	}
	user, exp := rest[:i], rest[i+1:]
	a, err1 := strconv.ParseInt(act, 10, 64)
	e, err2 := strconv.ParseInt(exp, 10, 64)
	if err1 != nil || err2 != nil {
		return ErrBuyTokenInvalid
	}
	switch {
	case !b.now().Before(time.Unix(e, 0)):
		return ErrBuyTokenExpired
	case a != activityID:
		return ErrBuyTokenActivity
	case user != userID:
		return ErrBuyTokenUser
	}
	return nil
}
