package sale

// The waiting room (admission "queue"): people join before the start, or
// when they arrive after it; the pre-queue's order is drawn by a keyed hash
// at the start, later arrivals queue behind it; the inlet admits them in
// order at the pace the sale can serve, each with a short pass (a buy
// token of its own kind) to buy with. State lives in Redis (inventory's
// waiting room scripts), shared by every gateway; this file is what one
// gateway adds: answers from memory where they cannot be stale in a way
// that matters, and when to ask again.
//
// What each answer costs Redis: a join is one script call; a poll is
// answered from memory while the caller's place is behind the inlet's head
// (read at most every inletTTL per gateway), while the sold-out flag
// holds, or while the caller asks before its poll_after; only a place the
// head has reached (admitted, or about to be) is read from Redis, once.
// So Redis sees about one call per join, one per admission and one per
// inletTTL per gateway, not one per poll.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/order"
)

// Queue is the Redis side of the waiting room (inventory.Store).
type Queue interface {
	SetupQueue(ctx context.Context, activityID int64, q inventory.QueueSettings) (bool, error)
	JoinQueue(ctx context.Context, activityID int64, user string, now time.Time) (inventory.QueuePlace, error)
	QueueState(ctx context.Context, activityID int64, user string, now time.Time) (inventory.QueuePlace, error)
	QueueInlet(ctx context.Context, activityID int64, now time.Time) (inventory.QueueInlet, error)
	ResolveQueue(ctx context.Context, activityID int64, user string, bought bool, now time.Time) (bool, error)
	QueueMembers(ctx context.Context, activityID int64) ([]inventory.QueueMember, string, error)
}

// Defaults of the waiting room's settings (Config).
const (
	DefaultQueuePrequeue   = 60 * time.Second
	DefaultQueuePass       = 30 * time.Second
	DefaultQueuePollBudget = 20000
	// minPoll is the shortest poll_after: the head of the queue asks
	// twice a second.
	minPoll = 500 * time.Millisecond
	// inletTTL is how old the inlet one gateway answers from may be.
	inletTTL = 100 * time.Millisecond
	// soldOutPoll is when to ask again after a sold-out answer: units
	// may come back (a cancelled order), and the next people are admitted.
	soldOutPoll = 5 * time.Second
	// finalPoll is when to ask again after a final answer (bought,
	// expired): never needed; a page that asks anyway is not a load.
	finalPoll = time.Minute
)

// Queue states as the API shows them.
const (
	QueuePrequeue = "prequeue"
	QueueWaiting  = "waiting"
	QueueAdmitted = "admitted"
	QueueSoldOut  = "sold_out"
	QueueExpired  = "expired"
	// QueueBought is an admitted person's place once they bought: their
	// pass is spent.
	QueueBought = "bought"
)

// QueueView is a person's place as the API shows it.
type QueueView struct {
	State string
	// Position (1 first) and Ahead are the place once the order is drawn
	// (from the start); Waiting is how many wait in the pre-queue.
	Position, Ahead, Waiting int64
	// EstimatedWait is the expected time until admission; 0 when unknown.
	EstimatedWait time.Duration
	// PollAfter is when to ask again: sooner is answered from memory.
	PollAfter time.Duration
	// BuyToken and ExpiresAt are the pass of an admitted place.
	BuyToken  string
	ExpiresAt time.Time
}

// room is one activity's waiting room as this gateway knows it.
type room struct {
	ends    time.Time // the activity's end: the room is dropped an hour after
	mu      sync.Mutex
	inlet   inventory.QueueInlet
	fetched time.Time
	// headAt samples the head over time, for the admission pace.
	headAt []headSample
	places map[string]*place
	loads  singleflight.Group
}

type headSample struct {
	at   time.Time
	head int64
}

// place is what this gateway last answered one person.
type place struct {
	status inventory.QueueStatus
	rank   int64 // from the start; -1 unknown
	epoch  int64 // the set-up the place was learned in (a queue lost with Redis and set up again has another)
	view   QueueView
	next   time.Time // no new answer before this
}

// rooms are the waiting rooms this gateway serves.
type rooms struct {
	mu sync.Mutex
	m  map[int64]*room
}

func (r *rooms) get(a *order.Activity) *room {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[int64]*room{}
	}
	rm := r.m[a.ID]
	if rm == nil {
		rm = &room{ends: a.EndsAt, places: map[string]*place{}}
		r.m[a.ID] = rm
	}
	return rm
}

// sweep drops the rooms of activities that ended an hour ago: what a
// gateway remembers of a queue (a place per person) is freed once nobody
// asks any more.
func (r *rooms) sweep(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, rm := range r.m {
		if now.Sub(rm.ends) > time.Hour {
			delete(r.m, id)
		}
	}
}

// errOpenAdmission answers a queue route of an activity without one.
func errOpenAdmission(id int64) *Error {
	return conflict(CodeOpenAdmission, fmt.Sprintf("activity %d has open admission: buy with GET /api/v1/activities/%d/buy-token and POST /api/v1/activities/%d/orders, there is no queue", id, id, id))
}

// queueActivity is activity id, which must admit through a waiting room.
func (s *Service) queueActivity(ctx context.Context, id int64) (*order.Activity, error) {
	a, err := s.activity(ctx, id)
	if err != nil {
		return nil, err
	}
	if a.Admission != order.AdmissionQueue {
		return nil, errOpenAdmission(a.ID)
	}
	if s.deps.Queue == nil {
		return nil, internal(errors.New("a queue activity without a waiting room backend"))
	}
	return a, nil
}

// JoinQueue puts user in activity id's waiting room (once: joining again
// answers the place taken first) and answers the place.
func (s *Service) JoinQueue(ctx context.Context, id int64, user string) (QueueView, error) {
	a, err := s.queueActivity(ctx, id)
	if err != nil {
		return QueueView{}, err
	}
	now := s.now()
	if !now.Before(a.EndsAt) {
		return QueueView{}, &Error{Kind: KindEnded, Message: "the sale ended at " + a.EndsAt.UTC().Format(time.RFC3339)}
	}
	s.metrics.queuePolls.WithLabelValues("join").Inc()
	p, err := s.queueCall(ctx, a, func(ctx context.Context) (inventory.QueuePlace, error) {
		return s.deps.Queue.JoinQueue(ctx, a.ID, user, now)
	})
	if err != nil {
		return QueueView{}, err
	}
	if p.Status == inventory.QueueTooEarly {
		return QueueView{}, &Error{Kind: KindNotStarted,
			Message: "the waiting room opens at " + p.OpensAt.UTC().Format(time.RFC3339) + ", before the sale starts at " + a.StartsAt.UTC().Format(time.RFC3339)}
	}
	return s.answer(a, user, p, now), nil
}

// QueueStatus answers user's place in activity id's waiting room: from
// memory when that cannot mislead (see the file's comment), else from Redis.
func (s *Service) QueueStatus(ctx context.Context, id int64, user string) (QueueView, error) {
	a, err := s.queueActivity(ctx, id)
	if err != nil {
		return QueueView{}, err
	}
	now := s.now()
	rm := s.rooms.get(a)
	rm.mu.Lock()
	pl := rm.places[user]
	var cached *QueueView
	switch {
	case pl == nil:
	case now.Before(pl.next):
		// Asked before poll_after: the same answer, no edge.
		v := pl.view
		v.PollAfter = pl.next.Sub(now)
		cached = &v
	case pl.status == inventory.QueueBought || pl.status == inventory.QueueExpired:
		v := pl.view // final
		cached = &v
	}
	rm.mu.Unlock()
	if cached != nil {
		s.metrics.queuePolls.WithLabelValues("memory").Inc()
		return *cached, nil
	}
	if pl != nil && !now.Before(a.StartsAt) && pl.status != inventory.QueueAdmitted {
		if s.soldOut.isSet(a.ID, now) {
			s.metrics.queuePolls.WithLabelValues("memory").Inc()
			return s.answer(a, user, inventory.QueuePlace{Status: inventory.QueueSoldOut, Rank: pl.rank, Epoch: pl.epoch}, now), nil
		}
		if pl.rank >= 0 {
			gen := s.soldOut.generation(a.ID)
			in, err := s.inlet(ctx, a, rm, now)
			// A place from another set-up (the queue was lost with
			// Redis) is void: Redis says where the caller stands.
			same := err == nil && in.Epoch == pl.epoch
			if same && in.SoldOut {
				// Nothing left and nothing pending: everyone waiting hears
				// it from memory until a unit comes back (a release clears
				// the flag).
				s.soldOut.setSince(a.ID, now, gen)
				s.metrics.queuePolls.WithLabelValues("memory").Inc()
				return s.answer(a, user, inventory.QueuePlace{Status: inventory.QueueSoldOut, Rank: pl.rank, Epoch: pl.epoch}, now), nil
			}
			if same && pl.rank >= in.Head {
				s.metrics.queuePolls.WithLabelValues("memory").Inc()
				return s.answer(a, user, inventory.QueuePlace{Status: inventory.QueueWaiting, Rank: pl.rank,
					Head: in.Head, Total: in.Total, Active: in.Active, Epoch: pl.epoch}, now), nil
			}
		}
	}
	s.metrics.queuePolls.WithLabelValues("redis").Inc()
	p, err := s.queueCall(ctx, a, func(ctx context.Context) (inventory.QueuePlace, error) {
		return s.deps.Queue.QueueState(ctx, a.ID, user, now)
	})
	if err != nil {
		return QueueView{}, err
	}
	if p.Status == inventory.QueueNotJoined {
		rm.mu.Lock()
		delete(rm.places, user)
		rm.mu.Unlock()
		return QueueView{}, notFoundf("user %s is not in the waiting room of activity %d: join with POST /api/v1/activities/%d/queue", user, a.ID, a.ID)
	}
	if p.Status == inventory.QueueSoldOut {
		s.soldOut.setSince(a.ID, now, s.soldOut.generation(a.ID))
	}
	return s.answer(a, user, p, now), nil
}

// queueCall runs call on the waiting room of a, setting it up first when
// Redis has none (never set up, or lost with Redis: then the queue starts
// afresh and people re-join; passes already given stay valid, and the
// reserve still decides every unit, so nothing can be oversold).
func (s *Service) queueCall(ctx context.Context, a *order.Activity, call func(context.Context) (inventory.QueuePlace, error)) (inventory.QueuePlace, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RedisTimeout)
	defer cancel()
	p, err := call(rctx)
	if errors.Is(err, inventory.ErrQueueNotConfigured) {
		if err = s.setupQueue(rctx, a); err == nil {
			p, err = call(rctx)
		}
	}
	if errors.Is(err, inventory.ErrNotLoaded) || err == nil && p.Status == 0 {
		err = errors.Join(err, errors.New("activity stock not loaded"))
	}
	if err != nil {
		return inventory.QueuePlace{}, busy("the waiting room is unavailable; try again", fmt.Errorf("waiting room of activity %d: %w", a.ID, err))
	}
	return p, nil
}

// setupQueue makes a's waiting room in Redis with this gateway's settings
// (every gateway of a deployment has the same; the first set-up wins).
func (s *Service) setupQueue(ctx context.Context, a *order.Activity) error {
	if _, found, err := s.deps.Inventory.Remaining(ctx, a.ID); err == nil && !found {
		// The stock first: the inlet admits by the units left.
		if err := s.deps.Restorer.Restore(ctx, a); err != nil {
			return err
		}
	}
	_, err := s.deps.Queue.SetupQueue(ctx, a.ID, inventory.QueueSettings{
		StartsAt: a.StartsAt, Prequeue: s.cfg.QueuePrequeue, Rate: s.cfg.QueueRate,
		Active: s.cfg.QueueActive, Pass: s.cfg.QueuePass,
	})
	return err
}

// inlet is a's inlet as of at most inletTTL ago, read once for every
// request waiting on it.
func (s *Service) inlet(ctx context.Context, a *order.Activity, rm *room, now time.Time) (inventory.QueueInlet, error) {
	rm.mu.Lock()
	in, fresh := rm.inlet, now.Sub(rm.fetched) < inletTTL && !rm.fetched.IsZero()
	rm.mu.Unlock()
	if fresh {
		return in, nil
	}
	v, err, _ := rm.loads.Do("inlet", func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RedisTimeout)
		defer cancel()
		in, err := s.deps.Queue.QueueInlet(rctx, a.ID, now)
		if err != nil {
			return nil, err
		}
		rm.mu.Lock()
		if in.Epoch != rm.inlet.Epoch {
			rm.headAt = nil // the pace of a queue that is gone
		}
		rm.inlet, rm.fetched = in, now
		rm.headAt = append(rm.headAt, headSample{now, in.Head})
		if len(rm.headAt) > 64 {
			rm.headAt = rm.headAt[len(rm.headAt)-64:]
		}
		rm.mu.Unlock()
		s.metrics.observeInlet(a.ID, in)
		return in, nil
	})
	if err != nil {
		return inventory.QueueInlet{}, err
	}
	return v.(inventory.QueueInlet), nil
}

// answer turns a place into the API's view, with when to ask again, and
// remembers it for user.
func (s *Service) answer(a *order.Activity, user string, p inventory.QueuePlace, now time.Time) QueueView {
	rm := s.rooms.get(a)
	v := QueueView{Position: p.Rank + 1}
	switch p.Status {
	case inventory.QueuePrequeue:
		v.State, v.Position, v.Waiting = QueuePrequeue, 0, p.Waiting
		// Everyone asks again just after the start, spread over the time
		// the polling budget needs for the whole pre-queue.
		spread := time.Duration(float64(p.Waiting) / s.cfg.QueuePollBudget * float64(time.Second))
		v.PollAfter = max(a.StartsAt.Sub(now), 0) + jitter(user, max(spread, minPoll))
	case inventory.QueueWaiting:
		v.State, v.Ahead = QueueWaiting, max(p.Rank-p.Head, 0)
		waiting := max(p.Total-p.Head, 1)
		v.PollAfter = pollInterval(v.Ahead, waiting, s.cfg.QueuePollBudget)
		if pace := rm.pace(); pace > 0 {
			v.EstimatedWait = time.Duration(float64(v.Ahead+1) / pace * float64(time.Second))
		}
	case inventory.QueueAdmitted:
		v.State, v.ExpiresAt = QueueAdmitted, p.PassExpires.UTC()
		tok, exp, err := s.deps.Passes.IssueUntil(user, a.ID, p.PassExpires)
		if err == nil {
			v.BuyToken, v.ExpiresAt = tok, exp.UTC()
		}
		v.PollAfter = max(time.Until(p.PassExpires), minPoll)
	case inventory.QueueBought:
		v.State, v.PollAfter = QueueBought, finalPoll
	case inventory.QueueExpired:
		v.State, v.PollAfter = QueueExpired, finalPoll
	case inventory.QueueSoldOut:
		// Spread over [T, 2T): the whole queue hears sold out within a
		// moment, and must not come back in one. T is soldOutPoll, or
		// longer when the people told sold out would ask faster than the
		// polling budget: at 100,000 of them and 20,000/s, 5 s.
		t := max(soldOutPoll, rm.soldOutSpan(s.cfg.QueuePollBudget))
		v.State, v.PollAfter = QueueSoldOut, t+jitter(user, t)
	}
	if p.Status == inventory.QueuePrequeue || p.Status == 0 {
		p.Rank = -1
	}
	next := now.Add(min(v.PollAfter, soldOutPoll))
	if p.Status == inventory.QueuePrequeue && next.After(a.StartsAt) {
		next = a.StartsAt // the draw happens at the start: a pre-queue answer is stale from then
	}
	rm.mu.Lock()
	rm.places[user] = &place{status: p.Status, rank: p.Rank, epoch: p.Epoch, view: v, next: next}
	rm.mu.Unlock()
	return v
}

// soldOutSpan is how long the people not admitted (those told sold out,
// as this gateway last read the inlet) take to ask once each within
// budget requests/s; 0 without a budget.
func (rm *room) soldOutSpan(budget float64) time.Duration {
	if budget <= 0 {
		return 0
	}
	rm.mu.Lock()
	w := max(rm.inlet.Total-rm.inlet.Head, 0)
	rm.mu.Unlock()
	return time.Duration(float64(w) / budget * float64(time.Second))
}

// pace is the admissions per second over the recent inlet samples; 0 when
// unknown.
func (rm *room) pace() float64 {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if len(rm.headAt) < 2 {
		return 0
	}
	first, last := rm.headAt[0], rm.headAt[len(rm.headAt)-1]
	dt := last.at.Sub(first.at).Seconds()
	if dt <= 0 || last.head <= first.head {
		return 0
	}
	return float64(last.head-first.head) / dt
}

// pollInterval is when a place ahead places behind the head, among
// waiting people, asks again: minPoll near the head, growing linearly with
// the distance to T at half the queue and beyond, with T the shortest that
// keeps the whole queue's polling under budget requests/s: with
// interval(a) = clamp(2Ta/W, minPoll, T) the queue asks about
// (W/2T)(2 + ln(T/minPoll)) times a second.
func pollInterval(ahead, waiting int64, budget float64) time.Duration {
	w := float64(waiting)
	rate := func(t float64) float64 { return w / (2 * t) * (2 + math.Log(t/minPoll.Seconds())) }
	lo, hi := minPoll.Seconds(), 3600.0
	if rate(lo) > budget {
		for range 60 {
			mid := (lo + hi) / 2
			if rate(mid) > budget {
				lo = mid
			} else {
				hi = mid
			}
		}
		lo = hi
	}
	t := lo
	iv := min(max(2*t*float64(ahead)/w, minPoll.Seconds()), t)
	return time.Duration(iv * float64(time.Second))
}

// jitter spreads user's next poll over [0, spread), the same for the same
// user (a retry is no edge).
func jitter(user string, spread time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(user))
	return time.Duration(h.Sum64() % uint64(max(spread, time.Millisecond)))
}

// resolveQueue tells the waiting room that user's buy was answered, so
// their place frees its share of the inlet now rather than when the pass
// lapses (which resolves it all the same if this is lost).
func (s *Service) resolveQueue(ctx context.Context, a *order.Activity, user string, bought bool) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RedisTimeout)
	defer cancel()
	if _, err := s.deps.Queue.ResolveQueue(rctx, a.ID, user, bought, s.now()); err != nil {
		s.log.Warn("resolve a waiting-room place (it resolves when the pass lapses)", "activity_id", a.ID, "user_id", user, "err", err)
	}
	rm := s.rooms.get(a)
	rm.mu.Lock()
	delete(rm.places, user)
	rm.mu.Unlock()
}

// QueueAudit is an activity's waiting room for an audit: every place in
// order with its state, and the secret that replays the pre-queue's draw
// (inventory.PrequeueKey). It reads Redis in full: for after the sale.
func (s *Service) QueueAudit(ctx context.Context, id int64) ([]inventory.QueueMember, string, error) {
	a, err := s.queueActivity(ctx, id)
	if err != nil {
		return nil, "", err
	}
	m, secret, err := s.deps.Queue.QueueMembers(ctx, a.ID)
	if err != nil {
		return nil, "", busy("could not read the waiting room", err)
	}
	return m, secret, nil
}

// QueueInlet reads activity id's inlet as it is now (the dashboard's
// sampler): it moves it too, as any caller does.
func (s *Service) QueueInlet(ctx context.Context, id int64) (inventory.QueueInlet, error) {
	a, err := s.queueActivity(ctx, id)
	if err != nil {
		return inventory.QueueInlet{}, err
	}
	in, err := s.deps.Queue.QueueInlet(ctx, a.ID, s.now())
	if errors.Is(err, inventory.ErrQueueNotConfigured) {
		return inventory.QueueInlet{}, nil // nobody joined since it was lost, or yet
	}
	if err == nil {
		s.metrics.observeInlet(a.ID, in)
	}
	return in, err
}
