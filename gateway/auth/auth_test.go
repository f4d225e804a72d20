package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestIssueVerifyRoundTrip(t *testing.T) {
	tk := NewTokens([]byte("0123456789abcdef0123456789abcdef"))
	tok, err := tk.Issue("alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tk.Verify(tok)
	if err != nil || got != "alice" {
		t.Fatalf("Verify = %q, %v; want alice", got, err)
	}
}

func TestVerifyRejects(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	tk := NewTokens(secret)
	sign := func(m jwt.SigningMethod, key any, claims jwt.Claims) string {
		s, err := jwt.NewWithClaims(m, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := jwt.RegisteredClaims{Subject: "bob", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}
	good := sign(jwt.SigningMethodHS256, secret, valid)
	parts := strings.Split(good, ".")
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	cases := map[string]string{
		"garbage":        "not-a-jwt",
		"alg none":       noneHeader + "." + parts[1] + ".",
		"alg none lib":   sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid),
		"HS512":          sign(jwt.SigningMethodHS512, secret, valid),
		"wrong secret":   sign(jwt.SigningMethodHS256, []byte("another-secret-another-secret!!"), valid),
		"expired":        sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: "bob", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour))}),
		"no expiry":      sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: "bob"}),
		"bad subject":    sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: "bob smith", ExpiresAt: valid.ExpiresAt}),
		"empty subject":  sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{ExpiresAt: valid.ExpiresAt}),
		"tampered claim": parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","exp":9999999999}`)) + "." + parts[2],
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := tk.Verify(tok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify accepted or misreported: %v", err)
			}
		})
	}
}

func TestIssueRejectsBadUserID(t *testing.T) {
	tk := NewTokens([]byte("0123456789abcdef0123456789abcdef"))
	for _, id := range []string{"", "a b", strings.Repeat("x", 65), "x\n"} {
		if _, err := tk.Issue(id, time.Hour); err == nil {
			t.Errorf("Issue(%q) accepted", id)
		}
	}
}

func TestBearerToken(t *testing.T) {
	for header, want := range map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc"} {
		if got, err := BearerToken(header); err != nil || got != want {
			t.Errorf("BearerToken(%q) = %q, %v", header, got, err)
		}
	}
	for _, header := range []string{"", "Bearer", "Bearer ", "Basic abc", "abc"} {
		if _, err := BearerToken(header); !errors.Is(err, ErrMissingToken) {
			t.Errorf("BearerToken(%q) err = %v", header, err)
		}
	}
}

func TestAdminTokenMatch(t *testing.T) {
	a := AdminToken("s3cret-admin-token")
	if !a.Match("s3cret-admin-token") || a.Match("s3cret-admin-toke") || a.Match("") {
		t.Fatal("admin token comparison wrong")
	}
	if AdminToken(nil).Match("") {
		t.Fatal("an empty admin token must match nothing")
	}
}

// The hand-written path must accept and reject exactly what golang-jwt
// does with the same options; any other header goes to the library itself.
func TestFastPathAgreesWithLibrary(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	tk := NewTokens(secret)
	tk.now = func() time.Time { return now }
	lib := jwt.NewParser(
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(),
		jwt.WithLeeway(5*time.Second), jwt.WithTimeFunc(func() time.Time { return now }))
	enc := base64.RawURLEncoding.EncodeToString
	signed := func(header, claims string) string {
		in := enc([]byte(header)) + "." + enc([]byte(claims))
		s, err := jwt.SigningMethodHS256.Sign(in, secret)
		if err != nil {
			t.Fatal(err)
		}
		return in + "." + enc(s)
	}
	const h = `{"alg":"HS256","typ":"JWT"}`
	exp := func(d time.Duration) string { return fmt.Sprint(now.Add(d).Unix()) }
	issued, err := tk.Issue("alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	good := signed(h, `{"sub":"bob","exp":`+exp(time.Hour)+`}`)
	p := strings.Split(good, ".")
	cases := map[string]string{
		"issued":                issued,
		"library claims":        good,
		"other header order":    signed(`{"typ":"JWT","alg":"HS256"}`, `{"sub":"bob","exp":`+exp(time.Hour)+`}`),
		"float exp":             signed(h, `{"sub":"bob","exp":`+exp(time.Hour)+`.5}`),
		"string exp":            signed(h, `{"sub":"bob","exp":"`+exp(time.Hour)+`"}`),
		"no exp":                signed(h, `{"sub":"bob"}`),
		"expired within leeway": signed(h, `{"sub":"bob","exp":`+exp(-3*time.Second)+`}`),
		"expired beyond leeway": signed(h, `{"sub":"bob","exp":`+exp(-6*time.Second)+`}`),
		"nbf in the future":     signed(h, `{"sub":"bob","exp":`+exp(time.Hour)+`,"nbf":`+exp(time.Minute)+`}`),
		"nbf within leeway":     signed(h, `{"sub":"bob","exp":`+exp(time.Hour)+`,"nbf":`+exp(3*time.Second)+`}`),
		"issued shape":          signed(h, `{"sub":"bob","exp":`+exp(time.Hour)+`,"iat":`+exp(0)+`}`),
		"issued shape, expired": signed(h, `{"sub":"bob","exp":`+exp(-time.Minute)+`,"iat":`+exp(-time.Hour)+`}`),
		"leading zero exp":      signed(h, `{"sub":"bob","exp":0`+exp(time.Hour)+`,"iat":1}`),
		"spaced exp":            signed(h, `{"sub":"bob","exp": `+exp(time.Hour)+`,"iat":1}`),
		"escaped sub":           signed(h, `{"sub":"b\u006fb","exp":`+exp(time.Hour)+`,"iat":1}`),
		"duplicate sub":         signed(h, `{"sub":"bob","exp":`+exp(time.Hour)+`,"iat":1,"sub":"eve"}`),
		"bad sub":               signed(h, `{"sub":"bob smith","exp":`+exp(time.Hour)+`,"iat":1}`),
		"long claims":           signed(h, `{"sub":"bob","exp":`+exp(time.Hour)+`,"jti":"`+strings.Repeat("j", 300)+`"}`),
		"long claims, expired":  signed(h, `{"sub":"bob","exp":`+exp(-time.Hour)+`,"jti":"`+strings.Repeat("j", 300)+`"}`),
		"claims not JSON":       signed(h, `{"sub":"bob",`),
		"claims an array":       signed(h, `["bob"]`),
		"trailing data":         signed(h, `{"sub":"bob","exp":`+exp(time.Hour)+`} x`),
		"tampered signature":    p[0] + "." + p[1] + "." + enc([]byte("0123456789abcdef0123456789abcdef")),
		"signature not base64":  p[0] + "." + p[1] + ".!!!",
		"padded signature":      good + "=",
		"four segments":         good + ".x",
		"two segments":          p[0] + "." + p[1],
		"payload not base64":    p[0] + ".%%." + p[2],
		"empty":                 "",
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			var c jwt.RegisteredClaims
			_, libErr := lib.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return secret, nil })
			if libErr == nil && !ValidUserID(c.Subject) {
				libErr = errors.New("sub is not a valid user id") // Verify's own rule, on both paths
			}
			user, err := tk.Verify(raw)
			if (err == nil) != (libErr == nil) {
				t.Fatalf("Verify = %q, %v; golang-jwt says %v", user, err, libErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify error %v does not wrap ErrInvalidToken", err)
			}
			if err == nil && user != c.Subject {
				t.Fatalf("Verify = %q, golang-jwt read sub %q", user, c.Subject)
			}
		})
	}
}

// BenchmarkVerify is the per-buy cost of authentication: the fast path
// against golang-jwt's parser on the same token, same run.
func BenchmarkVerify(b *testing.B) {
	tk := NewTokens([]byte("0123456789abcdef0123456789abcdef"))
	tok, err := tk.Issue("user-123456", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tk.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("golang-jwt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c jwt.RegisteredClaims
			if _, err := tk.parser.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return tk.secret, nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIssue is the load tester's cost per simulated user.
func BenchmarkIssue(b *testing.B) {
	tk := NewTokens([]byte("0123456789abcdef0123456789abcdef"))
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tk.Issue("user-123456", time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("golang-jwt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			now := time.Now()
			c := jwt.RegisteredClaims{Subject: "user-123456", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}
			if _, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(tk.secret); err != nil {
				b.Fatal(err)
			}
		}
	})
}
