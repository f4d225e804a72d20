package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/orderid"
	"github.com/flashsale/seckill/order/ordermsg"
)

// demoTokenTTL is long enough for a demo session and a load test.
const demoTokenTTL = 24 * time.Hour

// decodeJSON reads body into v. An empty body is allowed when allowEmpty;
// unknown fields are refused so a misspelt field is not silently ignored.
// The error says what is wrong with the body.
func decodeJSON(body io.Reader, v any, allowEmpty bool) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && !onlySpaceLeft(io.MultiReader(dec.Buffered(), body)) {
		// dec.More is false for a stray '}' or ']', so read what is left.
		err = errors.New("unexpected data after the JSON object")
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil, errors.Is(err, io.EOF) && allowEmpty:
		return nil
	case errors.As(err, &tooLarge):
		return errBodyTooLarge(tooLarge.Limit)
	case errors.Is(err, io.EOF):
		return errBadJSON("request body is empty; a JSON object is required")
	default:
		return errBadJSON("malformed JSON body: " + err.Error()) // the decoder's text points at the bad byte
	}
}

// onlySpaceLeft reports whether r holds nothing but JSON whitespace. r is
// bounded by the body limit; a read error counts as something left.
func onlySpaceLeft(r io.Reader) bool {
	var buf [512]byte
	for {
		n, err := r.Read(buf[:])
		for _, c := range buf[:n] {
			if !isJSONSpace(c) {
				return false
			}
		}
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// DemoContacts records the contact of a demo user at login (the notifier's
// contacts table fills it: notifier/contacts.DemoRecorder).
type DemoContacts interface {
	RecordDemoContact(ctx context.Context, userID string) error
}

func (s *Server) demoToken(c *gin.Context) {
	if !s.cfg.Demo {
		s.respond(c, errNotFound("demo login is only available in demo mode (SECKILL_DEMO=true)"))
		return
	}
	var req struct {
		UserID string `json:"user_id"`
	}
	if err := decodeJSON(c.Request.Body, &req, false); err != nil {
		s.respond(c, err)
		return
	}
	tok, err := s.demoLogin(c.Request.Context(), req.UserID)
	if err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"token": tok})
}

// demoLogin issues a token for userID, who is whoever the caller says.
func (s *Server) demoLogin(ctx context.Context, userID string) (string, error) {
	tok, err := s.cfg.Tokens.Issue(userID, demoTokenTTL)
	if err != nil {
		return "", errValidation("user_id: " + err.Error()) // says which ids are valid
	}
	if s.cfg.DemoContacts != nil {
		if err := s.cfg.DemoContacts.RecordDemoContact(ctx, userID); err != nil {
			// The login still works; only this user's notifications
			// have nowhere to go.
			s.log.Warn("demo login: could not record the demo contact", "user_id", userID, "err", err)
		}
	}
	return tok, nil
}

// activityJSON is an activity as the API shows it.
type activityJSON struct {
	ID                string    `json:"id"`
	Name              string    `json:"name"`
	Stock             int64     `json:"stock"`
	Remaining         int64     `json:"remaining"`
	PriceCents        int64     `json:"price_cents"`
	StartsAt          time.Time `json:"starts_at"`
	EndsAt            time.Time `json:"ends_at"`
	PayTimeoutSeconds int64     `json:"pay_timeout_seconds"`
	State             string    `json:"state"`
	ServerTime        time.Time `json:"server_time"`
}

func activityView(a *order.Activity, remaining int64, now time.Time) activityJSON {
	state := "active"
	switch {
	case now.Before(a.StartsAt):
		state = "upcoming"
	case !now.Before(a.EndsAt):
		state = "ended"
	case remaining <= 0:
		state = "sold_out"
	}
	return activityJSON{
		ID: strconv.FormatInt(a.ID, 10), Name: a.Name, Stock: a.Stock, Remaining: remaining,
		PriceCents: a.PriceCents, StartsAt: a.StartsAt.UTC(), EndsAt: a.EndsAt.UTC(),
		PayTimeoutSeconds: a.PayTimeoutSeconds, State: state, ServerTime: now.UTC(),
	}
}

// activity reads the activity an :id path parameter names, from the cache.
func (s *Server) activity(ctx context.Context, idParam string) (*order.Activity, error) {
	id, err := strconv.ParseInt(idParam, 10, 64)
	if err != nil || id <= 0 {
		return nil, errNotFound("activity %q not found", idParam)
	}
	a, err := s.acts.get(ctx, id)
	switch {
	case errors.Is(err, order.ErrNotFound):
		return nil, errNotFound("activity %d not found", id)
	case err != nil:
		return nil, errBusy("database unavailable: could not read the activity", err)
	}
	return a, nil
}

func (s *Server) getActivity(c *gin.Context) {
	v, err := s.showActivity(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// showActivity is an activity with its remaining stock, which a local
// sold-out flag answers without Redis.
func (s *Server) showActivity(ctx context.Context, idParam string) (activityJSON, error) {
	a, err := s.activity(ctx, idParam)
	if err != nil {
		return activityJSON{}, err
	}
	now := s.now()
	var remaining int64
	if !s.soldOut.isSet(a.ID, now) {
		r, found, err := s.cfg.Inventory.Remaining(ctx, a.ID)
		if err == nil && !found {
			if err = s.restore(ctx, a); err == nil {
				r, _, err = s.cfg.Inventory.Remaining(ctx, a.ID)
			}
		}
		if err != nil {
			return activityJSON{}, errBusy("inventory unavailable: could not read remaining stock", err)
		}
		remaining = r
	}
	return activityView(a, remaining, now), nil
}

// restore puts an activity's stock back into Redis when it is missing there
// (an embedded Redis that restarted, or a preload that failed at creation),
// through the order side's Restorer: the database's live orders, the orders
// still waiting in the queue and the reservations that survived.
func (s *Server) restore(ctx context.Context, a *order.Activity) error {
	return s.cfg.Restorer.Restore(ctx, a)
}

// purchase is one buy as the buy routes hand it on.
type purchase struct {
	activity  string // the :id path parameter
	user      string
	requestID string // the client's idempotency key; may be empty
	buyToken  string // see buytoken.go; may be empty unless Config.RequireBuyToken
	traceID   string // the X-Request-ID, which follows the order through the queue
}

// decodePurchase reads a buy (both buy modes) and checks its buy token
// (buytoken.go). An empty body is a buy without a request_id.
func (s *Server) decodePurchase(c *gin.Context) (purchase, error) {
	buf := s.bodyBufs.Get().(*[buyBodyMax]byte)
	req, err := readBuyBody(c.Request.Body, buf)
	s.bodyBufs.Put(buf)
	if err != nil {
		return purchase{}, err
	}
	if req.RequestID != "" && !validRequestID(req.RequestID) {
		return purchase{}, errValidation("request_id: want 1-64 characters of letters, digits and _.:-")
	}
	p := purchase{activity: c.Param("id"), user: c.GetString(keyUser), requestID: req.RequestID,
		buyToken: req.BuyToken, traceID: c.GetString(keyRequestID)}
	if reason, err := s.checkBuyToken(p); err != nil {
		if reason != "" {
			c.Set(keyTokenRefused, reason)
		}
		return p, err
	}
	return p, nil
}

// buy is the buy route of the pipeline: 202 once the order is in the queue.
func (s *Server) buy(c *gin.Context) {
	p, err := s.decodePurchase(c)
	if err != nil {
		s.respond(c, err)
		return
	}
	orderID, err := s.placeOrder(c.Request.Context(), p)
	if err != nil {
		s.respond(c, err)
		return
	}
	s.traceOrder(c.Request.Context(), orderID)
	c.JSON(http.StatusAccepted, gin.H{"order_id": orderID, "state": order.StateQueued})
}

// placeOrder is the hot path: everything before the Reserve call is local,
// so a sold-out or not-started spike never reaches Redis. It returns the
// id of the order in the queue: a new one, or the one p.requestID already
// placed.
func (s *Server) placeOrder(ctx context.Context, p purchase) (string, error) {
	user, requestID := p.user, p.requestID
	a, err := s.activity(ctx, p.activity)
	if err != nil {
		return "", err
	}
	now := s.now()
	switch {
	case now.Before(a.StartsAt):
		return "", errNotStarted("the sale starts at " + a.StartsAt.UTC().Format(time.RFC3339))
	case !now.Before(a.EndsAt):
		return "", errEnded("the sale ended at " + a.EndsAt.UTC().Format(time.RFC3339))
	}
	// A request_id may belong to an order this user already won (a retry
	// after a lost 202): only Redis can answer it with that order. Once
	// sold out, the flag's holder snapshot says who may hold one; anyone
	// else is answered from memory, a holder goes to Redis (soldout.go).
	// Until the snapshot is loaded every request_id buy goes to Redis.
	if requestID == "" && s.soldOut.shouldReject(a.ID, now) ||
		requestID != "" && s.soldOut.shouldRejectNonHolder(a.ID, user, now) {
		if requestID != "" && s.soldOut.holdersAging(a.ID, now) {
			s.snapshotHolders(a, false) // the next snapshot, read while this one answers
		}
		s.metrics.soldOutLocal.Inc()
		return "", errSoldOut
	}

	orderID := s.cfg.IDs.Next(a.ID)
	deadline := time.Now().Add(s.cfg.PublishTimeout) // the wait below is real time, whatever clock the sale reads
	loadedOnce := false
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		// A hung Redis must give a fast 503, not hold the buyer.
		rctx, cancel := context.WithTimeout(ctx, s.cfg.RedisTimeout)
		rctx, span := s.startReserve(rctx, a.ID)
		res, err := s.cfg.Inventory.Reserve(rctx, a.ID, user, requestID, orderID, now)
		endReserve(span, orderID, res, err)
		cancel()
		if err != nil {
			s.metrics.reserve.WithLabelValues("error").Inc()
			return "", errBusy("inventory unavailable; nothing was reserved, try again", err)
		}
		s.metrics.reserve.WithLabelValues(res.Outcome.String()).Inc()
		switch res.Outcome {
		case inventory.Reserved:
			s.soldOut.clear(a.ID)
			if err := s.publish(ctx, a, p, orderID); err != nil {
				return "", err
			}
			return orderID, nil
		case inventory.Existing:
			return res.OrderID, nil
		case inventory.Pending:
			// The same request is being published by a concurrent call
			// (a double click). Answer with its outcome, not a guess.
			if time.Now().Add(wait).After(deadline) {
				return "", errBusy("the same request_id is still being processed; try again", nil)
			}
			time.Sleep(wait)
			now = s.now()
		case inventory.AlreadyPurchased:
			return "", errAlreadyPurchased
		case inventory.SoldOut:
			s.soldOut.set(a.ID, now)
			s.snapshotHolders(a, requestID != "")
			return "", errSoldOut
		case inventory.NotStarted:
			return "", errSaleNotStarted
		case inventory.Ended:
			return "", errSaleEnded
		case inventory.UnknownActivity:
			if loadedOnce {
				return "", errBusy("activity stock is not loaded in redis; try again", nil)
			}
			loadedOnce = true
			if err := s.restore(ctx, a); err != nil {
				return "", errBusy("inventory unavailable; nothing was reserved, try again", fmt.Errorf("load activity %d: %w", a.ID, err))
			}
		default:
			return "", errInternal(fmt.Errorf("reserve activity %d: unexpected outcome %v", a.ID, res.Outcome))
		}
	}
}

// snapshotHolders refreshes, in the background, the holder snapshot of a
// sold-out activity, so the request_id buys that follow are answered
// from memory unless their user holds a unit. It is called after Redis
// answered SoldOut, and while the flag holds that answer once the snapshot
// is half its ttl old: whoever reserved before is in the snapshot, and
// nobody can reserve after without a release, which clears it. Only buys
// with a request_id use a snapshot, so one is first read for such a buy
// (withRequestID) and then refreshed by any SoldOut answer, such as the
// flag's TTL probe, or by an aging snapshot; a sale without request_ids
// never reads one. An Inventory that cannot list holders, or an activity
// too large for a snapshot, keeps sending request_id buys to Redis.
func (s *Server) snapshotHolders(a *order.Activity, withRequestID bool) {
	hl, ok := s.cfg.Inventory.(HolderLister)
	if !ok || a.Stock > maxHolderSnapshot {
		return
	}
	s.soldOut.refreshHolders(a.ID, s.now(), !withRequestID, hl, 5*s.cfg.RedisTimeout, s.now, func(err error) {
		s.log.Warn("read the holders of a sold-out activity (buys with a request_id go to Redis meanwhile)",
			"activity_id", a.ID, "err", err)
	})
}

// publish hands the reserved order to the queue and returns nil only once
// the queue accepted it. If it refuses, the reservation is released so the
// unit goes back on sale, and the client gets 503 with nothing kept. A
// publish can report an error although the message went through (Kafka's
// "some records may have been written"): if a worker already claimed the
// reservation, Release leaves it (the order stands, the user keeps one
// unit and cannot buy a second) and the client still gets 503; a retry with
// the same request_id finds the order.
func (s *Server) publish(ctx context.Context, a *order.Activity, p purchase, orderID string) error {
	payload, err := json.Marshal(ordermsg.Message{
		OrderID: orderID, ActivityID: a.ID, UserID: p.user, RequestID: p.requestID,
		PriceCents: a.PriceCents, ReservedAt: s.now().UTC(), TraceID: p.traceID,
	})
	if err != nil {
		panic(fmt.Sprintf("marshal order message: %v", err)) // plain struct: cannot fail
	}
	// A client that hangs up must not turn an accepted publish into an
	// ambiguous one: the publish runs to its own deadline.
	detached := context.WithoutCancel(ctx)
	pctx, cancel := context.WithTimeout(detached, s.cfg.PublishTimeout)
	defer cancel()
	start := time.Now()
	err = s.cfg.Publisher.Publish(pctx, ordermsg.TopicOrders, &mq.Message{
		ID: orderID, Key: p.user, Payload: payload,
		Headers: map[string]string{"request_id": p.traceID},
	})
	s.metrics.publishLatency.Observe(time.Since(start).Seconds())
	// Release and Confirm get their own deadline: after a publish that
	// timed out, its context is already spent, and a release that fails
	// would keep the unit and the user's mark until the reaper.
	rctx, rcancel := context.WithTimeout(detached, s.cfg.RedisTimeout)
	defer rcancel()
	if err != nil {
		return s.unpublished(rctx, a, p, orderID, err)
	}
	// The order is in the queue: mark the reservation so the reaper leaves
	// it alone. If this fails the worker's claim still wins the race.
	for attempt := 0; attempt < 3; attempt++ {
		if _, err = s.cfg.Inventory.Confirm(rctx, a.ID, orderID); err == nil {
			break
		}
	}
	if err != nil {
		s.log.Warn("confirm reservation", "order_id", orderID, "err", err)
	}
	return nil
}

// unpublished releases the reservation of an order the queue refused
// (pubErr) and returns the buy's answer.
func (s *Server) unpublished(ctx context.Context, a *order.Activity, p purchase, orderID string, pubErr error) error {
	full := errors.Is(pubErr, mq.ErrQueueFull)
	reason := "error"
	if full {
		reason = "full"
	}
	s.metrics.publishFailed.WithLabelValues(reason).Inc()
	cause := fmt.Errorf("publish order %s of activity %d: %w", orderID, a.ID, pubErr)
	res, err := s.cfg.Inventory.Release(ctx, a.ID, orderID)
	switch {
	case err != nil:
		// The reaper releases the pending reservation later.
		s.log.Error("release after failed publish", "order_id", orderID, "activity_id", a.ID, "err", err)
	case res == inventory.Released:
		s.soldOut.clear(a.ID)
	case res == inventory.NotReleasedClaimed:
		// The message reached the queue after all and a worker took
		// it: the order went through. Releasing would sell the unit
		// twice; the 202 is what this client misses.
		s.log.Warn("publish reported an error but the order went through: a worker claimed its reservation, which is kept",
			"order_id", orderID, "activity_id", a.ID, "user_id", p.user, "request_id", p.traceID)
		return errBusy("the order queue reported an error, yet the order reached it; retry with the same request_id to get its order_id", cause)
	default:
		s.log.Warn("release after failed publish: reservation already gone", "order_id", orderID, "activity_id", a.ID, "result", res.String())
	}
	if full {
		return cause // mq.ErrQueueFull: answered "order queue is full" (classify)
	}
	return errBusy("order queue unavailable; nothing was reserved, try again", cause)
}

// orderJSON is an order as the API shows it.
type orderJSON struct {
	OrderID     string     `json:"order_id"`
	ActivityID  string     `json:"activity_id"`
	UserID      string     `json:"user_id"`
	State       string     `json:"state"`
	PriceCents  int64      `json:"price_cents"`
	CreatedAt   time.Time  `json:"created_at"`
	PayDeadline *time.Time `json:"pay_deadline"`
}

// orderActivity returns the activity id that order id carries. A
// malformed id is not found, as an unknown one is.
func orderActivity(id string) (int64, error) {
	actID, _, err := orderid.Parse(id)
	if err != nil {
		return 0, errOrderNotFound(id)
	}
	return actID, nil
}

// errOrderNotFound is also the answer for another user's order: it does not
// exist for this caller.
func errOrderNotFound(id string) *apiError { return errNotFound("order %q not found", id) }

func (s *Server) getOrder(c *gin.Context) {
	v, err := s.findOrder(c.Request.Context(), c.GetString(keyUser), c.Param("id"))
	if err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// findOrder is user's order id: the database row, or, while the order
// waits in the queue, its reservation in Redis.
func (s *Server) findOrder(ctx context.Context, user, id string) (orderJSON, error) {
	actID, err := orderActivity(id)
	if err != nil {
		return orderJSON{}, err
	}
	o, err := s.cfg.Store.GetOrder(ctx, id)
	switch {
	case err == nil:
		if o.UserID != user {
			return orderJSON{}, errOrderNotFound(id)
		}
		deadline := o.PayDeadline.UTC()
		return orderJSON{
			OrderID: o.ID, ActivityID: strconv.FormatInt(o.ActivityID, 10), UserID: o.UserID, State: o.State,
			PriceCents: o.PriceCents, CreatedAt: o.CreatedAt.UTC(), PayDeadline: &deadline,
		}, nil
	case !errors.Is(err, order.ErrNotFound):
		return orderJSON{}, errBusy("database unavailable: could not read the order", err)
	}
	// Not written yet: the reservation in Redis is the order while it waits
	// in the queue.
	res, found, err := s.cfg.Inventory.Lookup(ctx, actID, id)
	if err != nil {
		return orderJSON{}, errBusy("inventory unavailable: could not read the order", fmt.Errorf("look up order %s: %w", id, err))
	}
	if !found || res.UserID != user {
		return orderJSON{}, errOrderNotFound(id)
	}
	a, err := s.acts.get(ctx, actID)
	switch {
	case errors.Is(err, order.ErrNotFound):
		return orderJSON{}, errOrderNotFound(id)
	case err != nil:
		return orderJSON{}, errBusy("database unavailable: could not read the order's activity", err)
	}
	return orderJSON{
		OrderID: id, ActivityID: strconv.FormatInt(actID, 10), UserID: user, State: order.StateQueued,
		PriceCents: a.PriceCents, CreatedAt: res.ReservedAt.UTC(),
	}, nil
}

// payOrder is the payment callback: it stands for the payment provider's
// notification that the owner paid. It is idempotent (paying a paid order
// answers 200 again), so a provider's retried callback is harmless.
func (s *Server) payOrder(c *gin.Context) {
	o, err := s.pay(c.Request.Context(), c.GetString(keyUser), c.Param("id"))
	if err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"order_id": o.ID, "state": o.State})
}

// pay records that user paid order id.
func (s *Server) pay(ctx context.Context, user, id string) (*order.Order, error) {
	actID, err := orderActivity(id)
	if err != nil {
		return nil, err
	}
	o, err := s.cfg.Payer.Pay(ctx, id, user)
	switch {
	case err == nil:
		return o, nil
	case errors.Is(err, order.ErrOrderCancelled):
		return nil, errConflict(codeOrderCancelled,
			fmt.Sprintf("order %s was cancelled: its pay deadline passed and the unit went back on sale", id))
	case !errors.Is(err, order.ErrNotFound):
		return nil, errBusy("database unavailable: the payment was not recorded, try again", err)
	}
	// Not stored: still queued if this user holds its reservation.
	res, found, err := s.cfg.Inventory.Lookup(ctx, actID, id)
	switch {
	case err != nil:
		return nil, errBusy("inventory unavailable: could not read the order", fmt.Errorf("look up order %s: %w", id, err))
	case found && res.UserID == user:
		return nil, errConflict(codeNotPayable,
			fmt.Sprintf("order %s is still queued; pay once GET /api/v1/orders/%s says created", id, id))
	}
	return nil, errOrderNotFound(id)
}

// Limits on what an admin may create.
const (
	maxStock      = 10_000_000
	maxPayTimeout = 7 * 24 * 3600
	defPayTimeout = 900
)

// activityRequest is the body of POST /api/v1/admin/activities.
type activityRequest struct {
	Name              string `json:"name"`
	Stock             *int64 `json:"stock"`
	PriceCents        *int64 `json:"price_cents"`
	StartsAt          string `json:"starts_at"`
	EndsAt            string `json:"ends_at"`
	PayTimeoutSeconds *int64 `json:"pay_timeout_seconds"`
}

// activity checks the request and returns the activity it describes. The
// error names every field that is wrong, so one round trip fixes them all.
func (req *activityRequest) activity() (*order.Activity, error) {
	var problems []string
	bad := func(field, msg string) { problems = append(problems, field+": "+msg) }
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > 200 {
		bad("name", "required, at most 200 characters")
	}
	switch {
	case req.Stock == nil:
		bad("stock", "required")
	case *req.Stock <= 0 || *req.Stock > maxStock:
		bad("stock", fmt.Sprintf("must be between 1 and %d, got %d", maxStock, *req.Stock))
	}
	switch {
	case req.PriceCents == nil:
		bad("price_cents", "required")
	case *req.PriceCents < 0:
		bad("price_cents", fmt.Sprintf("must not be negative, got %d", *req.PriceCents))
	}
	starts, errS := time.Parse(time.RFC3339, req.StartsAt)
	if errS != nil {
		bad("starts_at", fmt.Sprintf("must be an RFC 3339 time such as 2026-11-11T00:00:00Z, got %q", req.StartsAt))
	}
	ends, errE := time.Parse(time.RFC3339, req.EndsAt)
	if errE != nil {
		bad("ends_at", fmt.Sprintf("must be an RFC 3339 time such as 2026-11-11T01:00:00Z, got %q", req.EndsAt))
	}
	// Compare the times as the database stores them: a window that only
	// sub-microsecond digits keep open would be stored empty.
	starts, ends = order.StoredTime(starts), order.StoredTime(ends)
	if errS == nil && errE == nil && !ends.After(starts) {
		bad("ends_at", fmt.Sprintf("must be after starts_at, to the microsecond the database keeps (got %s and %s)",
			ends.Format(time.RFC3339Nano), starts.Format(time.RFC3339Nano)))
	}
	payTimeout := int64(defPayTimeout)
	if req.PayTimeoutSeconds != nil {
		payTimeout = *req.PayTimeoutSeconds
		if payTimeout <= 0 || payTimeout > maxPayTimeout {
			bad("pay_timeout_seconds", fmt.Sprintf("must be between 1 and %d, got %d", maxPayTimeout, payTimeout))
		}
	}
	if len(problems) > 0 {
		return nil, errValidation(strings.Join(problems, "; "))
	}
	return &order.Activity{
		Name: name, Stock: *req.Stock, Available: *req.Stock, PriceCents: *req.PriceCents,
		StartsAt: starts, EndsAt: ends, PayTimeoutSeconds: payTimeout,
	}, nil
}

func (s *Server) createActivity(c *gin.Context) {
	var req activityRequest
	if err := decodeJSON(c.Request.Body, &req, false); err != nil {
		s.respond(c, err)
		return
	}
	a, err := req.activity()
	if err != nil {
		s.respond(c, err)
		return
	}
	if err := s.addActivity(c.Request.Context(), a); err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusCreated, activityView(a, a.Stock, s.now()))
}

// addActivity stores a and loads its stock into Redis.
func (s *Server) addActivity(ctx context.Context, a *order.Activity) error {
	if err := s.cfg.Store.CreateActivity(ctx, a); err != nil {
		if errors.Is(err, order.ErrInvalidActivity) {
			// Checked already; the store's own checks have the last
			// word, and name the field (classify answers 400).
			return err
		}
		return errBusy("database unavailable: the activity was not created", err)
	}
	// Preload now so the first buyer does not pay for it; if Redis is
	// down the first buy or read loads it instead.
	if err := s.restore(ctx, a); err != nil {
		s.log.Warn("preload activity stock", "activity_id", a.ID, "err", err)
	}
	s.log.Info("activity created", "activity_id", a.ID, "stock", a.Stock, "starts_at", a.StartsAt, "ends_at", a.EndsAt)
	return nil
}

// statsJSON is GET /api/v1/admin/activities/:id/stats.
type statsJSON struct {
	Stock           int64 `json:"stock"`
	Remaining       int64 `json:"remaining"`
	Reserved        int64 `json:"reserved"`
	Queued          int64 `json:"queued"`
	OrdersCreated   int64 `json:"orders_created"`
	OrdersPaid      int64 `json:"orders_paid"`
	OrdersCancelled int64 `json:"orders_cancelled"`
	DBAvailable     int64 `json:"db_available"`
}

func (s *Server) stats(c *gin.Context) {
	v, err := s.activityStats(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.respond(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// activityStats reads both sides of an activity's conservation identity.
func (s *Server) activityStats(ctx context.Context, idParam string) (statsJSON, error) {
	cached, err := s.activity(ctx, idParam)
	if err != nil {
		return statsJSON{}, err
	}
	// Stats are for audits: read the row itself, not the cached copy, and
	// read it with its order counts in one statement so that the database
	// side of the conservation identity holds in the answer.
	snap, err := s.cfg.Store.Snapshot(ctx, cached.ID)
	if err != nil {
		return statsJSON{}, errBusy("database unavailable: could not read the activity and its orders", err)
	}
	a := &snap.Activity
	inv, found, err := s.cfg.Inventory.Stats(ctx, a.ID)
	if err == nil && !found {
		if err = s.restore(ctx, a); err == nil {
			inv, _, err = s.cfg.Inventory.Stats(ctx, a.ID)
		}
	}
	if err != nil {
		return statsJSON{}, errBusy("inventory unavailable: could not read the activity's stock", err)
	}
	return statsJSON{
		Stock: a.Stock, Remaining: inv.Remaining, Reserved: inv.Reserved,
		Queued:        inv.Reserved - snap.Created - snap.Paid,
		OrdersCreated: snap.Created, OrdersPaid: snap.Paid, OrdersCancelled: snap.Cancelled,
		DBAvailable: a.Available,
	}, nil
}
