// Package contacts answers where a user's mail and SMS go. The notifier only
// needs Source; the Store here is a small table that the demo login fills,
// standing in for the user service a real shop already has. To use yours,
// implement Source (an HTTP or gRPC call to the user service, with its own
// cache) and pass it as notifier.Options.Contacts; the table then stays
// empty and unused.
package contacts

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Contact is how to reach one user. An empty Email or Phone means the user
// gets no mail or no SMS.
type Contact struct {
	UserID string
	Email  string
	Phone  string
}

// Source looks contacts up. Lookup reports found=false for an unknown user;
// an error means the source could not answer (the notifier retries the
// event later), never that the user is unknown.
type Source interface {
	Lookup(ctx context.Context, userID string) (c Contact, found bool, err error)
}

// row is a row of the contacts table.
type row struct {
	UserID    string `gorm:"primaryKey;size:64"`
	Email     string `gorm:"size:254;not null"`
	Phone     string `gorm:"size:32;not null"`
	UpdatedAt time.Time
}

func (row) TableName() string { return "contacts" }

// Store is the contacts table (created by package schema).
type Store struct {
	db *gorm.DB
}

var _ Source = (*Store)(nil)

// NewStore wraps db, which must have the notifier's migrations applied.
func NewStore(db *gorm.DB) *Store { return &Store{db: db} }

// Lookup reads the contact of userID.
func (s *Store) Lookup(ctx context.Context, userID string) (Contact, bool, error) {
	var r row
	err := s.db.WithContext(ctx).Where("user_id = ?", userID).Take(&r).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return Contact{}, false, nil
	case err != nil:
		return Contact{}, false, fmt.Errorf("contacts: look up user %q: %w", userID, err)
	}
	return Contact{UserID: r.UserID, Email: r.Email, Phone: r.Phone}, true, nil
}

// Upsert stores c, replacing the user's previous contact.
func (s *Store) Upsert(ctx context.Context, c Contact) error {
	if c.UserID == "" || len(c.UserID) > 64 {
		return fmt.Errorf("contacts: user id %q must be 1-64 characters", c.UserID)
	}
	r := row{UserID: c.UserID, Email: c.Email, Phone: c.Phone, UpdatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "user_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"email", "phone", "updated_at"}),
	}).Create(&r).Error
	if err != nil {
		return fmt.Errorf("contacts: store user %q: %w", c.UserID, err)
	}
	return nil
}

// DemoDomain is the mail domain of demo contacts (.local never resolves on
// the internet, so a misconfigured relay cannot deliver demo mail anywhere).
const DemoDomain = "demo.seckill.local"

// Demo returns the made-up contact of a demo user: <user>@demo.seckill.local
// and a phone number in the +1 555 range reserved for fiction, derived from
// the user id so every login gives the same one.
func Demo(userID string) Contact {
	local := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, userID)
	local = strings.Trim(local, ".")
	if local == "" {
		local = "user"
	}
	h := fnv.New32a()
	h.Write([]byte(userID))
	return Contact{
		UserID: userID,
		Email:  local + "@" + DemoDomain,
		Phone:  fmt.Sprintf("+1555%07d", h.Sum32()%10_000_000),
	}
}

// DemoRecorder fills demo contacts at login. It satisfies the gateway's
// optional demo-contact hook without the gateway knowing this package's
// types beyond the method.
type DemoRecorder struct {
	Store *Store
}

// RecordDemoContact stores Demo(userID).
func (d DemoRecorder) RecordDemoContact(ctx context.Context, userID string) error {
	return d.Store.Upsert(ctx, Demo(userID))
}
