// Package auth verifies the two kinds of callers: users, with HS256 JWTs whose
// subject is the user id, and the operator, with a static admin bearer token.
package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors callers map to 401.
var (
	ErrMissingToken = errors.New("missing bearer token")
	ErrInvalidToken = errors.New("invalid token")
)

// ValidUserID reports whether id may be used as a user id: 1-64 characters
// of letters, digits and _.@:-. User ids become Redis hash fields and
// database values, so they are short and plain (and need no JSON escaping).
func ValidUserID(id string) bool { return validUserID(id) }

func validUserID[T string | []byte](id T) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_' || c == '.' || c == '@' || c == ':' || c == '-':
		default:
			return false
		}
	}
	return true
}

// leeway is the clock skew allowed on exp and nbf.
const leeway = 5 * time.Second

// hs256Header is the header Issue writes (and golang-jwt writes for HS256),
// base64url-encoded. Tokens with exactly this header take the fast path.
var hs256Header = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// Tokens issues and verifies user tokens with one HS256 secret.
//
// Every buy verifies a token, and in a spike most buys are answered from
// memory, so verification is a large share of their cost. Tokens with the
// header Issue writes are checked by hand (a pooled HMAC, one JSON decode,
// the library's own claim validator); any other token goes through
// golang-jwt's parser, so both accept and reject exactly the same tokens
// (TestFastPathAgreesWithLibrary).
type Tokens struct {
	secret    []byte
	parser    *jwt.Parser
	validator *jwt.Validator
	macs      sync.Pool // of *scratch: hmac.New costs two digests and the key schedule
	now       func() time.Time
}

// NewTokens returns a Tokens for secret. The algorithm is pinned to HS256
// (no "none", no RS/HS confusion) and every token must carry an expiry.
func NewTokens(secret []byte) *Tokens {
	t := &Tokens{secret: secret, now: time.Now}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return t.now() }),
	}
	t.parser = jwt.NewParser(opts...)
	t.validator = jwt.NewValidator(opts...)
	t.macs.New = func() any { return &scratch{mac: hmac.New(sha256.New, secret)} }
	return t
}

// scratch is a keyed HMAC and room to hand it bytes without an allocation
// per call (a []byte passed through hash.Hash's interface escapes).
type scratch struct {
	mac hash.Hash
	buf [512]byte
	out [sha256.Size]byte
}

// sum returns the HMAC of s, valid until sc goes back to the pool.
func (sc *scratch) sum(s string) []byte {
	sc.mac.Reset()
	for len(s) > 0 {
		n := copy(sc.buf[:], s)
		sc.mac.Write(sc.buf[:n])
		s = s[n:]
	}
	return sc.mac.Sum(sc.out[:0])
}

// sign appends the base64url HMAC-SHA256 of signingInput to dst.
func (t *Tokens) sign(dst []byte, signingInput string) []byte {
	sc := t.macs.Get().(*scratch)
	dst = base64.RawURLEncoding.AppendEncode(dst, sc.sum(signingInput))
	t.macs.Put(sc)
	return dst
}

// Issue returns a token for userID valid for ttl: the claims golang-jwt
// writes for RegisteredClaims{Subject, ExpiresAt, IssuedAt}, signed HS256.
func (t *Tokens) Issue(userID string, ttl time.Duration) (string, error) {
	if !ValidUserID(userID) {
		return "", fmt.Errorf("user id %q: want 1-64 characters of letters, digits and _.@:-", userID)
	}
	now := t.now()
	var claims [128]byte
	c := append(claims[:0], `{"sub":"`...)
	c = append(c, userID...) // ValidUserID: nothing to escape
	c = append(c, `","exp":`...)
	c = strconv.AppendInt(c, now.Add(ttl).Unix(), 10)
	c = append(c, `,"iat":`...)
	c = strconv.AppendInt(c, now.Unix(), 10)
	c = append(c, '}')
	tok := make([]byte, 0, len(hs256Header)+1+base64.RawURLEncoding.EncodedLen(len(c))+1+43)
	tok = append(tok, hs256Header...)
	tok = append(tok, '.')
	tok = base64.RawURLEncoding.AppendEncode(tok, c)
	tok = append(tok, '.')
	tok = t.sign(tok, string(tok[:len(tok)-1]))
	return string(tok), nil
}

// Verify checks a raw token and returns its user id.
func (t *Tokens) Verify(raw string) (string, error) {
	rest, ok := strings.CutPrefix(raw, hs256Header+".")
	if !ok {
		return t.verifyLibrary(raw)
	}
	user, err := t.verifyFast(raw, rest)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return user, nil
}

// verifyLibrary checks raw with golang-jwt's parser.
func (t *Tokens) verifyLibrary(raw string) (string, error) {
	var claims jwt.RegisteredClaims
	if _, err := t.parser.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return t.secret, nil }); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return subject(&claims)
}

func subject(c *jwt.RegisteredClaims) (string, error) {
	if !ValidUserID(c.Subject) {
		return "", fmt.Errorf("%w: claim sub is not a valid user id", ErrInvalidToken)
	}
	return c.Subject, nil
}

// verifyFast checks a token whose header is hs256Header (rest is what
// follows it) as golang-jwt would: signature first, then the claims. Claims
// of the shape Issue writes are read and checked by hand; any others are
// decoded and checked with the library's validator. Its errors wrap the
// library's.
func (t *Tokens) verifyFast(raw, rest string) (string, error) {
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return "", fmt.Errorf("%w: token contains an invalid number of segments", jwt.ErrTokenMalformed)
	}
	if len(sig) > 64 || len(payload) > 256 { // longer than anything Issue writes
		return t.verifyLibrary(raw)
	}
	var in [256]byte
	var got [48]byte
	n, err := base64.RawURLEncoding.Decode(got[:], in[:copy(in[:], sig)])
	if err != nil {
		return "", fmt.Errorf("%w: could not base64 decode signature: %w", jwt.ErrTokenMalformed, err)
	}
	sc := t.macs.Get().(*scratch)
	ok = hmac.Equal(sc.sum(raw[:len(raw)-len(sig)-1]), got[:n])
	t.macs.Put(sc)
	if !ok {
		return "", fmt.Errorf("%w: %w", jwt.ErrTokenSignatureInvalid, jwt.ErrSignatureInvalid)
	}
	var js [192]byte
	n, err = base64.RawURLEncoding.Decode(js[:], in[:copy(in[:], payload)])
	if err != nil {
		return "", fmt.Errorf("%w: could not base64 decode claim: %w", jwt.ErrTokenMalformed, err)
	}
	if sub, exp, ok := issuedClaims(js[:n]); ok {
		// What the library's validator checks of these claims: exp, with
		// the leeway (there is no nbf; iat is not verified).
		if !t.now().Before(time.Unix(exp, 0).Add(leeway)) {
			return "", fmt.Errorf("%w: %w", jwt.ErrTokenInvalidClaims, jwt.ErrTokenExpired)
		}
		return string(sub), nil
	}
	return t.validateClaims(js[:n])
}

// validateClaims decodes and validates claims of any other shape.
func (t *Tokens) validateClaims(js []byte) (string, error) {
	var claims jwt.RegisteredClaims
	if err := json.Unmarshal(js, &claims); err != nil {
		return "", fmt.Errorf("%w: %w: could not JSON decode claim: %w", ErrInvalidToken, jwt.ErrTokenMalformed, err)
	}
	if err := t.validator.Validate(&claims); err != nil {
		return "", fmt.Errorf("%w: %w: %w", ErrInvalidToken, jwt.ErrTokenInvalidClaims, err)
	}
	return subject(&claims)
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

// issuedClaims reads claims of exactly the shape Issue writes,
// {"sub":"<user id>","exp":<seconds>,"iat":<seconds>}, and reports whether
// js had it; anything else is left to encoding/json.
func issuedClaims(js []byte) (sub []byte, exp int64, ok bool) {
	rest, ok := bytes.CutPrefix(js, []byte(`{"sub":"`))
	if !ok {
		return nil, 0, false
	}
	sub, rest, ok = bytes.Cut(rest, []byte(`","exp":`))
	if !ok || !validUserID(sub) {
		return nil, 0, false
	}
	e, rest, ok := bytes.Cut(rest, []byte(`,"iat":`))
	if !ok {
		return nil, 0, false
	}
	iat, ok := bytes.CutSuffix(rest, []byte("}"))
	if !ok {
		return nil, 0, false
	}
	exp, ok = seconds(e)
	if _, iatOK := seconds(iat); !ok || !iatOK {
		return nil, 0, false
	}
	return sub, exp, true
}

// seconds parses a plain decimal count of seconds, as Issue writes it.
func seconds(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 12 || len(b) > 1 && b[0] == '0' { // JSON has no leading zeros
		return 0, false
	}
	var n int64
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	return n, true
}
