package inventory

import (
	"context"
	"strconv"
)

// releasesChannel is the pub/sub channel on which a Store announces that
// units of an activity went back on sale.
func (s *Store) releasesChannel() string { return s.prefix + ":released" }

// announce tells every subscribed gateway that activityID has units again,
// so each clears its local sold-out flag at once instead of answering 410
// for a unit that is back on sale (an undersell) until the flag expires.
// It is best effort: the flag's TTL bounds what a lost announcement costs,
// and failing the release that already happened would only make a caller
// retry a done step.
func (s *Store) announce(ctx context.Context, activityID int64) {
	_ = s.rdb.Publish(ctx, s.releasesChannel(), strconv.FormatInt(activityID, 10)).Err()
}

// SubscribeReleases calls fn with the activity id of every release
// announced by any Store on the same Redis and prefix (Release and
// ReapPending announce), until ctx is done. It returns once subscribed, so
// releases after it returns are seen. The subscription reconnects by
// itself after a Redis outage; announcements made meanwhile are lost, which
// the sold-out flag's TTL covers.
func (s *Store) SubscribeReleases(ctx context.Context, fn func(activityID int64)) error {
	ps := s.rdb.Subscribe(ctx, s.releasesChannel())
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return unavailable("subscribe to releases of", 0, err)
	}
	ch := ps.Channel()
	go func() {
		defer ps.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				if id, err := strconv.ParseInt(m.Payload, 10, 64); err == nil {
					fn(id)
				}
			}
		}
	}()
	return nil
}
