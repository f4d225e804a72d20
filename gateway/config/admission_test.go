package config

import (
	"strings"
	"testing"
)

func TestMaxBuysInFlight(t *testing.T) {
	c, err := Load(vars(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxBuysInFlight != DefaultMaxBuysInFlight || DefaultMaxBuysInFlight != 512 {
		t.Fatalf("default MaxBuysInFlight %d, want 512", c.MaxBuysInFlight)
	}
	c, err = Load(vars(map[string]string{"SECKILL_MAX_BUYS_IN_FLIGHT": " 64 "}))
	if err != nil || c.MaxBuysInFlight != 64 {
		t.Fatalf("SECKILL_MAX_BUYS_IN_FLIGHT=64: %d, %v", c.MaxBuysInFlight, err)
	}
	for _, bad := range []string{"0", "-1", "many", "1.5", "100001"} {
		_, err := Load(vars(map[string]string{"SECKILL_MAX_BUYS_IN_FLIGHT": bad}))
		if err == nil || !strings.Contains(err.Error(), "SECKILL_MAX_BUYS_IN_FLIGHT") {
			t.Errorf("SECKILL_MAX_BUYS_IN_FLIGHT=%q: err = %v, want an error naming the variable", bad, err)
		}
	}
}
