package httpapi

// The live dashboard (/dashboard): per activity, the buy requests per second
// by outcome, the queue, the database writes per second, the units left and
// the orders by state, pushed once per interval over Server-Sent Events.
//
// One sampler per watched activity reads the database (one Snapshot
// statement) and Redis (one Stats call) per interval, however many browsers
// watch: a dashboard open on a projector during a spike costs the database
// one cheap query per second, not one per viewer. The request counts come
// from per-activity atomic counters bumped by the observe middleware, so the
// hot path pays an atomic add and no lock.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/seckill/gateway/sale"
	"github.com/flashsale/seckill/order"
)

// outcome is how a buy request ended, as the dashboard counts it: the sale's
// answer (sale.Kind, and the reason of a refused buy token) or the door's
// own refusal (a rate limit, a bad token or body), set where the answer is
// made (apiError.outcome), never read back from the status code.
type outcome uint8

// Outcomes of a buy request.
const (
	outAccepted outcome = iota
	outSoldOut
	outAlreadyPurchased
	outNotOpen
	outTokenMissing
	outTokenInvalid
	outTokenExpired
	outTokenWrongUser
	outTokenWrongActivity
	outRateLimited
	outBusy
	outRejected
	outError
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	outAccepted:         "accepted",
	outSoldOut:          "sold_out",
	outAlreadyPurchased: "already_purchased",
	outNotOpen:          "not_open",
	// Buys refused at the door for their buy token, by reason.
	outTokenMissing:       "token_missing",
	outTokenInvalid:       "token_invalid",
	outTokenExpired:       "token_expired",
	outTokenWrongUser:     "token_wrong_user",
	outTokenWrongActivity: "token_wrong_activity",
	outRateLimited:        "rate_limited",
	outBusy:               "busy",
	outRejected:           "rejected",
	outError:              "error",
}

// tokenOutcome is the outcome of a buy whose token was refused for reason
// (sale.Error.Reason).
func tokenOutcome(reason string) outcome {
	switch reason {
	case "missing":
		return outTokenMissing
	case "invalid":
		return outTokenInvalid
	case "expired":
		return outTokenExpired
	case "wrong_user":
		return outTokenWrongUser
	}
	return outTokenWrongActivity
}

// Dashboard bounds (its settings are Config.DashboardInterval and
// Config.DashboardStreamsPerIP).
const (
	dashboardHistory    = 600             // samples kept per activity (10 minutes at 1/s)
	dashboardIdle       = 5 * time.Minute // a sampler nobody watches stops after this
	maxDashboardStreams = 64              // concurrent SSE streams per process
	dashboardSubBuffer  = 32              // samples a slow viewer may lag before it is dropped
)

type buyCounters struct{ n [numOutcomes]atomic.Int64 }

func (bc *buyCounters) load() (out [numOutcomes]int64) {
	for i := range bc.n {
		out[i] = bc.n[i].Load()
	}
	return out
}

// DashboardSample is one point of an activity's live numbers.
type DashboardSample struct {
	T          time.Time `json:"t"`
	ActivityID string    `json:"activity_id"`
	Name       string    `json:"name"`
	State      string    `json:"state"`
	Stock      int64     `json:"stock"`
	Remaining  int64     `json:"remaining"` // units left (Redis)
	Queued     int64     `json:"queued"`    // accepted, not yet written (reserved - created - paid)
	Created    int64     `json:"created"`
	Paid       int64     `json:"paid"`
	Cancelled  int64     `json:"cancelled"`
	// DBAvailable is the activity row's available units.
	DBAvailable int64 `json:"db_available"`
	// IngressPerS is buy requests per second over the last interval, by
	// outcome; IngressTotal the counts since the process started.
	IngressPerS  map[string]float64 `json:"ingress_per_s"`
	IngressTotal map[string]int64   `json:"ingress_total"`
	// DBWritesPerS is orders written to the database per second (rows of
	// this activity that appeared over the last interval).
	DBWritesPerS float64 `json:"db_writes_per_s"`
	// QueueDepth is this process's queue depth (all activities: the order
	// messages not yet written, or the Kafka consumer lag); nil when
	// unknown.
	QueueDepth *float64 `json:"queue_depth"`
	// WaitingRoom is the activity's waiting room (admission queue) as the
	// sample read its inlet; nil for an activity with open admission.
	WaitingRoom *WaitingRoomSample `json:"waiting_room,omitempty"`
	// Error says which backend could not be read for this sample; the
	// numbers it could not refresh are the previous sample's.
	Error string `json:"error,omitempty"`
}

// WaitingRoomSample is a waiting room's inlet in a dashboard sample.
type WaitingRoomSample struct {
	Waiting  int64 `json:"waiting"`  // joined, not yet admitted
	Admitted int64 `json:"admitted"` // admitted so far (passed-over places included)
	Active   int64 `json:"active"`   // admitted, holding a pass unused
	Skipped  int64 `json:"skipped"`  // admitted, the pass lapsed unused
	SoldOut  bool  `json:"sold_out"`
}

type dashSub chan DashboardSample

type sampler struct {
	id        int64
	subs      map[dashSub]struct{}
	hist      []DashboardSample
	idleSince time.Time

	// Previous readings, for rates. Only the sampler goroutine touches them.
	prevAt     time.Time
	prevBuys   [numOutcomes]int64
	prevRows   int64
	havePrev   bool
	last       DashboardSample
	lastDBRead bool
}

type dashboard struct {
	s        *Server
	interval time.Duration
	ctx      context.Context
	cancel   context.CancelFunc
	counters sync.Map // int64 -> *buyCounters

	// Open SSE streams, in total and per client IP: one address cannot
	// take every slot and lock the other viewers out.
	streamMu    sync.Mutex
	streams     int
	streamsByIP map[string]int
	perIP       int

	mu       sync.Mutex
	closed   bool
	samplers map[int64]*sampler
	wg       sync.WaitGroup
}

func newDashboard(s *Server) *dashboard {
	ctx, cancel := context.WithCancel(context.Background())
	return &dashboard{
		s: s, interval: s.cfg.DashboardInterval, ctx: ctx, cancel: cancel, samplers: make(map[int64]*sampler),
		streamsByIP: make(map[string]int), perIP: s.cfg.DashboardStreamsPerIP,
	}
}

// acquireStream takes a stream slot for client ip, or says which cap is
// reached.
func (d *dashboard) acquireStream(ip string) error {
	d.streamMu.Lock()
	defer d.streamMu.Unlock()
	if d.streams >= maxDashboardStreams {
		return errBusy(fmt.Sprintf("too many dashboard viewers (at most %d streams)", maxDashboardStreams), nil)
	}
	if d.streamsByIP[ip] >= d.perIP {
		return errBusy(fmt.Sprintf("too many dashboard streams from your address (per-IP limit: at most %d streams per client IP)", d.perIP), nil)
	}
	d.streams++
	d.streamsByIP[ip]++
	return nil
}

// releaseStream gives back a slot acquireStream took.
func (d *dashboard) releaseStream(ip string) {
	d.streamMu.Lock()
	defer d.streamMu.Unlock()
	d.streams--
	if d.streamsByIP[ip]--; d.streamsByIP[ip] <= 0 {
		delete(d.streamsByIP, ip) // the map holds only addresses with a stream open
	}
}

// record counts a buy answer for its activity. Counters exist only for
// activities that are known to exist (an answer that needed the activity,
// or a dashboard watching it), so random ids cannot grow the map.
func (d *dashboard) record(idParam string, out outcome) {
	id, err := strconv.ParseInt(idParam, 10, 64)
	if err != nil || id <= 0 {
		return
	}
	v, ok := d.counters.Load(id)
	if !ok {
		switch out {
		case outAccepted, outSoldOut, outAlreadyPurchased, outNotOpen:
			v, _ = d.counters.LoadOrStore(id, new(buyCounters))
		default:
			return
		}
	}
	v.(*buyCounters).n[out].Add(1)
}

func (d *dashboard) countersFor(id int64) *buyCounters {
	v, _ := d.counters.LoadOrStore(id, new(buyCounters))
	return v.(*buyCounters)
}

var errDashboardClosed = errBusy("dashboard closed: the server is shutting down", nil)

// subscribe starts watching activity id: it returns a channel of new
// samples and the history so far.
func (d *dashboard) subscribe(id int64) (dashSub, []DashboardSample, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, nil, errDashboardClosed
	}
	sp, ok := d.samplers[id]
	if !ok {
		d.countersFor(id)
		sp = &sampler{id: id, subs: make(map[dashSub]struct{})}
		d.samplers[id] = sp
		d.wg.Add(1)
		go d.run(sp)
	}
	ch := make(dashSub, dashboardSubBuffer)
	sp.subs[ch] = struct{}{}
	hist := make([]DashboardSample, len(sp.hist))
	copy(hist, sp.hist)
	return ch, hist, nil
}

func (d *dashboard) unsubscribe(id int64, ch dashSub) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sp, ok := d.samplers[id]
	if !ok {
		return
	}
	if _, ok := sp.subs[ch]; ok {
		delete(sp.subs, ch)
		close(ch)
	}
	if len(sp.subs) == 0 {
		sp.idleSince = time.Now()
	}
}

// run samples one activity every interval until nobody has watched it for
// dashboardIdle, or the dashboard closes.
func (d *dashboard) run(sp *sampler) {
	defer d.wg.Done()
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		smp := d.take(sp)
		d.mu.Lock()
		sp.hist = append(sp.hist, smp)
		if n := len(sp.hist); n > dashboardHistory {
			sp.hist = append(sp.hist[:0:0], sp.hist[n-dashboardHistory:]...)
		}
		for ch := range sp.subs {
			select {
			case ch <- smp:
			default: // too slow: drop it; the browser reconnects and gets the history
				delete(sp.subs, ch)
				close(ch)
			}
		}
		if len(sp.subs) == 0 && !sp.idleSince.IsZero() && time.Since(sp.idleSince) > dashboardIdle {
			delete(d.samplers, sp.id)
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		select {
		case <-d.ctx.Done():
			d.mu.Lock()
			for ch := range sp.subs {
				delete(sp.subs, ch)
				close(ch)
			}
			d.mu.Unlock()
			return
		case <-t.C:
		}
	}
}

// take reads one sample of sp's activity.
func (d *dashboard) take(sp *sampler) DashboardSample {
	s := d.s
	ctx, cancel := context.WithTimeout(d.ctx, max(d.interval, 2*time.Second))
	defer cancel()
	now := s.now()
	smp := sp.last // what cannot be read now keeps its last value
	prevErr := sp.last.Error
	smp.T = now.UTC()
	smp.ActivityID = strconv.FormatInt(sp.id, 10)
	smp.Error = ""
	// What the viewer reads names the backend; the errors themselves go
	// to the log only.
	var problems []string
	var errs []error

	snap, err := s.sale.Snapshot(ctx, sp.id)
	dbOK := err == nil
	if dbOK {
		a := &snap.Activity
		smp.Name, smp.Stock, smp.DBAvailable = a.Name, a.Stock, a.Available
		smp.Created, smp.Paid, smp.Cancelled = snap.Created, snap.Paid, snap.Cancelled
		inv, found, ierr := s.sale.StockStats(ctx, sp.id)
		switch {
		case ierr != nil:
			problems = append(problems, "redis: could not read the stock")
			errs = append(errs, ierr)
		case !found:
			smp.Remaining, smp.Queued = a.Available, 0
		default:
			smp.Remaining = inv.Remaining
			smp.Queued = max(0, inv.Reserved-snap.Created-snap.Paid)
		}
		smp.State = sale.View(a, smp.Remaining, now).State
		smp.WaitingRoom = nil
		if a.Admission == order.AdmissionQueue {
			if in, err := s.sale.QueueInlet(ctx, sp.id); err == nil {
				smp.WaitingRoom = &WaitingRoomSample{Waiting: max(in.Total-in.Head, 0), Admitted: in.Head,
					Active: in.Active, Skipped: in.Skipped, SoldOut: in.SoldOut}
			} else {
				problems = append(problems, "redis: could not read the waiting room")
				errs = append(errs, err)
			}
		}
	} else {
		problems = append(problems, "database: could not read the activity and its orders")
		errs = append(errs, err)
	}

	buys := d.countersFor(sp.id).load()
	rows := smp.Created + smp.Paid + smp.Cancelled
	smp.IngressPerS = make(map[string]float64, numOutcomes)
	smp.IngressTotal = make(map[string]int64, numOutcomes)
	dt := now.Sub(sp.prevAt).Seconds()
	for i, name := range outcomeNames {
		smp.IngressTotal[name] = buys[i]
		rate := 0.0
		if sp.havePrev && dt > 0 {
			rate = float64(buys[i]-sp.prevBuys[i]) / dt
		}
		smp.IngressPerS[name] = rate
	}
	smp.DBWritesPerS = 0
	if sp.havePrev && dt > 0 && dbOK && sp.lastDBRead {
		smp.DBWritesPerS = float64(max(0, rows-sp.prevRows)) / dt
	}
	smp.QueueDepth = nil
	if s.deps.QueueDepth != nil {
		if depth, ok := s.deps.QueueDepth(); ok {
			f := float64(depth)
			smp.QueueDepth = &f
		}
	}
	if len(problems) > 0 {
		smp.Error = fmt.Sprint(problems)
		// Once per outage, not once per interval.
		if prevErr == "" && d.ctx.Err() == nil {
			s.log.Warn("dashboard: backend unreadable, showing the last numbers", "activity_id", sp.id, "err", errors.Join(errs...))
		}
	}

	sp.prevAt, sp.prevBuys, sp.havePrev = now, buys, true
	if dbOK {
		sp.prevRows = rows
	}
	sp.lastDBRead = dbOK
	sp.last = smp
	return smp
}

// close ends every stream and sampler and waits for the samplers.
func (d *dashboard) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
}

// CloseStreams ends the dashboard's live streams and stops its samplers:
// long-lived SSE responses would otherwise hold http.Server.Shutdown until
// its deadline. Register it with http.Server.RegisterOnShutdown and call it
// again before closing the backends (it waits for the samplers, which read
// the database and Redis). Safe to call more than once.
func (s *Server) CloseStreams() { s.dash.close() }
