// Package auth verifies the two kinds of callers: users, with HS256 JWTs whose
// subject is the user id, and the operator, with a static admin bearer token.
package auth

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors callers map to 401.
var (
	ErrMissingToken = errors.New("missing bearer token")
	ErrInvalidToken = errors.New("invalid token")
)

// userIDPattern bounds user ids: they become Redis hash fields and database
// values, so they are short and plain.
var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.@:-]{1,64}$`)

// ValidUserID reports whether id may be used as a user id.
func ValidUserID(id string) bool { return userIDPattern.MatchString(id) }

// Tokens issues and verifies user tokens with one HS256 secret.
type Tokens struct {
	secret []byte
	parser *jwt.Parser
	now    func() time.Time
}

// NewTokens returns a Tokens for secret. The algorithm is pinned to HS256
// (no "none", no RS/HS confusion) and every token must carry an expiry.
func NewTokens(secret []byte) *Tokens {
	return &Tokens{
		secret: secret,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(5*time.Second),
		),
		now: time.Now,
	}
}

// Issue returns a token for userID valid for ttl.
func (t *Tokens) Issue(userID string, ttl time.Duration) (string, error) {
	if !ValidUserID(userID) {
		return "", fmt.Errorf("user id %q: want 1-64 characters of letters, digits and _.@:-", userID)
	}
	now := t.now()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   userID,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	})
	return tok.SignedString(t.secret)
}

// Verify checks a raw token and returns its user id.
func (t *Tokens) Verify(raw string) (string, error) {
	var claims jwt.RegisteredClaims
	_, err := t.parser.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return t.secret, nil })
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if !ValidUserID(claims.Subject) {
		return "", fmt.Errorf("%w: claim sub is not a valid user id", ErrInvalidToken)
	}
	return claims.Subject, nil
}

// BearerToken extracts the token from an Authorization header value.
func BearerToken(header string) (string, error) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", ErrMissingToken
	}
	return strings.TrimSpace(tok), nil
}

// AdminToken compares bearer tokens in constant time.
type AdminToken []byte

// Match reports whether tok is the admin token.
func (a AdminToken) Match(tok string) bool {
	return len(a) > 0 && subtle.ConstantTimeCompare(a, []byte(tok)) == 1
}
