package order

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"
)

// TestCreateActivityWindowAtStoredPrecision: the window is checked as the
// database stores it (microseconds). One that only nanosecond digits keep
// open would be stored empty and fail every later load into Redis, so it
// is refused and nothing is written; one that survives truncation is
// stored, and read back, exactly as truncated.
func TestCreateActivityWindowAtStoredPrecision(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		s := NewStore(db)
		base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		empty := &Activity{Name: "x", Stock: 1, PriceCents: 1, PayTimeoutSeconds: 60,
			StartsAt: base.Add(100 * time.Nanosecond), EndsAt: base.Add(200 * time.Nanosecond)}
		err := s.CreateActivity(ctx, empty)
		if !errors.Is(err, ErrInvalidActivity) || !strings.Contains(err.Error(), "ends_at") {
			t.Fatalf("CreateActivity of a sub-microsecond window = %v; want ErrInvalidActivity naming ends_at", err)
		}
		if list, err := s.ListActivities(ctx); err != nil || len(list) != 0 {
			t.Fatalf("activities after the refused create: %+v, %v; want none", list, err)
		}

		a := &Activity{Name: "x", Stock: 1, PriceCents: 1, PayTimeoutSeconds: 60,
			StartsAt: base.Add(1900 * time.Nanosecond), EndsAt: base.Add(2100 * time.Nanosecond)}
		if err := s.CreateActivity(ctx, a); err != nil {
			t.Fatalf("CreateActivity of a one-microsecond window: %v", err)
		}
		wantStart, wantEnd := base.Add(time.Microsecond), base.Add(2*time.Microsecond)
		if !a.StartsAt.Equal(wantStart) || !a.EndsAt.Equal(wantEnd) {
			t.Errorf("caller's window %v .. %v; want %v .. %v", a.StartsAt, a.EndsAt, wantStart, wantEnd)
		}
		got, err := s.GetActivity(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.StartsAt.Equal(wantStart) || !got.EndsAt.Equal(wantEnd) {
			t.Errorf("stored window %v .. %v; want %v .. %v", got.StartsAt, got.EndsAt, wantStart, wantEnd)
		}
	})
}
