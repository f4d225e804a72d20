package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Place is a person's place in a waiting room (POST and GET
// /api/v1/activities/{id}/queue).
type Place struct {
	State          string     `json:"state"` // prequeue, waiting, admitted, bought, sold_out, expired
	Position       int64      `json:"position"`
	Ahead          int64      `json:"ahead"`
	Waiting        int64      `json:"waiting"`
	EstimatedWaitS *float64   `json:"estimated_wait_s"`
	PollAfterMS    int64      `json:"poll_after_ms"`
	BuyToken       string     `json:"buy_token"`
	ExpiresAt      *time.Time `json:"expires_at"`
}

// PollAfter is when to ask again.
func (p Place) PollAfter() time.Duration { return time.Duration(p.PollAfterMS) * time.Millisecond }

// JoinQueue is POST /api/v1/activities/{id}/queue as user (token): join
// the waiting room, idempotent per user.
func (c *Client) JoinQueue(ctx context.Context, activityID, token string) (Place, Answer) {
	return c.place(c.Do(ctx, http.MethodPost, "/api/v1/activities/"+activityID+"/queue", token, nil))
}

// QueuePlace is GET /api/v1/activities/{id}/queue as user: their place.
func (c *Client) QueuePlace(ctx context.Context, activityID, token string) (Place, Answer) {
	return c.place(c.Do(ctx, http.MethodGet, "/api/v1/activities/"+activityID+"/queue", token, nil))
}

func (c *Client) place(a Answer) (Place, Answer) {
	var p Place
	if a.Status == http.StatusOK {
		if err := json.Unmarshal(a.Body, &p); err != nil {
			a.Err = fmt.Errorf("decode a waiting-room place: %w", err)
		}
	}
	return p, a
}

// QueueMember is one place of a waiting room as the admin audit route
// lists it.
type QueueMember struct {
	User  string `json:"user_id"`
	Rank  int64  `json:"rank"`
	State string `json:"state"`
	Key   string `json:"key"`
}

// QueueAudit is GET /api/v1/admin/activities/{id}/queue: every place in
// rank order, and the secret that replays the pre-queue's draw.
func (c *Client) QueueAudit(ctx context.Context, activityID string) ([]QueueMember, string, error) {
	a := c.Do(ctx, http.MethodGet, "/api/v1/admin/activities/"+activityID+"/queue", c.admin, nil)
	if a.Status != http.StatusOK {
		return nil, "", fmt.Errorf("waiting room of activity %s: %s", activityID, a.describe())
	}
	var out struct {
		Secret  string        `json:"secret"`
		Members []QueueMember `json:"members"`
	}
	if err := json.Unmarshal(a.Body, &out); err != nil {
		return nil, "", fmt.Errorf("waiting room of activity %s: decode: %w", activityID, err)
	}
	return out.Members, out.Secret, nil
}
