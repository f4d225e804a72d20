package inventory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// batchCase is a state of one activity and a batch of reserves on it: the
// batch script must answer every request as the single script, called for
// each in order, does, and leave the same keys behind.
type batchCase struct {
	name    string
	stock   int64
	unknown bool                                   // the activity is never loaded
	before  func(t *testing.T, s *Store, id int64) // single calls that set the state up
	reqs    []reserveRequest
	want    []Outcome // per request; 0 means ErrInvalid (order id in use)
}

func rq(user, request, order string, now time.Time) reserveRequest {
	return reserveRequest{userID: user, requestID: request, orderID: order, now: now}
}

func batchCases() []batchCase {
	now := t0.Add(time.Minute)
	reserve := func(user, request, order string) func(t *testing.T, s *Store, id int64) {
		return func(t *testing.T, s *Store, id int64) { mustReserveOn(t, s, id, user, request, order, now) }
	}
	confirmed := func(user, request, order string) func(t *testing.T, s *Store, id int64) {
		return func(t *testing.T, s *Store, id int64) {
			mustReserveOn(t, s, id, user, request, order, now)
			if ok, err := s.Confirm(context.Background(), id, order); err != nil || !ok {
				t.Fatalf("Confirm(%s) = %v, %v", order, ok, err)
			}
		}
	}
	cases := []batchCase{
		{name: "Reserved", stock: 3, reqs: []reserveRequest{rq("u", "r1", "new", now)}, want: []Outcome{Reserved}},
		{name: "Reserved without request id", stock: 3, reqs: []reserveRequest{rq("u", "", "new", now)}, want: []Outcome{Reserved}},
		{name: "Reserved again: own order id retried", stock: 3, before: reserve("u", "r1", "o1"),
			reqs: []reserveRequest{rq("u", "r1", "o1", now)}, want: []Outcome{Reserved}},
		{name: "Existing", stock: 3, before: confirmed("u", "r1", "o1"),
			reqs: []reserveRequest{rq("u", "r1", "new", now)}, want: []Outcome{Existing}},
		{name: "Pending", stock: 3, before: reserve("u", "r1", "o1"),
			reqs: []reserveRequest{rq("u", "r1", "new", now)}, want: []Outcome{Pending}},
		{name: "AlreadyPurchased", stock: 3, before: reserve("u", "r1", "o1"),
			reqs: []reserveRequest{rq("u", "r2", "new", now)}, want: []Outcome{AlreadyPurchased}},
		{name: "AlreadyPurchased without request id", stock: 3, before: reserve("u", "", "o1"),
			reqs: []reserveRequest{rq("u", "", "new", now)}, want: []Outcome{AlreadyPurchased}},
		{name: "SoldOut", stock: 1, before: reserve("other", "rx", "o1"),
			reqs: []reserveRequest{rq("u", "r1", "new", now)}, want: []Outcome{SoldOut}},
		{name: "NotStarted", stock: 3, reqs: []reserveRequest{rq("u", "r1", "new", t0.Add(-time.Millisecond))}, want: []Outcome{NotStarted}},
		{name: "Ended", stock: 3, reqs: []reserveRequest{rq("u", "r1", "new", t0.Add(window))}, want: []Outcome{Ended}},
		{name: "UnknownActivity", stock: 3, unknown: true, reqs: []reserveRequest{rq("u", "r1", "new", now)}, want: []Outcome{UnknownActivity}},
		{name: "order id in use", stock: 3, before: reserve("other", "rx", "o1"),
			reqs: []reserveRequest{rq("u", "r1", "o1", now)}, want: []Outcome{0}},
		{
			name: "every outcome in one batch", stock: 4,
			before: func(t *testing.T, s *Store, id int64) {
				confirmed("ex", "rex", "oex")(t, s, id)
				reserve("pe", "rpe", "ope")(t, s, id)
				reserve("ap", "rap", "oap")(t, s, id)
			},
			reqs: []reserveRequest{
				rq("a", "ra", "na", now),                       // Reserved, the last unit
				rq("ex", "rex", "n1", now),                     // Existing
				rq("pe", "rpe", "n2", now),                     // Pending
				rq("ap", "other", "n3", now),                   // AlreadyPurchased
				rq("b", "rb", "nb", now),                       // SoldOut
				rq("c", "rc", "nc", t0.Add(-time.Millisecond)), // NotStarted
				rq("d", "rd", "nd", t0.Add(window)),            // Ended
				rq("e", "re", "oex", now),                      // order id in use: SoldOut first, as single
				rq("pe", "rpe", "ope", now),                    // own order id retried
			},
			want: []Outcome{Reserved, Existing, Pending, AlreadyPurchased, SoldOut, NotStarted, Ended, SoldOut, Reserved},
		},
		{
			name: "one user twice in a batch, other request ids", stock: 5,
			reqs: []reserveRequest{rq("u", "r1", "n1", now), rq("u", "r2", "n2", now), rq("u", "", "n3", now)},
			want: []Outcome{Reserved, AlreadyPurchased, AlreadyPurchased},
		},
		{
			name: "one user twice in a batch, same request id (double click)", stock: 5,
			reqs: []reserveRequest{rq("u", "r1", "n1", now), rq("u", "r1", "n2", now)},
			want: []Outcome{Reserved, Pending},
		},
		{
			name: "order id twice in a batch", stock: 5,
			reqs: []reserveRequest{rq("u", "r1", "n1", now), rq("v", "r2", "n1", now)},
			want: []Outcome{Reserved, 0},
		},
		{
			name: "more requests than stock", stock: 3,
			reqs: func() []reserveRequest {
				var r []reserveRequest
				for i := range 8 {
					s := strconv.Itoa(i)
					r = append(r, rq("u"+s, "r"+s, "n"+s, now))
				}
				return r
			}(),
			want: []Outcome{Reserved, Reserved, Reserved, SoldOut, SoldOut, SoldOut, SoldOut, SoldOut},
		},
		{
			name: "not loaded, a whole batch", stock: 3, unknown: true,
			reqs: []reserveRequest{rq("u", "r1", "n1", now), rq("v", "", "n2", now)},
			want: []Outcome{UnknownActivity, UnknownActivity},
		},
	}
	return cases
}

func mustReserveOn(t *testing.T, s *Store, id int64, user, request, order string, now time.Time) {
	t.Helper()
	r, err := s.Reserve(context.Background(), id, user, request, order, now)
	if err != nil || r.Outcome != Reserved || r.OrderID != order {
		t.Fatalf("Reserve(%q, %q, %q) = %+v, %v; want Reserved %s", user, request, order, r, err, order)
	}
}

func loadOn(t *testing.T, s *Store, id, stock int64) {
	t.Helper()
	a := Activity{ID: id, Stock: stock, StartsAt: t0, EndsAt: t0.Add(window)}
	if loaded, err := s.Load(context.Background(), a, stock, nil); err != nil || !loaded {
		t.Fatalf("Load(%+v) = %v, %v; want true, nil", a, loaded, err)
	}
}

// activityState is every key of an activity, for comparing two of them.
type activityState struct {
	meta, users, res map[string]string
	pending          []redis.Z
}

func stateOf(t *testing.T, s *Store, id int64) activityState {
	t.Helper()
	ctx := context.Background()
	k := s.keys(id)
	var st activityState
	var err error
	if st.meta, err = s.rdb.HGetAll(ctx, k.meta).Result(); err != nil {
		t.Fatal(err)
	}
	if st.users, err = s.rdb.HGetAll(ctx, k.users).Result(); err != nil {
		t.Fatal(err)
	}
	if st.res, err = s.rdb.HGetAll(ctx, k.res).Result(); err != nil {
		t.Fatal(err)
	}
	if st.pending, err = s.rdb.ZRangeWithScores(ctx, k.pending, 0, -1).Result(); err != nil {
		t.Fatal(err)
	}
	return st
}

func (a activityState) equal(b activityState) bool {
	if !maps.Equal(a.meta, b.meta) || !maps.Equal(a.users, b.users) || !maps.Equal(a.res, b.res) || len(a.pending) != len(b.pending) {
		return false
	}
	for i := range a.pending {
		if a.pending[i] != b.pending[i] {
			return false
		}
	}
	return true
}

// checkBatchCases runs every batchCase twice on s: one activity gets the
// single Reserve per request, in order, another the same requests in one
// reserve_batch call; answers and keys must be the same.
func checkBatchCases(t *testing.T, s *Store) {
	ctx := context.Background()
	for _, tc := range batchCases() {
		t.Run(tc.name, func(t *testing.T) {
			single, batched := randomID(), randomID()
			for _, id := range []int64{single, batched} {
				if !tc.unknown {
					loadOn(t, s, id, tc.stock)
				}
				if tc.before != nil {
					tc.before(t, s, id)
				}
			}
			answers, err := s.reserveBatch(ctx, batched, tc.reqs)
			if err != nil {
				t.Fatalf("reserveBatch: %v", err)
			}
			if len(answers) != len(tc.reqs) {
				t.Fatalf("reserveBatch gave %d answers for %d requests", len(answers), len(tc.reqs))
			}
			for i, r := range tc.reqs {
				res, err := s.Reserve(ctx, single, r.userID, r.requestID, r.orderID, r.now)
				if err != nil && !errors.Is(err, ErrInvalid) {
					t.Fatalf("Reserve %d: %v", i, err)
				}
				b := answers[i]
				if res != b.res || (err == nil) != (b.err == nil) || (b.err != nil && !errors.Is(b.err, ErrInvalid)) {
					t.Errorf("request %d %+v: batch = %+v, %v; single = %+v, %v", i, r, b.res, b.err, res, err)
				}
				got := b.res.Outcome
				if b.err != nil {
					got = 0
				}
				if got != tc.want[i] {
					t.Errorf("request %d %+v: outcome %v (err %v); want %v", i, r, got, b.err, tc.want[i])
				}
			}
			if a, b := stateOf(t, s, single), stateOf(t, s, batched); !a.equal(b) {
				t.Errorf("keys after single calls:\n%+v\nafter the batch:\n%+v", a, b)
			}
		})
	}
	t.Run("confirm", func(t *testing.T) {
		now := t0.Add(time.Minute)
		single, batched := randomID(), randomID()
		for _, id := range []int64{single, batched} {
			loadOn(t, s, id, 10)
			mustReserveOn(t, s, id, "p", "rp", "op", now)    // pending
			mustReserveOn(t, s, id, "q", "rq", "oq", now)    // queued
			mustReserveOn(t, s, id, "w", "rw", "ow", now)    // claimed
			mustReserveOn(t, s, id, "p2", "rp2", "op2", now) // pending, confirmed twice
			if _, err := s.Confirm(ctx, id, "oq"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Claim(ctx, id, []string{"ow"}); err != nil {
				t.Fatal(err)
			}
		}
		ids := []string{"op", "oq", "ow", "gone", "op2", "op2", ""}
		got, err := s.confirmBatch(ctx, batched, ids)
		if err != nil {
			t.Fatal(err)
		}
		want := []bool{true, true, true, false, true, true, false}
		for i, id := range ids {
			ok, err := s.Confirm(ctx, single, id)
			if err != nil {
				t.Fatal(err)
			}
			if got[i] != ok || ok != want[i] {
				t.Errorf("confirm %q: batch %v, single %v; want %v", id, got[i], ok, want[i])
			}
		}
		if a, b := stateOf(t, s, single), stateOf(t, s, batched); !a.equal(b) {
			t.Errorf("keys after single confirms:\n%+v\nafter the batch:\n%+v", a, b)
		}
		if _, err := s.confirmBatch(ctx, randomID(), []string{"x"}); err != nil {
			t.Errorf("confirm batch on an unknown activity: %v; want no error, as single", err)
		}
	})
}

func TestBatchScriptsAnswerAsSingle(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) { checkBatchCases(t, e.s) })
}

// buyer does what the gateway's buy handler does with Reserve and Confirm:
// Reserved -> confirm, Pending -> retry shortly, and reports the order id
// the user was answered with ("" for a refusal).
func buyer(ctx context.Context, inv *Coalescer, id int64, user, request, order string) (string, Outcome, error) {
	for {
		r, err := inv.Reserve(ctx, id, user, request, order, t0.Add(time.Minute))
		if err != nil {
			return "", 0, err
		}
		switch r.Outcome {
		case Reserved:
			if _, err := inv.Confirm(ctx, id, order); err != nil {
				return "", 0, err
			}
			return r.OrderID, r.Outcome, nil
		case Existing:
			return r.OrderID, r.Outcome, nil
		case Pending:
			time.Sleep(time.Millisecond)
		default:
			return "", r.Outcome, nil
		}
	}
}

// checkCoalescerInvariants has many goroutines buy through one Coalescer:
// users more than stock, each user with several request ids and double
// clicks of one request id. Never more reservations than stock, one per
// user, and one order id per request id.
func checkCoalescerInvariants(t *testing.T, s *Store, id int64, cfg CoalesceConfig) {
	t.Helper()
	const stock, users, perUser = 40, 120, 4
	loadOn(t, s, id, stock)
	inv := NewCoalescer(s, cfg)
	ctx := context.Background()
	type answer struct {
		user, request, order string
		outcome              Outcome
	}
	answers := make([]answer, users*perUser)
	var wg sync.WaitGroup
	for i := range answers {
		u := "u" + strconv.Itoa(i%users)
		req := "r" + strconv.Itoa(i%(2*users)) // two request ids per user, each sent twice
		wg.Go(func() {
			oid, out, err := buyer(ctx, inv, id, u, req, "o"+strconv.Itoa(i))
			if err != nil {
				t.Errorf("buy %d: %v", i, err)
			}
			answers[i] = answer{u, req, oid, out}
		})
	}
	wg.Wait()
	perUserOrder := map[string]string{}
	perRequest := map[string]string{}
	for _, a := range answers {
		if a.order == "" {
			if a.outcome != SoldOut && a.outcome != AlreadyPurchased {
				t.Errorf("%+v: unexpected refusal", a)
			}
			continue
		}
		if o, ok := perUserOrder[a.user]; ok && o != a.order {
			t.Errorf("user %s answered with orders %s and %s", a.user, o, a.order)
		}
		perUserOrder[a.user] = a.order
		if o, ok := perRequest[a.request]; ok && o != a.order {
			t.Errorf("request id %s answered with orders %s and %s", a.request, o, a.order)
		}
		perRequest[a.request] = a.order
	}
	if len(perUserOrder) != stock {
		t.Errorf("%d users hold an order; want every one of %d units sold once", len(perUserOrder), stock)
	}
	st, ok, err := s.Stats(ctx, id)
	if want := (Stats{Stock: stock, Remaining: 0, Reserved: stock, Pending: 0}); err != nil || !ok || st != want {
		t.Errorf("Stats = %+v, %v, %v; want %+v", st, ok, err, want)
	}
	held, err := s.rdb.HGetAll(ctx, s.keys(id).users).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(held, perUserOrder) {
		t.Errorf("users hash %v; want the orders answered %v", held, perUserOrder)
	}
}

func TestCoalescerInvariants(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		for _, cfg := range []CoalesceConfig{
			{}, // defaults
			{MaxBatch: 3, MaxWait: 50 * time.Microsecond},
			{MaxBatch: 1000, MaxWait: 2 * time.Millisecond}, // batches close by time
			{MaxBatch: 1}, // coalescing off
		} {
			t.Run(fmt.Sprintf("batch %d wait %v", cfg.MaxBatch, cfg.MaxWait), func(t *testing.T) {
				checkCoalescerInvariants(t, e.s, randomID(), cfg)
			})
		}
	})
}

func TestCoalescerConfig(t *testing.T) {
	c := NewCoalescer(nil, CoalesceConfig{}).Config()
	if c.MaxBatch != DefaultCoalesceMaxBatch || c.MaxWait != DefaultCoalesceMaxWait {
		t.Errorf("defaults = %+v", c)
	}
	c = NewCoalescer(nil, CoalesceConfig{MaxBatch: 7, MaxWait: time.Millisecond}).Config()
	if c.MaxBatch != 7 || c.MaxWait != time.Millisecond {
		t.Errorf("explicit = %+v", c)
	}
}

// gate holds every script call of a client until opened, and says when
// one arrived: a Redis that has the request but has not answered yet.
type gate struct {
	arrived chan struct{}
	open    chan struct{}
	once    sync.Once
}

func newGate(rdb redis.UniversalClient) *gate {
	g := &gate{arrived: make(chan struct{}, 16), open: make(chan struct{})}
	rdb.AddHook(g)
	return g
}

func (g *gate) DialHook(next redis.DialHook) redis.DialHook { return next }
func (g *gate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (g *gate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			select {
			case g.arrived <- struct{}{}:
			default:
			}
			<-g.open
		}
		return next(ctx, cmd)
	}
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func TestCoalescerCancel(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Minute)

	t.Run("cancelled while waiting: never sent", func(t *testing.T) {
		e := newEnv(t, embeddedClient(t))
		id := e.load(t, 5)
		inv := NewCoalescer(e.s, CoalesceConfig{MaxBatch: 2, MaxWait: time.Hour})
		cctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() {
			_, err := inv.Reserve(cctx, id, "gone", "r", "ogone", now)
			errc <- err
		}()
		time.Sleep(20 * time.Millisecond) // let it join the batch
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("Reserve = %v; want context.Canceled alone", err)
		}
		// The second request fills the batch and sends it without the first.
		r, err := inv.Reserve(ctx, id, "stays", "r", "ostays", now)
		if err != nil || r.Outcome != Reserved || r.Remaining != 4 {
			t.Fatalf("Reserve = %+v, %v; want Reserved, 4 left", r, err)
		}
		if _, ok := e.lookup(t, id, "ogone"); ok {
			t.Error("the cancelled request was reserved")
		}
		if st := e.stats(t, id); st.Reserved != 1 {
			t.Errorf("Stats = %+v; want one reservation", st)
		}
	})

	t.Run("context done before the call", func(t *testing.T) {
		e := newEnv(t, embeddedClient(t))
		id := e.load(t, 5)
		inv := NewCoalescer(e.s, CoalesceConfig{MaxWait: time.Millisecond})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := inv.Reserve(cctx, id, "u", "r", "o1", now); !errors.Is(err, context.Canceled) {
			t.Fatalf("Reserve = %v; want context.Canceled", err)
		}
		if _, err := inv.Confirm(cctx, id, "o1"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Confirm = %v; want context.Canceled", err)
		}
		time.Sleep(5 * time.Millisecond)
		if st := e.stats(t, id); st.Reserved != 0 {
			t.Errorf("Stats = %+v; want nothing reserved", st)
		}
	})

	t.Run("cancelled after the batch was sent: error, then the unit comes back", func(t *testing.T) {
		rdb := embeddedClient(t)
		e := newEnv(t, rdb)
		id := e.load(t, 5)
		released := make(chan struct{}, 1)
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		if err := e.s.SubscribeReleases(sctx, func(a int64) {
			if a == id {
				released <- struct{}{}
			}
		}); err != nil {
			t.Fatal(err)
		}
		g := newGate(rdb)
		defer g.release()
		inv := NewCoalescer(e.s, CoalesceConfig{MaxWait: 50 * time.Microsecond})
		cctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() {
			_, err := inv.Reserve(cctx, id, "u", "r", "o1", now)
			errc <- err
		}()
		<-g.arrived // the script call is on its way
		cancel()
		err := <-errc
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Reserve = %v; want ErrUnavailable wrapping context.Canceled", err)
		}
		g.release() // Redis answers now: Reserved, for a caller that left
		select {
		case <-released:
		case <-time.After(5 * time.Second):
			t.Fatal("the abandoned reservation was not released")
		}
		if st, _ := e.lookup(t, id, "o1"); st.OrderID != "" {
			t.Errorf("reservation o1 still held: %+v", st)
		}
		if st := e.stats(t, id); st.Remaining != 5 || st.Reserved != 0 {
			t.Errorf("Stats = %+v; want the unit back", st)
		}
		// The user may buy again, as after a 503.
		r, err := inv.Reserve(ctx, id, "u", "r", "o2", now)
		if err != nil || r.Outcome != Reserved {
			t.Errorf("Reserve after the 503 = %+v, %v; want Reserved", r, err)
		}
	})

	t.Run("redis down: every caller of the batch gets ErrUnavailable", func(t *testing.T) {
		emb, err := NewEmbedded()
		if err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, emb.Client)
		id := e.load(t, 5)
		emb.srv.Close()
		defer emb.Close()
		inv := NewCoalescer(e.s, CoalesceConfig{MaxWait: time.Millisecond})
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				s := strconv.Itoa(i)
				if _, err := inv.Reserve(rctx, id, "u"+s, "r", "o"+s, now); !errors.Is(err, ErrUnavailable) {
					t.Errorf("Reserve = %v; want ErrUnavailable", err)
				}
			})
		}
		wg.Wait()
	})
}

// TestRedisClusterBatches runs the batch scripts and the Coalescer on a
// real three-master cluster: each batch is one activity's keys, one slot.
func TestRedisClusterBatches(t *testing.T) {
	nodes := startCluster(t)
	rdb := clusterClient(t, nodes)
	s := New(rdb, Options{Prefix: "batches"})
	t.Run("batch scripts answer as single", func(t *testing.T) { checkBatchCases(t, s) })
	t.Run("coalescer on activities over every master", func(t *testing.T) {
		for id := int64(1); id <= 6; id++ {
			t.Run("activity "+strconv.FormatInt(id, 10), func(t *testing.T) {
				t.Parallel()
				checkCoalescerInvariants(t, s, id, CoalesceConfig{})
			})
		}
	})
}

// counter counts the EVALSHA calls of a client.
type counter struct{ n atomic.Int64 }

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "evalsha" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func TestCoalescerOneCallPerBatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, e env) {
		const n = 64
		id := e.load(t, n/2)
		cnt := &counter{}
		e.rdb.AddHook(cnt)
		// A full batch is sent at once; the long wait is never reached.
		inv := NewCoalescer(e.s, CoalesceConfig{MaxBatch: n, MaxWait: time.Minute})
		ctx := context.Background()
		outcomes := make([]Outcome, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				s := strconv.Itoa(i)
				r, err := inv.Reserve(ctx, id, "u"+s, "r"+s, "o"+s, t0)
				if err != nil {
					t.Error(err)
				}
				outcomes[i] = r.Outcome
			})
		}
		wg.Wait()
		if got := cnt.n.Load(); got != 1 {
			t.Errorf("%d reserves took %d script calls; want 1", n, got)
		}
		counts := map[Outcome]int{}
		for _, o := range outcomes {
			counts[o]++
		}
		if counts[Reserved] != n/2 || counts[SoldOut] != n/2 {
			t.Errorf("outcomes %v; want %d Reserved and %d SoldOut", counts, n/2, n/2)
		}
	})
}
