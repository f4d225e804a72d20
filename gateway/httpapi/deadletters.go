package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// DeadLetter is one message that a consumer gave up on, as an operator
// sees it.
type DeadLetter struct {
	Seq      uint64            `json:"seq"`
	ID       string            `json:"id"`
	Key      string            `json:"key,omitempty"`
	Reason   string            `json:"reason"`
	Attempts string            `json:"attempts"`
	StoredAt time.Time         `json:"stored_at"`
	Headers  map[string]string `json:"headers,omitempty"`
	Payload  string            `json:"payload"`
}

// DeadLetters reads and replays a topic's dead-letter topic. The NATS
// queue (embedded or external) provides it; nil answers 501.
type DeadLetters interface {
	// Topics are the topics whose dead letters can be read.
	Topics() []string
	// List returns up to limit dead letters of topic, oldest first, and
	// how many the dead-letter topic holds.
	List(ctx context.Context, topic string, limit int) ([]DeadLetter, int, error)
	// Replay publishes the dead letters at seqs (all when seqs is empty)
	// back to topic as fresh messages and removes them from the dead-letter
	// topic. It returns how many it replayed.
	Replay(ctx context.Context, topic string, seqs []uint64) (int, error)
	// Discard deletes the dead letters at seqs of topic for good (an
	// operator settled them another way).
	Discard(ctx context.Context, topic string, seqs []uint64) error
}

const defaultDeadLetterLimit = 100

// listDeadLetters: GET /api/v1/admin/dead-letters/:topic?limit=N.
func (s *Server) listDeadLetters(c *gin.Context) {
	topic, ok := s.deadLetterTopic(c)
	if !ok {
		return
	}
	limit := defaultDeadLetterLimit
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10_000 {
			abort(c, http.StatusBadRequest, codeValidation, "limit: want a whole number from 1 to 10000, got "+strconv.Quote(v))
			return
		}
		limit = n
	}
	msgs, total, err := s.opts.DeadLetters.List(c.Request.Context(), topic, limit)
	if err != nil {
		s.log.Error("list dead letters", "topic", topic, "err", err)
		abort(c, http.StatusServiceUnavailable, codeUnavailable, "the queue could not be read; see the process log")
		return
	}
	if msgs == nil {
		msgs = []DeadLetter{}
	}
	c.JSON(http.StatusOK, gin.H{"topic": topic, "count": total, "messages": msgs})
}

// replayDeadLetters: POST /api/v1/admin/dead-letters/:topic/replay with
// {"seqs":[...]} or {"all":true}.
func (s *Server) replayDeadLetters(c *gin.Context) {
	topic, ok := s.deadLetterTopic(c)
	if !ok {
		return
	}
	var req struct {
		Seqs []uint64 `json:"seqs"`
		All  bool     `json:"all"`
	}
	if !decodeJSON(c, &req, false) {
		return
	}
	if req.All == (len(req.Seqs) > 0) {
		abort(c, http.StatusBadRequest, codeValidation, `want either "seqs" (a non-empty list of sequence numbers) or "all": true`)
		return
	}
	n, err := s.opts.DeadLetters.Replay(c.Request.Context(), topic, req.Seqs)
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Error("replay dead letters", "topic", topic, "replayed", n, "err", err)
		abort(c, http.StatusServiceUnavailable, codeUnavailable, "replay stopped after "+strconv.Itoa(n)+" messages; see the process log")
		return
	}
	s.log.Warn("dead letters replayed by an operator", "topic", topic, "replayed", n)
	c.JSON(http.StatusOK, gin.H{"topic": topic, "replayed": n})
}

// discardDeadLetters: POST /api/v1/admin/dead-letters/:topic/discard with
// {"seqs":[...]}: the operator settled them another way (a refund, a manual
// order); they are deleted for good, so nothing but a list is accepted.
func (s *Server) discardDeadLetters(c *gin.Context) {
	topic, ok := s.deadLetterTopic(c)
	if !ok {
		return
	}
	var req struct {
		Seqs []uint64 `json:"seqs"`
	}
	if !decodeJSON(c, &req, false) {
		return
	}
	if len(req.Seqs) == 0 {
		abort(c, http.StatusBadRequest, codeValidation, `seqs: want a non-empty list of the sequence numbers to delete`)
		return
	}
	if err := s.opts.DeadLetters.Discard(c.Request.Context(), topic, req.Seqs); err != nil {
		s.log.Error("discard dead letters", "topic", topic, "err", err)
		abort(c, http.StatusServiceUnavailable, codeUnavailable, "the dead letters could not be deleted; see the process log")
		return
	}
	s.log.Warn("dead letters discarded by an operator", "topic", topic, "seqs", req.Seqs)
	c.JSON(http.StatusOK, gin.H{"topic": topic, "discarded": len(req.Seqs)})
}

func (s *Server) deadLetterTopic(c *gin.Context) (string, bool) {
	if s.opts.DeadLetters == nil {
		abort(c, http.StatusNotImplemented, codeNotImplemented, "dead letters can be read here only on the NATS queue (SECKILL_MQ=embedded or nats); on Kafka read the <topic>.dlq topics with Kafka's tools")
		return "", false
	}
	topic := c.Param("topic")
	if !slices.Contains(s.opts.DeadLetters.Topics(), topic) {
		abort(c, http.StatusNotFound, codeNotFound, "no dead-letter topic for "+strconv.Quote(topic)+"; known topics: "+joinQuoted(s.opts.DeadLetters.Topics()))
		return "", false
	}
	return topic, true
}

func joinQuoted(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += strconv.Quote(s)
	}
	return out
}
