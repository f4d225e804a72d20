package contacts_test

import (
	"regexp"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/flashsale/seckill/notifier/contacts"
	"github.com/flashsale/seckill/notifier/internal/dbtest"
)

func TestStoreUpsertAndLookup(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := contacts.NewStore(db)
		ctx := t.Context()
		if _, found, err := s.Lookup(ctx, "nobody"); err != nil || found {
			t.Fatalf("Lookup of an unknown user: found=%v err=%v", found, err)
		}
		if err := s.Upsert(ctx, contacts.Contact{UserID: "alice", Email: "a@example.com", Phone: "+15550001"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Upsert(ctx, contacts.Contact{UserID: "alice", Email: "alice@example.com"}); err != nil {
			t.Fatalf("second Upsert: %v", err)
		}
		c, found, err := s.Lookup(ctx, "alice")
		if err != nil || !found || c.Email != "alice@example.com" || c.Phone != "" {
			t.Fatalf("Lookup after the update: %+v found=%v err=%v", c, found, err)
		}
		for _, bad := range []string{"", strings.Repeat("x", 65)} {
			if err := s.Upsert(ctx, contacts.Contact{UserID: bad}); err == nil {
				t.Errorf("Upsert of user id %q succeeded", bad)
			}
		}
		if err := (contacts.DemoRecorder{Store: s}).RecordDemoContact(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		if c, _, _ := s.Lookup(ctx, "bob"); c != contacts.Demo("bob") {
			t.Fatalf("demo contact stored as %+v, want %+v", c, contacts.Demo("bob"))
		}
	})
}

// Demo contacts are stable per user, valid-looking, and never a real
// domain or a real number range.
func TestDemoContact(t *testing.T) {
	phone := regexp.MustCompile(`^\+1555\d{7}$`)
	local := regexp.MustCompile(`^[A-Za-z0-9._-]+@demo\.seckill\.local$`)
	for _, id := range []string{"alice", "user:42", "a@b", "...", "loadtest-user-000123"} {
		c := contacts.Demo(id)
		if c != contacts.Demo(id) {
			t.Errorf("Demo(%q) is not stable", id)
		}
		if !local.MatchString(c.Email) || strings.HasPrefix(c.Email, ".") {
			t.Errorf("Demo(%q).Email = %q", id, c.Email)
		}
		if !phone.MatchString(c.Phone) {
			t.Errorf("Demo(%q).Phone = %q", id, c.Phone)
		}
	}
	if contacts.Demo("alice").Phone == contacts.Demo("bob").Phone {
		t.Error("alice and bob share a demo phone number")
	}
}
