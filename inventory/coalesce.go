package inventory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Coalesced Redis calls. During a spike every buy of one activity makes a
// reserve script call and, after the publish, a confirm script call, each
// its own round trip (and, on the embedded miniredis, its own freshly built
// Lua interpreter). The Coalescer groups the concurrent ones per activity:
// one script call decides a whole batch of reserves, one a whole batch of
// confirms, and every caller gets the answer its own call would have given,
// because the batch scripts run the single scripts' own code for each
// request (newScripts, scripts.go) and their answers are read by the same
// Go code (reserveResult, reply.flag).

// Defaults of CoalesceConfig.
const (
	// DefaultCoalesceMaxBatch is how many requests one script call serves
	// at most. A script blocks its Redis (or Cluster master) while it runs;
	// 64 reserves take well under a millisecond.
	DefaultCoalesceMaxBatch = 64
	// DefaultCoalesceMaxWait is how long the first request of a batch
	// waits for others to join it.
	DefaultCoalesceMaxWait = 200 * time.Microsecond
)

// CoalesceConfig bounds the batches of a Coalescer. The zero value means
// the defaults.
type CoalesceConfig struct {
	// MaxBatch is the most requests one script call serves; a batch that
	// reaches it is sent at once. 1 disables coalescing: every call goes
	// straight to the Store. 0 means DefaultCoalesceMaxBatch.
	MaxBatch int
	// MaxWait is the longest the first request of a batch waits for more
	// requests before the batch is sent. 0 means DefaultCoalesceMaxWait.
	// (Go's timers may fire up to about a millisecond late on an otherwise
	// idle process; under load, when batches matter, they are close.)
	MaxWait time.Duration
}

func (c CoalesceConfig) withDefaults() CoalesceConfig {
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultCoalesceMaxBatch
	}
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultCoalesceMaxWait
	}
	return c
}

// Coalescer is a Store whose Reserve and Confirm group concurrent calls of
// one activity into one script call each (reserve_batch.lua,
// confirm_batch.lua). The first call of a batch waits at most MaxWait, or
// until MaxBatch calls are waiting, then one call serves them all, in
// arrival order. Every other Store method is the embedded Store's, so a
// Coalescer goes wherever a *Store's methods are wanted.
//
// Answers are exactly those of Store.Reserve and Store.Confirm called one
// by one in arrival order: the batch scripts run the single scripts' code
// per request, and a batch is one activity's keys, one Cluster slot.
//
// Cancellation. A call whose context ends while its request still waits
// for its batch returns ctx.Err() and the request is never sent: nothing
// was reserved. Once the batch is sent, the request will run in Redis
// whatever the caller does; a caller whose context ends before the answer
// arrives gets an error wrapping ErrUnavailable and the context's error,
// exactly like a Store.Reserve whose reply was lost, and must not assume
// nothing was reserved. The Coalescer then does what the caller no longer
// can: when the answer arrives and the abandoned reserve was Reserved, it
// releases that reservation at once (Release: its order id was never
// handed out, so no message refers to it). If that release fails too, the
// reservation stays pending and ReapPending releases it once it is older
// than the reservation timeout (SECKILL_RESERVATION_TIMEOUT in the
// gateway) — the same net that catches a lost reply from Store.Reserve.
// So the gateway's answer to a Reserve error, 503 "nothing was reserved",
// stays true: nothing is kept.
//
// Lost answers. A reserve whose script call fails (a deadline exceeded or
// a connection reset while the reply was on its way, Redis unreachable, a
// reply that is not the script's) may still have run in Redis and taken a
// unit and the user's mark, for an order id nobody will ever hear of. So
// after a batch that fails as a whole, and after a failed Store.Reserve
// when coalescing is off (MaxBatch 1), the Coalescer releases the order id
// of each of its reserves (Release: an id that holds nothing releases
// nothing), each with its own short deadline, before it answers. A caller
// whose release confirmed that nothing is held (released, or nothing to
// release) gets an error wrapping ErrUnavailable, as any Redis failure: the
// gateway may say nothing was reserved, and the user may buy again at
// once. A caller whose release failed too gets an error wrapping both
// ErrUnavailable and ErrMaybeReserved: the unit may stay held until the
// reaper releases it after the reservation timeout. One case escapes the
// release: a Redis so slow that the reserve, sent before the deadline ran
// out, runs only after its release; it then keeps its unit until the
// reaper, like the abandoned reserve above whose release failed.
type Coalescer struct {
	*Store
	cfg CoalesceConfig

	mu   sync.Mutex
	open map[batchKey]*batch // the batch now collecting, per activity and op
}

// NewCoalescer returns a Coalescer over s.
func NewCoalescer(s *Store, cfg CoalesceConfig) *Coalescer {
	return &Coalescer{Store: s, cfg: cfg.withDefaults(), open: map[batchKey]*batch{}}
}

// Config returns the bounds in use (defaults filled in).
func (c *Coalescer) Config() CoalesceConfig { return c.cfg }

type batchOp uint8

const (
	opReserve batchOp = iota
	opConfirm
)

type batchKey struct {
	activity int64
	op       batchOp
}

type batch struct {
	key   batchKey
	calls []*call
	timer *time.Timer
}

// States of a call. waiting -> sent -> delivered is the normal path; the
// caller moves waiting or sent to abandoned when its context ends, and
// whoever loses the compare-and-swap knows the other side owns the call.
const (
	callWaiting int32 = iota
	callSent
	callAbandoned
	callDelivered
)

// call is one Reserve or Confirm waiting for its batch.
type call struct {
	ctx   context.Context
	state atomic.Int32
	done  chan struct{} // closed once delivered

	// request
	userID, requestID, orderID string
	now                        time.Time

	// answer
	res       ReserveResult
	confirmed bool
	err       error
}

// Reserve is Store.Reserve, sent together with the concurrent reserves of
// the same activity (see Coalescer for cancellation).
func (c *Coalescer) Reserve(ctx context.Context, activityID int64, userID, requestID, orderID string, now time.Time) (ReserveResult, error) {
	if c.cfg.MaxBatch <= 1 {
		r, err := c.Store.Reserve(ctx, activityID, userID, requestID, orderID, now)
		if errors.Is(err, ErrUnavailable) {
			err = c.releaseLost(ctx, activityID, orderID, err)
		}
		return r, err
	}
	if userID == "" || orderID == "" {
		return ReserveResult{}, invalid("reserve", activityID, "empty user or order id")
	}
	cl := &call{ctx: ctx, userID: userID, requestID: requestID, orderID: orderID, now: now}
	if err := c.wait(batchKey{activityID, opReserve}, cl); err != nil {
		return ReserveResult{}, err
	}
	return cl.res, cl.err
}

// Confirm is Store.Confirm, sent together with the concurrent confirms of
// the same activity (see Coalescer for cancellation).
func (c *Coalescer) Confirm(ctx context.Context, activityID int64, orderID string) (bool, error) {
	if c.cfg.MaxBatch <= 1 {
		return c.Store.Confirm(ctx, activityID, orderID)
	}
	cl := &call{ctx: ctx, orderID: orderID}
	if err := c.wait(batchKey{activityID, opConfirm}, cl); err != nil {
		return false, err
	}
	return cl.confirmed, cl.err
}

// wait enqueues cl in the open batch of key and waits for its answer. It
// returns an error only when the caller's context ended first; otherwise
// the answer is in cl.
func (c *Coalescer) wait(key batchKey, cl *call) error {
	if err := cl.ctx.Err(); err != nil {
		return err
	}
	cl.done = make(chan struct{})
	c.enqueue(key, cl)
	select {
	case <-cl.done:
		return nil
	case <-cl.ctx.Done():
	}
	if cl.state.CompareAndSwap(callWaiting, callAbandoned) {
		return cl.ctx.Err() // never sent
	}
	if cl.state.CompareAndSwap(callSent, callAbandoned) {
		op := "reserve"
		if key.op == opConfirm {
			op = "confirm"
		}
		return unavailable(op, key.activity, fmt.Errorf("answer not awaited: %w", cl.ctx.Err()))
	}
	<-cl.done // delivered meanwhile: the answer stands
	return nil
}

func (c *Coalescer) enqueue(key batchKey, cl *call) {
	c.mu.Lock()
	b := c.open[key]
	if b == nil {
		b = &batch{key: key, calls: make([]*call, 0, min(c.cfg.MaxBatch, 16))}
		c.open[key] = b
		b.timer = time.AfterFunc(c.cfg.MaxWait, func() { c.expire(b) })
	}
	b.calls = append(b.calls, cl)
	full := len(b.calls) >= c.cfg.MaxBatch
	if full {
		delete(c.open, key)
	}
	c.mu.Unlock()
	if full {
		// The timer may already be running expire, which then finds the
		// batch closed and leaves it to this flush.
		b.timer.Stop()
		go c.flush(b)
	}
}

// expire sends b when its first request waited MaxWait, unless it filled
// up and was sent meanwhile.
func (c *Coalescer) expire(b *batch) {
	c.mu.Lock()
	mine := c.open[b.key] == b
	if mine {
		delete(c.open, b.key)
	}
	c.mu.Unlock()
	if mine {
		c.flush(b)
	}
}

// flush sends the calls of b that are still awaited in one script call and
// hands each its answer.
func (c *Coalescer) flush(b *batch) {
	live := make([]*call, 0, len(b.calls))
	for _, cl := range b.calls {
		if cl.state.CompareAndSwap(callWaiting, callSent) {
			live = append(live, cl)
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := batchContext(live)
	defer cancel()
	switch b.key.op {
	case opReserve:
		reqs := make([]reserveRequest, len(live))
		for i, cl := range live {
			reqs[i] = reserveRequest{cl.userID, cl.requestID, cl.orderID, cl.now}
		}
		answers, err := c.Store.reserveBatch(ctx, b.key.activity, reqs)
		if err != nil {
			c.releaseBatch(b.key.activity, live, err)
			break
		}
		for i, cl := range live {
			cl.res, cl.err = answers[i].res, answers[i].err
		}
	case opConfirm:
		ids := make([]string, len(live))
		for i, cl := range live {
			ids[i] = cl.orderID
		}
		answers, err := c.Store.confirmBatch(ctx, b.key.activity, ids)
		for i, cl := range live {
			if err != nil {
				cl.err = err
			} else {
				cl.confirmed = answers[i]
			}
		}
	}
	for _, cl := range live {
		if cl.state.CompareAndSwap(callSent, callDelivered) {
			close(cl.done)
			continue
		}
		// The caller gave up after the batch was sent and answered with an
		// error: a unit reserved for it would be held for nobody until the
		// reaper. Give it back now.
		if b.key.op == opReserve && cl.err == nil && cl.res.Outcome == Reserved {
			c.releaseAbandoned(b.key.activity, cl)
		}
	}
}

// releaseTimeout bounds a release the Coalescer makes on its own (of a
// reservation whose caller gave up, or whose answer was lost); the reaper
// is the net behind it. It does not depend on the caller's context, which
// may be what ended the reserve.
const releaseTimeout = 2 * time.Second

func (c *Coalescer) releaseAbandoned(activityID int64, cl *call) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(cl.ctx), releaseTimeout)
	defer cancel()
	// Errors are left to ReapPending: the reservation is pending and its
	// order id was never handed out.
	_, _ = c.Store.Release(ctx, activityID, cl.orderID)
}

// releaseBatch gives every call of a reserve batch that failed with err its
// error, after releasing its order id (releaseLost), all at once: one
// release's deadline bounds the wait, not one per call.
func (c *Coalescer) releaseBatch(activityID int64, calls []*call, err error) {
	var wg sync.WaitGroup
	for _, cl := range calls {
		wg.Go(func() { cl.err = c.releaseLost(cl.ctx, activityID, cl.orderID, err) })
	}
	wg.Wait()
}

// releaseLost releases orderID after its reserve failed with err (the
// reserve may have run in Redis and its answer been lost) and returns the
// error for the caller: err when the release confirmed that orderID holds
// nothing now (released, or nothing to release), and err joined with
// ErrMaybeReserved when that is not known.
func (c *Coalescer) releaseLost(ctx context.Context, activityID int64, orderID string, err error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	switch res, rerr := c.Store.Release(rctx, activityID, orderID); {
	case rerr != nil:
		return fmt.Errorf("%w (%w: releasing order %s failed too: %w)", err, ErrMaybeReserved, orderID, rerr)
	case res == NotReleasedClaimed:
		// Cannot happen: only a worker claims, and no message names an
		// order id whose reserve was never answered.
		return fmt.Errorf("%w (%w: order %s is claimed)", err, ErrMaybeReserved, orderID)
	}
	return err
}

// batchContext is the context of one batch's script call: the first
// caller's values, never cancelled by a caller that leaves (the others
// still wait), with the latest deadline of the callers when they all have
// one, so a hung Redis does not hold the call longer than anyone waits.
func batchContext(calls []*call) (context.Context, context.CancelFunc) {
	base := context.WithoutCancel(calls[0].ctx)
	var latest time.Time
	for _, cl := range calls {
		d, ok := cl.ctx.Deadline()
		if !ok {
			return base, func() {}
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(base, latest)
}

// reserveRequest is the argument of one Store.Reserve.
type reserveRequest struct {
	userID, requestID, orderID string
	now                        time.Time
}

// reserveAnswer is what Store.Reserve would have returned for one request:
// err is only ever ErrInvalid (an order id already in use); an error of
// the whole call is returned by reserveBatch instead.
type reserveAnswer struct {
	res ReserveResult
	err error
}

// reserveBatch runs Store.Reserve for every request in one script call, in
// order. Every request must have a user and an order id.
func (s *Store) reserveBatch(ctx context.Context, activityID int64, reqs []reserveRequest) ([]reserveAnswer, error) {
	const op = "reserve"
	args := make([]any, 0, 5*len(reqs))
	for _, r := range reqs {
		enc := encodeReservation(Reservation{UserID: r.userID, RequestID: r.requestID, ReservedAt: r.now, Status: StatusPending})
		args = append(args, r.userID, r.requestID, r.orderID, r.now.UnixMilli(), enc)
	}
	r, err := s.run(ctx, s.sc.reserveBatch, scriptCall{op: op, activity: activityID}, args...)
	if err != nil {
		return nil, err
	}
	if r.status != statusOK || len(r.values) != 3*len(reqs) {
		return nil, unavailable(op, activityID, fmt.Errorf("reply of %d values with status %d for %d reserves", len(r.values), r.status, len(reqs)))
	}
	out := make([]reserveAnswer, len(reqs))
	for i, req := range reqs {
		res, err := reserveResult(scriptCall{op: op, activity: activityID, order: req.orderID}, r.values[3*i:3*i+3])
		switch {
		case errors.Is(err, ErrInvalid):
			out[i].err = err // this request's, as Store.Reserve would return it
		case err != nil:
			return nil, err
		default:
			out[i].res = res
		}
	}
	return out, nil
}

// confirmBatch runs Store.Confirm for every order id in one script call.
func (s *Store) confirmBatch(ctx context.Context, activityID int64, orderIDs []string) ([]bool, error) {
	args := make([]any, len(orderIDs))
	for i, id := range orderIDs {
		args[i] = id
	}
	const op = "confirm"
	r, err := s.run(ctx, s.sc.confirmBatch, scriptCall{op: op, activity: activityID}, args...)
	if err != nil {
		return nil, err
	}
	if r.status != statusOK || len(r.values) != len(orderIDs) {
		return nil, unavailable(op, activityID, fmt.Errorf("reply of %d values with status %d for %d order ids", len(r.values), r.status, len(orderIDs)))
	}
	queued := make([]bool, len(orderIDs))
	for i, id := range orderIDs {
		// Each value is the status of confirm.lua's reply {status}, read as
		// Store.Confirm reads it.
		c := scriptCall{op: op, activity: activityID, order: id}
		one, err := decodeReply(c, r.values[i:i+1])
		if err != nil {
			return nil, err
		}
		q, ok := one.flag()
		if !ok {
			return nil, c.unexpected(r.values[i])
		}
		queued[i] = q
	}
	return queued, nil
}
