package httpapi

import (
	"context"
	"errors"
	"fmt"
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
	topic, err := s.deadLetterTopic(c.Param("topic"))
	if err != nil {
		s.respond(c, err)
		return
	}
	limit, err := parseLimit(c.Query("limit"))
	if err != nil {
		s.respond(c, err)
		return
	}
	msgs, total, err := s.deadLetters(c.Request.Context(), topic, limit)
	if err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"topic": topic, "count": total, "messages": msgs})
}

// parseLimit reads ?limit=, defaultDeadLetterLimit when absent.
func parseLimit(v string) (int, error) {
	if v == "" {
		return defaultDeadLetterLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 10_000 {
		return 0, errValidation("limit: want a whole number from 1 to 10000, got " + strconv.Quote(v))
	}
	return n, nil
}

// deadLetters lists up to limit dead letters of topic, and how many it holds.
func (s *Server) deadLetters(ctx context.Context, topic string, limit int) ([]DeadLetter, int, error) {
	msgs, total, err := s.deps.DeadLetters.List(ctx, topic, limit)
	if err != nil {
		return nil, 0, errUnavailable("the queue could not be read; see the process log", fmt.Errorf("list dead letters of %s: %w", topic, err))
	}
	if msgs == nil {
		msgs = []DeadLetter{} // a JSON list, never null
	}
	return msgs, total, nil
}

// replayDeadLetters: POST /api/v1/admin/dead-letters/:topic/replay with
// {"seqs":[...]} or {"all":true}.
func (s *Server) replayDeadLetters(c *gin.Context) {
	var req struct {
		Seqs []uint64 `json:"seqs"`
		All  bool     `json:"all"`
	}
	topic, err := s.deadLetterTopic(c.Param("topic"))
	if err != nil {
		s.respond(c, err)
		return
	}
	if err := decodeJSON(c.Request.Body, &req, false); err != nil {
		s.respond(c, err)
		return
	}
	if req.All == (len(req.Seqs) > 0) {
		s.respond(c, errValidation(`want either "seqs" (a non-empty list of sequence numbers) or "all": true`))
		return
	}
	n, err := s.replay(c.Request.Context(), topic, req.Seqs)
	if err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"topic": topic, "replayed": n})
}

// replay replays the dead letters seqs (all when empty) of topic.
func (s *Server) replay(ctx context.Context, topic string, seqs []uint64) (int, error) {
	n, err := s.deps.DeadLetters.Replay(ctx, topic, seqs)
	if err != nil && !errors.Is(err, context.Canceled) {
		return n, errUnavailable("replay stopped after "+strconv.Itoa(n)+" messages; see the process log",
			fmt.Errorf("replay dead letters of %s (%d replayed): %w", topic, n, err))
	}
	s.log.Warn("dead letters replayed by an operator", "topic", topic, "replayed", n)
	return n, nil
}

// discardDeadLetters: POST /api/v1/admin/dead-letters/:topic/discard with
// {"seqs":[...]}: the operator settled them another way (a refund, a manual
// order); they are deleted for good, so nothing but a list is accepted.
func (s *Server) discardDeadLetters(c *gin.Context) {
	var req struct {
		Seqs []uint64 `json:"seqs"`
	}
	topic, err := s.deadLetterTopic(c.Param("topic"))
	if err != nil {
		s.respond(c, err)
		return
	}
	if err := decodeJSON(c.Request.Body, &req, false); err != nil {
		s.respond(c, err)
		return
	}
	if len(req.Seqs) == 0 {
		s.respond(c, errValidation(`seqs: want a non-empty list of the sequence numbers to delete`))
		return
	}
	if err := s.discard(c.Request.Context(), topic, req.Seqs); err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"topic": topic, "discarded": len(req.Seqs)})
}

// discard deletes the dead letters seqs of topic for good.
func (s *Server) discard(ctx context.Context, topic string, seqs []uint64) error {
	if err := s.deps.DeadLetters.Discard(ctx, topic, seqs); err != nil {
		return errUnavailable("the dead letters could not be deleted; see the process log",
			fmt.Errorf("discard dead letters %v of %s: %w", seqs, topic, err))
	}
	s.log.Warn("dead letters discarded by an operator", "topic", topic, "seqs", seqs)
	return nil
}

// deadLetterTopic checks the :topic of a dead-letter route.
func (s *Server) deadLetterTopic(topic string) (string, error) {
	if s.deps.DeadLetters == nil {
		return "", errNotImplemented("dead letters can be read here only on the NATS queue (SECKILL_MQ=embedded or nats); on Kafka read the <topic>.dlq topics with Kafka's tools")
	}
	if !slices.Contains(s.deps.DeadLetters.Topics(), topic) {
		return "", errNotFound("no dead-letter topic for %q; known topics: %s", topic, joinQuoted(s.deps.DeadLetters.Topics()))
	}
	return topic, nil
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
