package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/flashsale/seckill/gateway/sale"
)

// queueJSON is a place in a waiting room as the API shows it.
type queueJSON struct {
	State string `json:"state"`
	// Position (1 first) and Ahead, once the order is drawn (from the
	// start); Waiting, how many wait in the pre-queue.
	Position       int64      `json:"position,omitempty"`
	Ahead          int64      `json:"ahead"`
	Waiting        int64      `json:"waiting,omitempty"`
	EstimatedWaitS *float64   `json:"estimated_wait_s"`
	PollAfterMS    int64      `json:"poll_after_ms"`
	BuyToken       string     `json:"buy_token,omitempty"`
	ExpiresAt      *time.Time `json:"expires_at,omitempty"`
}

func queueJSONOf(v sale.QueueView) queueJSON {
	j := queueJSON{State: v.State, Position: v.Position, Ahead: v.Ahead, Waiting: v.Waiting,
		PollAfterMS: v.PollAfter.Milliseconds(), BuyToken: v.BuyToken}
	if v.EstimatedWait > 0 {
		s := v.EstimatedWait.Round(100 * time.Millisecond).Seconds()
		j.EstimatedWaitS = &s
	}
	if v.BuyToken != "" {
		exp := v.ExpiresAt
		j.ExpiresAt = &exp
	}
	return j
}

// limitQueueUser bounds one user's waiting-room requests: an answer asked
// for before its poll_after is the same answer from memory, and past this
// limit it is 429.
func (s *Server) limitQueueUser(c *gin.Context) {
	if k := s.deps.Limits.QueuePerUser; k != nil {
		if ok, retry := k.Allow(c.GetString(keyUser)); !ok {
			s.metrics.rateLimited.WithLabelValues("queue_user").Inc()
			s.respond(c, errRateLimited("per-user waiting-room", retry))
			return
		}
	}
	c.Next()
}

// joinQueue is POST /api/v1/activities/:id/queue: join the waiting room,
// idempotent per user.
func (s *Server) joinQueue(c *gin.Context) {
	id, err := activityID(c)
	if err != nil {
		s.respond(c, err)
		return
	}
	v, err := s.sale.JoinQueue(c.Request.Context(), id, c.GetString(keyUser))
	if err != nil {
		s.respond(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, queueJSONOf(v))
}

// getQueue is GET /api/v1/activities/:id/queue: the caller's place.
func (s *Server) getQueue(c *gin.Context) {
	id, err := activityID(c)
	if err != nil {
		s.respond(c, err)
		return
	}
	v, err := s.sale.QueueStatus(c.Request.Context(), id, c.GetString(keyUser))
	if err != nil {
		s.respond(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, queueJSONOf(v))
}

// queueMemberJSON is one place of a waiting room as an audit reads it.
type queueMemberJSON struct {
	User  string `json:"user_id"`
	Rank  int64  `json:"rank"`
	State string `json:"state"`
	Key   string `json:"key"`
}

// queueAudit is GET /api/v1/admin/activities/:id/queue: every place in
// order with its state (W waiting, A:<admitted ms>:<pass expiry ms>,
// B:<ms> bought, X:<ms> pass lapsed, S:<ms> sold out) and the secret that
// replays the pre-queue's draw.
func (s *Server) queueAudit(c *gin.Context) {
	id, err := activityID(c)
	if err != nil {
		s.respond(c, err)
		return
	}
	members, secret, err := s.sale.QueueAudit(c.Request.Context(), id)
	if err != nil {
		s.respond(c, err)
		return
	}
	out := make([]queueMemberJSON, len(members))
	for i, m := range members {
		out[i] = queueMemberJSON{User: m.User, Rank: m.Rank, State: m.State, Key: strconv.FormatFloat(m.Key, 'f', 0, 64)}
	}
	c.JSON(http.StatusOK, gin.H{"secret": secret, "members": out})
}
