package inventory

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Node leases: every gateway takes a node number for its order ids at
// start (LeaseNode), so two gateways sharing a Redis never mint the same
// id, and keeps a liveness mark under it (RenewNode) while it runs. A
// pending reservation's order id carries the node that reserved it
// (orderid.Node): when that node's mark is gone, the gateway that was
// publishing it is dead, and any live gateway may settle it at once
// (PendingReservations) instead of waiting out the reservation timeout.

// maxNodes is the order-id layout's node space (orderid.MaxNode + 1).
const maxNodes = 1024

func (s *Store) nodeSeqKey() string { return s.prefix + ":node-seq" }
func (s *Store) nodeAliveKey(n int64) string {
	return s.prefix + ":node:" + strconv.FormatInt(n, 10) + ":alive"
}

// LeaseNode takes the next node number (a Redis counter, modulo 1024, so
// instances get distinct nodes unless one outlives 1023 later starts) and
// marks it alive for ttl.
func (s *Store) LeaseNode(ctx context.Context, ttl time.Duration) (int64, error) {
	n, err := s.rdb.Incr(ctx, s.nodeSeqKey()).Result()
	if err != nil {
		return 0, fmt.Errorf("%w: lease an order-id node number: %w", ErrUnavailable, err)
	}
	node := (n - 1) % maxNodes
	return node, s.RenewNode(ctx, node, ttl)
}

// RenewNode marks node alive for another ttl.
func (s *Store) RenewNode(ctx context.Context, node int64, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.nodeAliveKey(node), time.Now().UnixMilli(), ttl).Err(); err != nil {
		return fmt.Errorf("%w: renew node %d: %w", ErrUnavailable, node, err)
	}
	return nil
}

// DropNode removes node's liveness mark (a clean stop: its reservations
// are settled by the next pass anywhere).
func (s *Store) DropNode(ctx context.Context, node int64) error {
	if err := s.rdb.Del(ctx, s.nodeAliveKey(node)).Err(); err != nil {
		return fmt.Errorf("%w: drop node %d: %w", ErrUnavailable, node, err)
	}
	return nil
}

// NodesAlive reports, for each of nodes, whether its liveness mark is set.
func (s *Store) NodesAlive(ctx context.Context, nodes []int64) (map[int64]bool, error) {
	if len(nodes) == 0 {
		return map[int64]bool{}, nil
	}
	keys := make([]string, len(nodes))
	for i, n := range nodes {
		keys[i] = s.nodeAliveKey(n)
	}
	// One key per command: on a Redis Cluster the marks live in different
	// slots, and a pipeline still costs one round trip.
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Exists(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: read node liveness: %w", ErrUnavailable, err)
	}
	out := make(map[int64]bool, len(nodes))
	for i, n := range nodes {
		out[n] = cmds[i].Val() > 0
	}
	return out, nil
}

// PendingReservations returns up to limit of activity activityID's pending
// reservations (reserved, never confirmed as published), oldest first.
func (s *Store) PendingReservations(ctx context.Context, activityID int64, limit int) ([]Reservation, error) {
	k := s.keys(activityID)
	ids, err := s.rdb.ZRange(ctx, k.pending, 0, int64(limit)-1).Result()
	if err != nil {
		return nil, unavailable("pending", activityID, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	vals, err := s.rdb.HMGet(ctx, k.res, ids...).Result()
	if err != nil {
		return nil, unavailable("pending", activityID, err)
	}
	out := make([]Reservation, 0, len(ids))
	for i, v := range vals {
		enc, ok := v.(string)
		if !ok {
			continue // released between the two reads
		}
		r, err := decodeReservation(enc)
		if err != nil {
			return nil, unavailable("pending", activityID, fmt.Errorf("reservation %s: %w", ids[i], err))
		}
		if r.Status != StatusPending {
			continue // confirmed or claimed meanwhile
		}
		r.OrderID = ids[i]
		out = append(out, r)
	}
	return out, nil
}
