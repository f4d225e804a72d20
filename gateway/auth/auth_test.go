package auth

import (
	"encoding/base64"
	"errors"
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
