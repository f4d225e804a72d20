package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBuyTokens(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	bt := NewBuyTokens(secret, time.Minute)
	bt.now = func() time.Time { return now }
	tok, exp, err := bt.Issue("alice", 7)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(time.Minute); !exp.Equal(want) {
		t.Fatalf("expires_at = %v, want %v", exp, want)
	}
	other := NewBuyTokens([]byte("another-secret-another-secret!!!"), time.Minute)
	other.now = bt.now
	forged, _, _ := other.Issue("alice", 7)
	jwt, err := NewTokens(secret).Issue("alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dotted, _, err := bt.Issue("john.doe.2", 7)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(tok, ".")
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	cases := []struct {
		name     string
		token    string
		user     string
		activity int64
		at       time.Time
		want     error
	}{
		{"valid", tok, "alice", 7, now, nil},
		{"user id with dots", dotted, "john.doe.2", 7, now, nil},
		{"user id with dots, another user's", dotted, "john.doe", 7, now, ErrBuyTokenUser},
		{"valid just before expiry", tok, "alice", 7, exp.Add(-time.Nanosecond), nil},
		{"missing", "", "alice", 7, now, ErrBuyTokenMissing},
		{"expired", tok, "alice", 7, exp, ErrBuyTokenExpired},
		{"another user's", tok, "bob", 7, now, ErrBuyTokenUser},
		{"another activity's", tok, "alice", 8, now, ErrBuyTokenActivity},
		{"another deployment's", forged, "alice", 7, now, ErrBuyTokenInvalid},
		{"a user JWT", jwt, "alice", 7, now, ErrBuyTokenInvalid},
		{"user rewritten", head + ".bob." + strings.Split(tok, ".")[2] + "." + sig, "bob", 7, now, ErrBuyTokenInvalid},
		{"expiry extended", head + ".alice.9999999999." + sig, "alice", 7, now, ErrBuyTokenInvalid},
		{"garbage", "not a token", "alice", 7, now, ErrBuyTokenInvalid},
		{"too long", strings.Repeat("a.", 100), "alice", 7, now, ErrBuyTokenInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bt.now = func() time.Time { return tc.at }
			if err := bt.Verify(tc.token, tc.user, tc.activity); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestBuyTokenIssueRejectsBadUserID(t *testing.T) {
	bt := NewBuyTokens([]byte("0123456789abcdef0123456789abcdef"), 0)
	if bt.TTL() != DefaultBuyTokenTTL {
		t.Fatalf("TTL = %v, want the default %v", bt.TTL(), DefaultBuyTokenTTL)
	}
	if _, _, err := bt.Issue("a b", 1); err == nil {
		t.Fatal("Issue accepted a user id with a space")
	}
}

// BenchmarkBuyTokenVerify is what the token adds to each buy.
func BenchmarkBuyTokenVerify(b *testing.B) {
	bt := NewBuyTokens([]byte("0123456789abcdef0123456789abcdef"), time.Minute)
	tok, _, err := bt.Issue("user-123456", 42)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := bt.Verify(tok, "user-123456", 42); err != nil {
			b.Fatal(err)
		}
	}
}

// A waiting room's pass is a buy token of its own kind: a token from
// GET /buy-token does not pass for one, nor the other way round; a pass
// lasts until the expiry it was issued with.
func TestQueuePassesAreKeyedApart(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	tokens, passes := NewBuyTokens(secret, time.Minute), NewQueuePasses(secret)
	tok, _, err := tokens.Issue("alice", 7)
	if err != nil {
		t.Fatal(err)
	}
	pass, exp, err := passes.IssueUntil("alice", 7, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := passes.Verify(pass, "alice", 7); err != nil {
		t.Fatalf("a pass: %v", err)
	}
	if err := passes.Verify(tok, "alice", 7); !errors.Is(err, ErrBuyTokenInvalid) {
		t.Fatalf("a buy token as a pass: %v, want invalid", err)
	}
	if err := tokens.Verify(pass, "alice", 7); !errors.Is(err, ErrBuyTokenInvalid) {
		t.Fatalf("a pass as a buy token: %v, want invalid", err)
	}
	again, _, _ := passes.IssueUntil("alice", 7, exp)
	if again != pass {
		t.Fatal("the same admission's pass differs between two issues")
	}
	old, _, _ := passes.IssueUntil("alice", 7, time.Now().Add(-time.Second))
	if err := passes.Verify(old, "alice", 7); !errors.Is(err, ErrBuyTokenExpired) {
		t.Fatalf("a lapsed pass: %v, want expired", err)
	}
}
