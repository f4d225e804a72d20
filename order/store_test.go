package order

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"gorm.io/gorm"
)

func TestStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		s := NewStore(db)
		if s.DB() != db {
			t.Error("DB() does not return the handle the store was made with")
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}

		a := &Activity{
			Name: "phone", Stock: 10, Available: 3, Version: 7, PriceCents: 100,
			StartsAt: time.Now().Add(time.Minute), EndsAt: time.Now().Add(time.Hour), PayTimeoutSeconds: 60,
		}
		if err := s.CreateActivity(ctx, a); err != nil {
			t.Fatalf("CreateActivity: %v", err)
		}
		if a.ID == 0 || a.Available != 10 || a.Version != 0 {
			t.Errorf("created activity id=%d available=%d version=%d, want id set, available 10, version 0", a.ID, a.Available, a.Version)
		}
		got, err := s.GetActivity(ctx, a.ID)
		if err != nil {
			t.Fatalf("GetActivity: %v", err)
		}
		if got.Name != "phone" || got.Stock != 10 || got.Available != 10 || !got.StartsAt.Equal(a.StartsAt) {
			t.Errorf("GetActivity = %+v, want %+v", got, a)
		}
		b := newActivity(t, s, 5)
		list, err := s.ListActivities(ctx)
		if err != nil {
			t.Fatalf("ListActivities: %v", err)
		}
		if len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
			t.Errorf("ListActivities = %+v, want activities %d and %d", list, a.ID, b.ID)
		}

		if _, err := s.GetActivity(ctx, a.ID+1000); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetActivity(missing) = %v, want ErrNotFound", err)
		}
		if _, err := s.GetOrder(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetOrder(missing) = %v, want ErrNotFound", err)
		}

		deadline := time.Now().UTC().Add(time.Minute).Truncate(time.Microsecond)
		orders := []Order{
			{ID: "o1", ActivityID: a.ID, UserID: "u1", State: StateCreated, PriceCents: 100, PayDeadline: deadline},
			{ID: "o2", ActivityID: a.ID, UserID: "u2", State: StatePaid, PriceCents: 100, PayDeadline: deadline},
			{ID: "o3", ActivityID: a.ID, UserID: "u3", State: StateCancelled, PriceCents: 100, PayDeadline: deadline},
			{ID: "o4", ActivityID: a.ID, UserID: "u4", State: StateCreated, PriceCents: 100, PayDeadline: deadline},
			{ID: "o5", ActivityID: b.ID, UserID: "u1", State: StateCreated, PriceCents: 100, PayDeadline: deadline},
		}
		if err := db.Create(&orders).Error; err != nil {
			t.Fatal(err)
		}
		o, err := s.GetOrder(ctx, "o2")
		if err != nil {
			t.Fatalf("GetOrder: %v", err)
		}
		if o.UserID != "u2" || o.State != StatePaid || !o.PayDeadline.Equal(deadline) {
			t.Errorf("GetOrder = %+v", o)
		}

		snaps := []struct {
			activity                 int64
			created, paid, cancelled int64
		}{
			{a.ID, 2, 1, 1},
			{b.ID, 1, 0, 0},
		}
		for _, c := range snaps {
			got, err := s.Snapshot(ctx, c.activity)
			if err != nil {
				t.Fatalf("Snapshot(%d): %v", c.activity, err)
			}
			if got.Activity.ID != c.activity || got.Created != c.created || got.Paid != c.paid || got.Cancelled != c.cancelled {
				t.Errorf("Snapshot(%d) = %+v, want created %d paid %d cancelled %d", c.activity, got, c.created, c.paid, c.cancelled)
			}
		}
		if _, err := s.Snapshot(ctx, b.ID+1000); !errors.Is(err, ErrNotFound) {
			t.Errorf("Snapshot of a missing activity = %v, want ErrNotFound", err)
		}

		active, err := s.ActiveOrders(ctx, a.ID)
		if err != nil {
			t.Fatalf("ActiveOrders: %v", err)
		}
		var ids []string
		for _, o := range active {
			ids = append(ids, o.ID)
		}
		if want := []string{"o1", "o2", "o4"}; !slices.Equal(ids, want) {
			t.Errorf("ActiveOrders = %v, want %v", ids, want)
		}
	})
}

func TestCreateActivityValidation(t *testing.T) {
	s := NewStore(backends()[0].open(t))
	start := time.Now()
	valid := Activity{Name: "x", Stock: 1, PriceCents: 1, StartsAt: start, EndsAt: start.Add(time.Hour), PayTimeoutSeconds: 60}
	tests := []struct {
		name   string
		modify func(a *Activity)
	}{
		{"empty name", func(a *Activity) { a.Name = "" }},
		{"negative stock", func(a *Activity) { a.Stock = -1 }},
		{"negative price", func(a *Activity) { a.PriceCents = -1 }},
		{"no pay timeout", func(a *Activity) { a.PayTimeoutSeconds = 0 }},
		{"ends before start", func(a *Activity) { a.EndsAt = a.StartsAt.Add(-time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := valid
			tt.modify(&a)
			if err := s.CreateActivity(context.Background(), &a); !errors.Is(err, ErrInvalidActivity) {
				t.Errorf("CreateActivity = %v, want ErrInvalidActivity", err)
			}
		})
	}
	list, err := s.ListActivities(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Errorf("invalid activities were stored: %+v", list)
	}
}

// Holdings reads the activity, its live orders and the states of the
// orders asked about; a missing activity is ErrNotFound.
func TestStoreHoldings(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		s := NewStore(db)
		a := newActivity(t, s, 10)
		other := newActivity(t, s, 10)
		storeOrder(t, s, a, "created", "u1", StateCreated)
		storeOrder(t, s, a, "paid", "u2", StatePaid)
		storeOrder(t, s, a, "cancelled", "u3", StateCancelled)
		storeOrder(t, s, other, "elsewhere", "u1", StateCreated)

		h, err := s.Holdings(ctx, a.ID, []string{"cancelled", "created", "queued"})
		if err != nil {
			t.Fatalf("Holdings: %v", err)
		}
		if h.Activity.ID != a.ID || h.Activity.Available != 8 || h.Activity.Stock != 10 {
			t.Errorf("activity = %+v; want activity %d with 8 of 10 available", h.Activity, a.ID)
		}
		var live []string
		for _, o := range h.Live {
			live = append(live, o.ID)
		}
		if !slices.Equal(live, []string{"created", "paid"}) {
			t.Errorf("live orders = %v; want created and paid, by id", live)
		}
		if len(h.States) != 2 || h.States["cancelled"] != StateCancelled || h.States["created"] != StateCreated {
			t.Errorf("states = %v; want the two stored of the three asked", h.States)
		}
		if _, err := s.Holdings(ctx, other.ID+1000, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("Holdings(missing) = %v; want ErrNotFound", err)
		}
	})
}
