package sale

import (
	"context"
	"time"
)

// demoTokenTTL is long enough for a demo session and a load test.
const demoTokenTTL = 24 * time.Hour

// DemoLogin issues a user token for userID, who is whoever the caller
// says: demo mode only (the port refuses it otherwise). It records a
// made-up contact for the user, so the notifier has somewhere to write.
func (s *Service) DemoLogin(ctx context.Context, userID string) (string, error) {
	tok, err := s.deps.Tokens.Issue(userID, demoTokenTTL)
	if err != nil {
		return "", invalidf("user_id: %s", err.Error()) // says which ids are valid
	}
	if s.deps.DemoContacts != nil {
		if err := s.deps.DemoContacts.RecordDemoContact(ctx, userID); err != nil {
			// The login still works; only this user's notifications
			// have nowhere to go.
			s.log.Warn("demo login: could not record the demo contact", "user_id", userID, "err", err)
		}
	}
	return tok, nil
}
