package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/flashsale/seckill/inventory"
	"github.com/flashsale/seckill/mq"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/order/orderid"
)

// demoTokenTTL is long enough for a demo session and a load test.
const demoTokenTTL = 24 * time.Hour

// requestIDPattern bounds the idempotency key a client may send with a buy.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// decodeJSON reads the body into v. An empty body is allowed when
// allowEmpty; unknown fields are refused so a misspelt field is not silently
// ignored. It answers the error itself and reports false.
func decodeJSON(c *gin.Context, v any, allowEmpty bool) bool {
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON object")
	}
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.Is(err, io.EOF) && allowEmpty:
		return true
	case errors.As(err, &tooLarge):
		abort(c, http.StatusRequestEntityTooLarge, codeBodyTooLarge, fmt.Sprintf("request body is larger than %d bytes", tooLarge.Limit))
	case errors.Is(err, io.EOF):
		abort(c, http.StatusBadRequest, codeBadJSON, "request body is empty; a JSON object is required")
	default:
		abort(c, http.StatusBadRequest, codeBadJSON, "malformed JSON body: "+err.Error())
	}
	return false
}

// DemoContacts records the contact of a demo user at login (the notifier's
// contacts table fills it: notifier/contacts.DemoRecorder).
type DemoContacts interface {
	RecordDemoContact(ctx context.Context, userID string) error
}

func (s *Server) demoToken(c *gin.Context) {
	if !s.opts.Demo {
		abort(c, http.StatusNotFound, codeNotFound, "demo login is only available in demo mode (SECKILL_DEMO=true)")
		return
	}
	var req struct {
		UserID string `json:"user_id"`
	}
	if !decodeJSON(c, &req, false) {
		return
	}
	tok, err := s.opts.Tokens.Issue(req.UserID, demoTokenTTL)
	if err != nil {
		abort(c, http.StatusBadRequest, codeValidation, "user_id: "+err.Error())
		return
	}
	if s.opts.DemoContacts != nil {
		if err := s.opts.DemoContacts.RecordDemoContact(c.Request.Context(), req.UserID); err != nil {
			// The login still works; only this user's notifications
			// have nowhere to go.
			s.log.Warn("demo login: could not record the demo contact", "user_id", req.UserID, "err", err)
		}
	}
	c.JSON(http.StatusOK, gin.H{"token": tok})
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

// activity resolves the :id path parameter; it answers 404/503 itself.
func (s *Server) activity(c *gin.Context) (*order.Activity, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		abort(c, http.StatusNotFound, codeNotFound, fmt.Sprintf("activity %q not found", c.Param("id")))
		return nil, false
	}
	a, err := s.acts.get(c.Request.Context(), id)
	switch {
	case errors.Is(err, order.ErrNotFound):
		abort(c, http.StatusNotFound, codeNotFound, fmt.Sprintf("activity %d not found", id))
		return nil, false
	case err != nil:
		s.log.Warn("read activity", "activity_id", id, "err", err)
		busy(c, "database unavailable: could not read the activity")
		return nil, false
	}
	return a, true
}

func (s *Server) getActivity(c *gin.Context) {
	a, ok := s.activity(c)
	if !ok {
		return
	}
	now := s.now()
	var remaining int64
	if !s.soldOut.isSet(a.ID, now) {
		r, found, err := s.opts.Inventory.Remaining(c.Request.Context(), a.ID)
		if err == nil && !found {
			if err = s.restore(c.Request.Context(), a); err == nil {
				r, _, err = s.opts.Inventory.Remaining(c.Request.Context(), a.ID)
			}
		}
		if err != nil {
			s.log.Warn("read remaining stock", "activity_id", a.ID, "err", err)
			busy(c, "inventory unavailable: could not read remaining stock")
			return
		}
		remaining = r
	}
	c.JSON(http.StatusOK, activityView(a, remaining, now))
}

// restore puts an activity's stock back into Redis when it is missing there
// (an embedded Redis that restarted, or a preload that failed at creation),
// through the order side's Restorer: the database's live orders, the orders
// still waiting in the queue and the reservations that survived.
func (s *Server) restore(ctx context.Context, a *order.Activity) error {
	return s.opts.Restorer.Restore(ctx, a)
}

// buy is the hot path: everything before the Reserve call is local, so a
// sold-out or not-started spike never reaches Redis.
func (s *Server) buy(c *gin.Context) {
	user := c.GetString(keyUser)
	var req struct {
		RequestID string `json:"request_id"`
	}
	if !decodeJSON(c, &req, true) {
		return
	}
	if req.RequestID != "" && !requestIDPattern.MatchString(req.RequestID) {
		abort(c, http.StatusBadRequest, codeValidation, "request_id: want 1-64 characters of letters, digits and _.:-")
		return
	}
	a, ok := s.activity(c)
	if !ok {
		return
	}
	now := s.now()
	switch {
	case now.Before(a.StartsAt):
		abort(c, http.StatusForbidden, codeNotStarted, "the sale starts at "+a.StartsAt.UTC().Format(time.RFC3339))
		return
	case !now.Before(a.EndsAt):
		abort(c, http.StatusForbidden, codeEnded, "the sale ended at "+a.EndsAt.UTC().Format(time.RFC3339))
		return
	}
	// A request_id may belong to an order this user already won (a retry
	// after a lost 202): only Redis can answer it with that order. Once
	// sold out, the flag's holder snapshot says who may hold one; anyone
	// else is answered from memory, a holder goes to Redis (soldout.go).
	// Until the snapshot is loaded every request_id buy goes to Redis.
	if req.RequestID == "" && s.soldOut.shouldReject(a.ID, now) ||
		req.RequestID != "" && s.soldOut.shouldRejectNonHolder(a.ID, user, now) {
		s.metrics.soldOutLocal.Inc()
		abort(c, http.StatusGone, codeSoldOut, "sold out")
		return
	}

	orderID := s.opts.IDs.Next(a.ID)
	deadline := now.Add(s.opts.PublishTimeout)
	loadedOnce := false
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		// A hung Redis must give a fast 503, not hold the buyer.
		rctx, cancel := context.WithTimeout(c.Request.Context(), s.opts.RedisTimeout)
		res, err := s.opts.Inventory.Reserve(rctx, a.ID, user, req.RequestID, orderID, now)
		cancel()
		if err != nil {
			s.metrics.reserve.WithLabelValues("error").Inc()
			s.log.Warn("reserve", "activity_id", a.ID, "err", err)
			busy(c, "inventory unavailable; nothing was reserved, try again")
			return
		}
		s.metrics.reserve.WithLabelValues(outcomeName(res.Outcome)).Inc()
		switch res.Outcome {
		case inventory.Reserved:
			s.soldOut.clear(a.ID)
			s.publish(c, a, user, req.RequestID, orderID)
			return
		case inventory.Existing:
			c.JSON(http.StatusAccepted, gin.H{"order_id": res.OrderID, "state": order.StateQueued})
			return
		case inventory.Pending:
			// The same request is being published by a concurrent call
			// (a double click). Answer with its outcome, not a guess.
			if time.Now().Add(wait).After(deadline) {
				busy(c, "the same request_id is still being processed; try again")
				return
			}
			time.Sleep(wait)
			now = s.now()
		case inventory.AlreadyPurchased:
			abort(c, http.StatusConflict, codeAlreadyPurchased, "this user already holds an order for this activity")
			return
		case inventory.SoldOut:
			s.soldOut.set(a.ID, now)
			s.snapshotHolders(a, req.RequestID != "")
			abort(c, http.StatusGone, codeSoldOut, "sold out")
			return
		case inventory.NotStarted:
			abort(c, http.StatusForbidden, codeNotStarted, "the sale has not started")
			return
		case inventory.Ended:
			abort(c, http.StatusForbidden, codeEnded, "the sale has ended")
			return
		case inventory.UnknownActivity:
			if loadedOnce {
				busy(c, "activity stock is not loaded in redis; try again")
				return
			}
			loadedOnce = true
			if err := s.restore(c.Request.Context(), a); err != nil {
				s.log.Warn("load activity", "activity_id", a.ID, "err", err)
				busy(c, "inventory unavailable; nothing was reserved, try again")
				return
			}
		default:
			abort(c, http.StatusInternalServerError, codeInternal, fmt.Sprintf("unexpected reserve outcome %d", res.Outcome))
			return
		}
	}
}

// snapshotHolders refreshes, in the background, the holder snapshot of a
// just sold-out activity, so the request_id buys that follow are answered
// from memory unless their user holds a unit. It is called after Redis
// answered SoldOut: whoever reserved before is in the snapshot, and nobody
// can reserve after without a release, which clears it. Only buys with a
// request_id use a snapshot, so one is first read for such a buy
// (withRequestID) and then refreshed by any SoldOut answer, such as the
// flag's TTL probe; a sale without request_ids never reads one. An
// Inventory that cannot list holders, or an activity too large for a
// snapshot, keeps sending request_id buys to Redis.
func (s *Server) snapshotHolders(a *order.Activity, withRequestID bool) {
	hl, ok := s.opts.Inventory.(HolderLister)
	if !ok || a.Stock > maxHolderSnapshot {
		return
	}
	s.soldOut.refreshHolders(a.ID, s.now(), !withRequestID, hl, 5*s.opts.RedisTimeout, s.now, func(err error) {
		s.log.Warn("read the holders of a sold-out activity (buys with a request_id go to Redis meanwhile)",
			"activity_id", a.ID, "err", err)
	})
}

// publish hands the reserved order to the queue and answers 202 only once
// the queue accepted it. If it refuses, the reservation is released so the
// unit goes back on sale, and the client gets 503 with nothing kept. A
// publish can report an error although the message went through (Kafka's
// "some records may have been written"): if a worker already claimed the
// reservation, Release leaves it (the order stands, the user keeps one
// unit and cannot buy a second) and the client still gets 503; a retry with
// the same request_id finds the order.
func (s *Server) publish(c *gin.Context, a *order.Activity, user, requestID, orderID string) {
	rid := c.GetString(keyRequestID)
	payload, err := json.Marshal(order.Message{
		OrderID: orderID, ActivityID: a.ID, UserID: user, RequestID: requestID,
		PriceCents: a.PriceCents, ReservedAt: s.now().UTC(), TraceID: rid,
	})
	if err != nil {
		panic(fmt.Sprintf("marshal order message: %v", err)) // plain struct: cannot fail
	}
	// A client that hangs up must not turn an accepted publish into an
	// ambiguous one: the publish runs to its own deadline.
	detached := context.WithoutCancel(c.Request.Context())
	ctx, cancel := context.WithTimeout(detached, s.opts.PublishTimeout)
	defer cancel()
	start := time.Now()
	err = s.opts.Publisher.Publish(ctx, order.TopicOrders, &mq.Message{
		ID: orderID, Key: user, Payload: payload,
		Headers: map[string]string{"request_id": rid},
	})
	s.metrics.publishLatency.Observe(time.Since(start).Seconds())
	// Release and Confirm get their own deadline: after a publish that
	// timed out, its context is already spent, and a release that fails
	// would keep the unit and the user's mark until the reaper.
	rctx, rcancel := context.WithTimeout(detached, s.opts.RedisTimeout)
	defer rcancel()
	if err != nil {
		reason := "error"
		if errors.Is(err, mq.ErrQueueFull) {
			reason = "full"
		}
		s.metrics.publishFailed.WithLabelValues(reason).Inc()
		s.log.Warn("publish order", "order_id", orderID, "activity_id", a.ID, "request_id", rid, "err", err)
		res, rerr := s.opts.Inventory.Release(rctx, a.ID, orderID)
		switch {
		case rerr != nil:
			// The reaper releases the pending reservation later.
			s.log.Error("release after failed publish", "order_id", orderID, "activity_id", a.ID, "err", rerr)
		case res == inventory.Released:
			s.soldOut.clear(a.ID)
		case res == inventory.NotReleasedClaimed:
			// The message reached the queue after all and a worker took
			// it: the order went through. Releasing would sell the unit
			// twice; the 202 is what this client misses.
			s.log.Warn("publish reported an error but the order went through: a worker claimed its reservation, which is kept",
				"order_id", orderID, "activity_id", a.ID, "user_id", user, "request_id", rid)
			busy(c, "the order queue reported an error, yet the order reached it; retry with the same request_id to get its order_id")
			return
		default:
			s.log.Warn("release after failed publish: reservation already gone", "order_id", orderID, "activity_id", a.ID, "result", res.String())
		}
		if reason == "full" {
			busy(c, "order queue is full; nothing was reserved, try again")
		} else {
			busy(c, "order queue unavailable; nothing was reserved, try again")
		}
		return
	}
	// The order is in the queue: mark the reservation so the reaper leaves
	// it alone. If this fails the worker's claim still wins the race.
	for attempt := 0; attempt < 3; attempt++ {
		if _, err = s.opts.Inventory.Confirm(rctx, a.ID, orderID); err == nil {
			break
		}
	}
	if err != nil {
		s.log.Warn("confirm reservation", "order_id", orderID, "err", err)
	}
	c.JSON(http.StatusAccepted, gin.H{"order_id": orderID, "state": order.StateQueued})
}

func outcomeName(o inventory.Outcome) string {
	switch o {
	case inventory.Reserved:
		return "reserved"
	case inventory.Existing:
		return "existing"
	case inventory.Pending:
		return "pending"
	case inventory.AlreadyPurchased:
		return "already_purchased"
	case inventory.SoldOut:
		return "sold_out"
	case inventory.NotStarted:
		return "not_started"
	case inventory.Ended:
		return "ended"
	case inventory.UnknownActivity:
		return "unknown_activity"
	}
	return "other"
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

// orderRequest reads the caller and the order id of an order route; the
// activity id comes from the order id. A malformed id answers 404 (ok
// false), as an unknown one does.
func orderRequest(c *gin.Context) (user, id string, actID int64, notFound func(), ok bool) {
	user, id = c.GetString(keyUser), c.Param("id")
	notFound = func() { abort(c, http.StatusNotFound, codeNotFound, fmt.Sprintf("order %q not found", id)) }
	actID, _, err := orderid.Parse(id)
	if err != nil {
		notFound()
		return "", "", 0, nil, false
	}
	return user, id, actID, notFound, true
}

func (s *Server) getOrder(c *gin.Context) {
	user, id, actID, notFound, ok := orderRequest(c)
	if !ok {
		return
	}
	o, err := s.opts.Store.GetOrder(c.Request.Context(), id)
	switch {
	case err == nil:
		if o.UserID != user { // another user's order does not exist for this caller
			notFound()
			return
		}
		deadline := o.PayDeadline.UTC()
		c.JSON(http.StatusOK, orderJSON{
			OrderID: o.ID, ActivityID: strconv.FormatInt(o.ActivityID, 10), UserID: o.UserID, State: o.State,
			PriceCents: o.PriceCents, CreatedAt: o.CreatedAt.UTC(), PayDeadline: &deadline,
		})
		return
	case !errors.Is(err, order.ErrNotFound):
		s.log.Warn("read order", "order_id", id, "err", err)
		busy(c, "database unavailable: could not read the order")
		return
	}
	// Not written yet: the reservation in Redis is the order while it waits
	// in the queue.
	res, found, err := s.opts.Inventory.Lookup(c.Request.Context(), actID, id)
	if err != nil {
		s.log.Warn("lookup reservation", "order_id", id, "err", err)
		busy(c, "inventory unavailable: could not read the order")
		return
	}
	if !found || res.UserID != user {
		notFound()
		return
	}
	a, err := s.acts.get(c.Request.Context(), actID)
	switch {
	case errors.Is(err, order.ErrNotFound):
		notFound()
		return
	case err != nil:
		s.log.Warn("read activity", "activity_id", actID, "err", err)
		busy(c, "database unavailable: could not read the order's activity")
		return
	}
	c.JSON(http.StatusOK, orderJSON{
		OrderID: id, ActivityID: strconv.FormatInt(actID, 10), UserID: user, State: order.StateQueued,
		PriceCents: a.PriceCents, CreatedAt: res.ReservedAt.UTC(),
	})
}

// payOrder is the payment callback: it stands for the payment provider's
// notification that the owner paid. It is idempotent (paying a paid order
// answers 200 again), so a provider's retried callback is harmless.
func (s *Server) payOrder(c *gin.Context) {
	user, id, actID, notFound, ok := orderRequest(c)
	if !ok {
		return
	}
	o, err := s.opts.Payer.Pay(c.Request.Context(), id, user)
	switch {
	case err == nil:
		c.JSON(http.StatusOK, gin.H{"order_id": o.ID, "state": o.State})
		return
	case errors.Is(err, order.ErrOrderCancelled):
		abort(c, http.StatusConflict, codeOrderCancelled,
			fmt.Sprintf("order %s was cancelled: its pay deadline passed and the unit went back on sale", id))
		return
	case !errors.Is(err, order.ErrNotFound):
		s.log.Warn("pay order", "order_id", id, "err", err)
		busy(c, "database unavailable: the payment was not recorded, try again")
		return
	}
	// Not stored: still queued if this user holds its reservation.
	res, found, err := s.opts.Inventory.Lookup(c.Request.Context(), actID, id)
	switch {
	case err != nil:
		s.log.Warn("lookup reservation", "order_id", id, "err", err)
		busy(c, "inventory unavailable: could not read the order")
	case found && res.UserID == user:
		abort(c, http.StatusConflict, codeNotPayable,
			fmt.Sprintf("order %s is still queued; pay once GET /api/v1/orders/%s says created", id, id))
	default:
		notFound()
	}
}

// Limits on what an admin may create.
const (
	maxStock      = 10_000_000
	maxPayTimeout = 7 * 24 * 3600
	defPayTimeout = 900
)

func (s *Server) createActivity(c *gin.Context) {
	var req struct {
		Name              string `json:"name"`
		Stock             *int64 `json:"stock"`
		PriceCents        *int64 `json:"price_cents"`
		StartsAt          string `json:"starts_at"`
		EndsAt            string `json:"ends_at"`
		PayTimeoutSeconds *int64 `json:"pay_timeout_seconds"`
	}
	if !decodeJSON(c, &req, false) {
		return
	}
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
		abort(c, http.StatusBadRequest, codeValidation, strings.Join(problems, "; "))
		return
	}
	a := &order.Activity{
		Name: name, Stock: *req.Stock, Available: *req.Stock, PriceCents: *req.PriceCents,
		StartsAt: starts, EndsAt: ends, PayTimeoutSeconds: payTimeout,
	}
	if err := s.opts.Store.CreateActivity(c.Request.Context(), a); err != nil {
		if errors.Is(err, order.ErrInvalidActivity) {
			// Checked above already; the store's own checks have the last word.
			abort(c, http.StatusBadRequest, codeValidation, strings.TrimPrefix(err.Error(), order.ErrInvalidActivity.Error()+": "))
			return
		}
		s.log.Error("create activity", "err", err)
		busy(c, "database unavailable: the activity was not created")
		return
	}
	// Preload now so the first buyer does not pay for it; if Redis is
	// down the first buy or read loads it instead.
	if err := s.restore(c.Request.Context(), a); err != nil {
		s.log.Warn("preload activity stock", "activity_id", a.ID, "err", err)
	}
	s.log.Info("activity created", "activity_id", a.ID, "stock", a.Stock, "starts_at", a.StartsAt, "ends_at", a.EndsAt)
	c.JSON(http.StatusCreated, activityView(a, a.Stock, s.now()))
}

func (s *Server) stats(c *gin.Context) {
	cached, ok := s.activity(c)
	if !ok {
		return
	}
	// Stats are for audits: read the row itself, not the cached copy, and
	// read it with its order counts in one statement so that the database
	// side of the conservation identity holds in the answer.
	snap, err := s.opts.Store.Snapshot(c.Request.Context(), cached.ID)
	if err != nil {
		busy(c, "database unavailable: could not read the activity and its orders")
		return
	}
	a := &snap.Activity
	inv, found, err := s.opts.Inventory.Stats(c.Request.Context(), a.ID)
	if err == nil && !found {
		if err = s.restore(c.Request.Context(), a); err == nil {
			inv, _, err = s.opts.Inventory.Stats(c.Request.Context(), a.ID)
		}
	}
	if err != nil {
		busy(c, "inventory unavailable: "+err.Error())
		return
	}
	created, paid := snap.Created, snap.Paid
	c.JSON(http.StatusOK, gin.H{
		"stock":            a.Stock,
		"remaining":        inv.Remaining,
		"reserved":         inv.Reserved,
		"queued":           inv.Reserved - created - paid,
		"orders_created":   created,
		"orders_paid":      paid,
		"orders_cancelled": snap.Cancelled,
		"db_available":     a.Available,
	})
}
