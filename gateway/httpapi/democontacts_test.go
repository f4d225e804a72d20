package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
)

// recordedContacts is a DemoContacts that remembers the users, or fails.
type recordedContacts struct {
	mu    sync.Mutex
	users []string
	err   error
}

func (r *recordedContacts) RecordDemoContact(_ context.Context, userID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.users = append(r.users, userID)
	return r.err
}

// A demo login records the user's demo contact; a failing contact store
// does not break the login (only the notifications lack an address); a
// refused login records nothing.
func TestDemoLoginRecordsTheDemoContact(t *testing.T) {
	tests := []struct {
		name     string
		user     string
		storeErr error
		status   int
		recorded []string
	}{
		{"recorded", "dora", nil, http.StatusOK, []string{"dora"}},
		{"store down, login still works", "eve", errors.New("database is away"), http.StatusOK, []string{"eve"}},
		{"invalid user, nothing recorded", "a b", nil, http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordedContacts{err: tt.storeErr}
			f := newFixture(t, fixtureOpts{tweak: func(o *options) { o.DemoContacts = rec }})
			r := f.call("POST", "/api/v1/auth/demo-token", "", jsonBody(map[string]string{"user_id": tt.user}))
			if r.status != tt.status {
				t.Fatalf("demo-token answered %d, want %d", r.status, tt.status)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.users) != len(tt.recorded) || (len(tt.recorded) == 1 && rec.users[0] != tt.recorded[0]) {
				t.Errorf("recorded %v, want %v", rec.users, tt.recorded)
			}
		})
	}
}
