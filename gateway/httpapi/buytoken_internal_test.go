package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/flashsale/seckill/gateway/auth"
)

// The hand-written body is byte for byte what encoding/json writes.
func TestBuyTokenJSONMatchesEncodingJSON(t *testing.T) {
	bt := auth.NewBuyTokens([]byte("0123456789abcdef0123456789abcdef"), time.Minute)
	for _, user := range []string{"alice", "john.doe@example.com", "a_b:c-d"} {
		tok, exp, err := bt.Issue(user, 42)
		if err != nil {
			t.Fatal(err)
		}
		v := buyTokenJSON{Token: tok, ExpiresAt: exp.UTC()}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.appendJSON(nil); string(got) != string(want) {
			t.Errorf("appendJSON = %s, encoding/json = %s", got, want)
		}
	}
}
