package config

import (
	"slices"
	"strings"
	"testing"
)

func TestBuyMode(t *testing.T) {
	for _, tc := range []struct {
		value, want string
		bad         bool
	}{
		{"", BuyModePipeline, false},
		{"pipeline", BuyModePipeline, false},
		{"naive", BuyModeNaive, false},
		{" NAIVE ", BuyModeNaive, false},
		{"sync", "", true},
	} {
		t.Run(tc.value, func(t *testing.T) {
			c, err := Load(vars(map[string]string{"SECKILL_BUY_MODE": tc.value}))
			if tc.bad {
				if err == nil || !strings.Contains(err.Error(), "SECKILL_BUY_MODE") {
					t.Fatalf("SECKILL_BUY_MODE=%q: err = %v, want an error naming the variable", tc.value, err)
				}
				return
			}
			if err != nil || c.BuyMode != tc.want {
				t.Fatalf("SECKILL_BUY_MODE=%q: mode %q, err %v; want %q", tc.value, c.BuyMode, err, tc.want)
			}
			if c.Redacted()["buy_mode"] != tc.want {
				t.Errorf("Redacted() does not show the buy mode: %v", c.Redacted())
			}
		})
	}
	if !slices.Contains(Names(), "SECKILL_BUY_MODE") {
		t.Error("Names() does not list SECKILL_BUY_MODE, so deploy files using it would be flagged")
	}
}
