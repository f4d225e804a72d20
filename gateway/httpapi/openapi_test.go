package httpapi_test

// docs/openapi.yaml is the gateway's HTTP contract, which teams that copy
// the system generate their clients from. These tests keep it true:
//
//   - TestOpenAPIDocumentsEveryRoute: the document's operations are the
//     router's routes, no more and no fewer.
//   - TestOpenAPIExamples: every example of the document is run against the
//     real handlers. For each response example, the scenario of the same
//     name (exampleScenarios) sets up what it needs (an activity, an order,
//     a backend down...) on one of a few gateways (variant), and the
//     operation is called as the document says: its path, its request
//     example of the same name (else its success one), the token its
//     security names. The answer must have the status the example sits
//     under, validate against that response's schema and headers
//     (openapi3filter), and carry the example's code and state. Every
//     example must itself validate against its schema, and a request that
//     succeeded against the document's request.
//   - TestOpenAPIDocumentsSharedAnswers: the answers of the middleware (401,
//     429, 413...) are in every operation they apply to.
//
// Adding a route: its operation in the document, with a named example for
// every response; TestOpenAPIExamples then names each example that has no
// scenario yet. The document is outside this module, where go test's cache
// does not look: after editing only the document, run with -count=1 (make
// test does).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/flashsale/seckill/gateway/httpapi"
	"github.com/flashsale/seckill/gateway/ratelimit"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/platform/process"
	"github.com/flashsale/seckill/static"
)

// openAPIFile is the contract, from this package's directory.
const openAPIFile = "../../docs/openapi.yaml"

// staticFallback marks an operation served by the router's fallback (the
// web pages), not by a route of its own.
const staticFallback = "x-static-fallback"

// loadOpenAPI loads the document and checks that it is valid OpenAPI 3
// (which includes its examples against their schemas).
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(openAPIFile)
	if err != nil {
		t.Fatalf("load %s: %v", openAPIFile, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("%s is not a valid OpenAPI 3 document: %v", openAPIFile, err)
	}
	return doc
}

// operation is one method of one path of the document.
type operation struct {
	method, path string
	item         *openapi3.PathItem
	op           *openapi3.Operation
}

func (o operation) String() string { return o.method + " " + o.path }

// operations are the document's operations, by path then method.
func operations(doc *openapi3.T) []operation {
	var out []operation
	for _, path := range slices.Sorted(maps.Keys(doc.Paths.Map())) {
		item := doc.Paths.Value(path)
		ops := item.Operations()
		for _, method := range slices.Sorted(maps.Keys(ops)) {
			out = append(out, operation{method: method, path: path, item: item, op: ops[method]})
		}
	}
	return out
}

// openAPIPath writes a gin route's path (/orders/:id) as the document does
// (/orders/{id}).
func openAPIPath(ginPath string) string {
	segs := strings.Split(ginPath, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	f := newFixture(t, fixtureOpts{})
	routed := map[string]bool{}
	for _, r := range f.srv.Routes() {
		routed[r.Method+" "+openAPIPath(r.Path)] = true
	}
	documented := map[string]bool{}
	for _, o := range operations(doc) {
		if o.op.Extensions[staticFallback] == true {
			if routed[o.String()] {
				t.Errorf("%s is marked %s in %s, but the router has a route for it", o, staticFallback, openAPIFile)
			}
			continue
		}
		documented[o.String()] = true
	}
	for _, r := range slices.Sorted(maps.Keys(routed)) {
		if !documented[r] {
			t.Errorf("route %s is not in %s: add its operation under paths", r, openAPIFile)
		}
	}
	for _, d := range slices.Sorted(maps.Keys(documented)) {
		if !routed[d] {
			t.Errorf("%s documents %s, which the router does not serve", openAPIFile, d)
		}
	}
}

// TestOpenAPIDocumentsSharedAnswers: the answers the door gives whatever
// the handler (server.go's middleware) are in every operation they apply
// to. The examples test runs what the document says; this catches what it
// leaves out.
func TestOpenAPIDocumentsSharedAnswers(t *testing.T) {
	doc := loadOpenAPI(t)
	api := func(o operation) bool { return strings.HasPrefix(o.path, "/api/v1/") }
	rules := []struct {
		status  string
		applies func(o operation) bool
		why     string
	}{
		{"429", api, "every /api/v1 route is behind the global and per-IP limits"},
		{"500", api, "a handler's bug (or a panic) answers 500 INTERNAL"},
		{"400", func(o operation) bool { return o.op.RequestBody != nil }, "a body that is not JSON of its shape is 400 BAD_JSON"},
		{"413", func(o operation) bool { return o.op.RequestBody != nil }, "a body over the limit is 413 BODY_TOO_LARGE"},
		{"404", func(o operation) bool { return api(o) && strings.Contains(o.path, "{") }, "an id or topic that names nothing is 404"},
		{"401", func(o operation) bool {
			sec := o.op.Security
			return sec != nil && slices.ContainsFunc(*sec, func(r openapi3.SecurityRequirement) bool { return len(r) > 0 })
		}, "a route that takes a token answers 401 without a valid one"},
	}
	for _, o := range operations(doc) {
		for _, r := range rules {
			if r.applies(o) && o.op.Responses.Value(r.status) == nil {
				t.Errorf("%s does not document %s: %s", o, r.status, r.why)
			}
		}
	}
}

// example is one named example of a response.
type example struct {
	status int
	name   string
	value  any
}

// responseExamples are the examples of o's responses, by status then name,
// and the statuses that have none.
func responseExamples(t *testing.T, o operation) (exs []example, bare []string) {
	t.Helper()
	for _, status := range slices.Sorted(maps.Keys(o.op.Responses.Map())) {
		code, err := strconv.Atoi(status)
		if err != nil {
			t.Errorf("%s: response %q: want a status code, not a range or default (a client must know each answer)", o, status)
			continue
		}
		resp := o.op.Responses.Value(status).Value
		n := 0
		for _, mt := range slices.Sorted(maps.Keys(resp.Content)) {
			media := resp.Content[mt]
			for _, name := range slices.Sorted(maps.Keys(media.Examples)) {
				v := media.Examples[name].Value.Value
				checkExample(t, fmt.Sprintf("%s: %d %s example %q", o, code, mt, name), media.Schema, v, openapi3.VisitAsResponse())
				exs = append(exs, example{status: code, name: name, value: v})
				n++
			}
		}
		if n == 0 {
			bare = append(bare, status)
		}
	}
	return exs, bare
}

// requestExamples are the examples of o's JSON request body, by name.
func requestExamples(t *testing.T, o operation) map[string]any {
	t.Helper()
	out := map[string]any{}
	if o.op.RequestBody == nil {
		return out
	}
	for mt, media := range o.op.RequestBody.Value.Content {
		for name, ex := range media.Examples {
			checkExample(t, fmt.Sprintf("%s: request %s example %q", o, mt, name), media.Schema, ex.Value.Value, openapi3.VisitAsRequest())
			out[name] = ex.Value.Value
		}
	}
	return out
}

// checkExample fails the test unless value validates against schema. The
// loader's Validate checks examples as well; this does not depend on its
// defaults.
func checkExample(t *testing.T, where string, schema *openapi3.SchemaRef, value any, mode openapi3.SchemaValidationOption) {
	t.Helper()
	if schema == nil {
		t.Errorf("%s: no schema", where)
		return
	}
	if err := schema.Value.VisitJSON(value, mode, openapi3.MultiErrors()); err != nil {
		t.Errorf("%s does not validate against its schema: %v", where, err)
	}
}

func TestOpenAPIExamples(t *testing.T) {
	// The stream and the pages are not JSON: openapi3filter reads them
	// with these (the registry is the library's).
	openapi3filter.RegisterBodyDecoder("text/event-stream", decodeEventStream)
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)

	doc := loadOpenAPI(t)
	gateways := map[variant]*fixture{}
	for _, v := range []variant{demo, production, writing, limited, down, slowBody} {
		gateways[v] = newFixture(t, fixtureOpts{tweak: v.tweak})
		if v == writing {
			gateways[v].startWorker()
		}
	}
	scenarios := exampleScenarios()
	used := map[string]bool{}
	for _, o := range operations(doc) {
		if o.op.OperationID == "" {
			t.Errorf("%s has no operationId (the name a generated client gives it)", o)
			continue
		}
		for _, p := range slices.Concat(o.item.Parameters, o.op.Parameters) {
			checkExample(t, fmt.Sprintf("%s: parameter %s example", o, p.Value.Name), p.Value.Schema, p.Value.Example, openapi3.VisitAsRequest())
		}
		reqExamples := requestExamples(t, o)
		exs, bare := responseExamples(t, o)
		for _, status := range bare {
			// A 500 is a bug: nothing makes one on purpose. Its body is
			// the Error every other error answer validates against.
			if status != "500" {
				t.Errorf("%s: response %s has no example; give it one (and its scenario)", o, status)
			}
		}
		success := ""
		for _, ex := range exs {
			if ex.status/100 == 2 && success == "" {
				success = ex.name
			}
		}
		if success == "" {
			t.Errorf("%s has no example of a success", o)
		}
		reqUsed := map[string]bool{}
		for _, ex := range exs {
			key := o.op.OperationID + "/" + ex.name
			sc, ok := scenarios[key]
			if ok {
				used[key] = true
			} else if sc, ok = scenarios[ex.name]; ok {
				used[ex.name] = true
			} else {
				t.Errorf("%s: %d example %q has no scenario: add %q to exampleScenarios with what it needs", o, ex.status, ex.name, key)
				continue
			}
			body, ok := reqExamples[ex.name]
			if ok {
				reqUsed[ex.name] = true
			} else {
				body = reqExamples[success]
			}
			t.Run(fmt.Sprintf("%s/%d/%s", o.op.OperationID, ex.status, ex.name), func(t *testing.T) {
				runExample(t, doc, o, ex, sc, gateways[sc.variant].with(t), body)
			})
		}
		for name := range reqExamples {
			if !reqUsed[name] && name != success {
				t.Errorf("%s: request example %q is sent by no response example of that name", o, name)
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(scenarios)) {
		if !used[key] {
			t.Errorf("scenario %q matches no example of %s", key, openAPIFile)
		}
	}
}

// with is f for subtest t: the same gateway, failing t.
func (f *fixture) with(t testing.TB) *fixture {
	c := *f
	c.t = t
	return &c
}

// variant is one of the gateways the examples run on.
type variant string

const (
	// demo: demo mode, buy tokens off, the web pages, a NATS-like queue
	// with dead letters (fakeDeadLetters), a dashboard that samples fast.
	demo variant = "demo"
	// production: demo mode off, buy tokens required, no web pages,
	// /metrics on its own listener, a Kafka-like queue (no dead letters).
	production variant = "production"
	// writing: demo with an order worker, so orders reach created.
	writing variant = "writing"
	// limited: demo whose global rate limit refuses everything.
	limited variant = "limited"
	// down: demo whose database, payments and queue fail.
	down variant = "down"
	// slowBody: demo that waits 50 ms for a buy's body.
	slowBody variant = "slow body"
)

// errDown is what a backend of the down variant answers.
var errDown = errors.New("backend down (test)")

func (v variant) tweak(o *options) {
	if v != production {
		pages, err := fs.Sub(static.FS, "web")
		if err != nil {
			panic(err) // the embedded tree has web/
		}
		o.Static = http.FS(pages)
		o.DeadLetters = fakeDeadLetters{}
		fastDashboard(o)
	}
	switch v {
	case production:
		o.Demo, o.RequireBuyToken, o.MetricsElsewhere = false, true, true
	case limited:
		o.Limits.Global = ratelimit.NewGlobal(0, 0)
	case down:
		o.Store, o.Payer = downStore{}, downPayer{}
		o.Ready = process.Readiness(process.Check{Name: "database", Ping: func(context.Context) error { return errDown }})
		o.DeadLetters = fakeDeadLetters{err: errDown}
	case slowBody:
		o.BuyBodyTimeout = 50 * time.Millisecond
	}
}

// downStore is a database that does not answer.
type downStore struct{}

func (downStore) CreateActivity(context.Context, *order.Activity) error { return errDown }
func (downStore) GetActivity(context.Context, int64) (*order.Activity, error) {
	return nil, errDown
}
func (downStore) GetOrder(context.Context, string) (*order.Order, error) { return nil, errDown }
func (downStore) Snapshot(context.Context, int64) (*order.Snapshot, error) {
	return nil, errDown
}
func (downStore) ListActivities(context.Context) ([]order.Activity, error) { return nil, errDown }

type downPayer struct{}

func (downPayer) Pay(context.Context, string, string) (*order.Order, error) { return nil, errDown }

// fakeDeadLetters is a queue with one dead letter on each topic, or, with
// err, one that cannot be read. The NATS one is tested in gateway/app.
type fakeDeadLetters struct{ err error }

func (fakeDeadLetters) Topics() []string { return []string{"orders", "order-timeouts", "order-events"} }

func (d fakeDeadLetters) List(context.Context, string, int) ([]httpapi.DeadLetter, int, error) {
	if d.err != nil {
		return nil, 0, d.err
	}
	return []httpapi.DeadLetter{{
		Seq: 1, ID: "0249881406908399620-1", Key: "alice", Reason: "malformed", Attempts: "5",
		StoredAt: time.Now().UTC(), Headers: map[string]string{"request_id": "r-1"}, Payload: `{"order_id":"0249881406908399620-1"}`,
	}}, 1, nil
}

func (d fakeDeadLetters) Replay(_ context.Context, _ string, seqs []uint64) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if len(seqs) == 0 {
		return 1, nil
	}
	return len(seqs), nil
}

func (d fakeDeadLetters) Discard(context.Context, string, []uint64) error { return d.err }

// request is the call an example makes, as its scenario adjusts it.
type request struct {
	path  map[string]string // path parameters, preset to the document's examples
	query url.Values
	// user is who the user token is issued to (when the operation takes
	// one); a name of this example's own.
	user string
	// anonymous sends no token, whatever the operation's security says.
	anonymous bool
	// body is the request example (a copy); raw, when set, is sent
	// instead.
	body map[string]any
	raw  io.Reader
}

// scenario is the state an example needs and how its call differs from
// the operation's plain one.
type scenario struct {
	variant variant
	setup   func(t *testing.T, f *fixture, r *request) // nil: nothing to set up
}

// exampleScenarios are keyed by "operationId/example", or by the example's
// name alone for the shared answers of components/responses (any operation
// gets them the same way).
func exampleScenarios() map[string]scenario {
	open := func(stock int64) func(*testing.T, *fixture, *request) {
		return func(_ *testing.T, f *fixture, r *request) { r.path["id"] = openActivity(f, stock) }
	}
	upcoming := func(_ *testing.T, f *fixture, r *request) {
		r.path["id"] = f.createActivity(1, time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))
	}
	ended := func(_ *testing.T, f *fixture, r *request) {
		r.path["id"] = f.createActivity(1, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	}
	// anOrder buys a unit of a new activity as r.user; with state, it
	// waits until the order is in it.
	anOrder := func(state string) func(*testing.T, *fixture, *request) {
		return func(t *testing.T, f *fixture, r *request) {
			res := f.buy(openActivity(f, 5), r.user, "")
			id, _ := res.body["order_id"].(string)
			if res.status != http.StatusAccepted || id == "" {
				t.Fatalf("buy: %d %s", res.status, res.raw)
			}
			if state != "" {
				f.waitState(id, r.user, state)
			}
			r.path["id"] = id
		}
	}
	raw := func(body string) func(*testing.T, *fixture, *request) {
		return func(_ *testing.T, _ *fixture, r *request) { r.raw = strings.NewReader(body) }
	}
	// buyWith opens an activity and puts the buy token token(f, activity,
	// user) in the buy.
	buyWith := func(token func(t *testing.T, f *fixture, act, user string) string) func(*testing.T, *fixture, *request) {
		return func(t *testing.T, f *fixture, r *request) {
			act := openActivity(f, 5)
			r.path["id"] = act
			r.body["buy_token"] = token(t, f, act, r.user)
		}
	}
	// queueAct creates an activity with queue admission, starting at
	// starts (stock units); joined join it first, in order.
	queueAct := func(stock int64, starts time.Duration, joined ...string) func(*testing.T, *fixture, *request) {
		return func(t *testing.T, f *fixture, r *request) {
			r.path["id"] = f.createQueueActivity(stock, time.Now().Add(starts))
			for _, u := range joined {
				if res := f.join(r.path["id"], u); res.status != http.StatusOK {
					t.Fatalf("%s joins: %d %s", u, res.status, res.raw)
				}
			}
		}
	}
	return map[string]scenario{
		// The shared answers.
		"unauthorized": {production, func(_ *testing.T, _ *fixture, r *request) { r.anonymous = true }},
		"rate_limited": {limited, nil},
		"body_too_large": {demo, func(_ *testing.T, _ *fixture, r *request) {
			r.raw = bytes.NewReader(make([]byte, httpapi.DefaultMaxBodyBytes+1))
		}},
		"bad_json": {demo, raw(`{"`)},
		"not_found": {demo, func(_ *testing.T, _ *fixture, r *request) {
			for k := range r.path {
				r.path[k] = "999999"
			}
		}},
		"busy":            {down, nil},
		"unavailable":     {down, nil},
		"not_implemented": {production, nil},

		"getHealth/ok":                 {demo, nil},
		"getReadiness/ready":           {demo, nil},
		"getMetrics/metrics":           {demo, nil},
		"getMetrics/metrics_elsewhere": {production, nil},
		"getDashboardPage/page":        {demo, nil},
		"getDashboardPage/no_pages":    {production, nil},
		"getSalePage/page":             {demo, nil},
		"getSalePage/no_pages":         {production, nil},
		"createDemoToken/token":        {demo, nil},
		"createDemoToken/validation":   {demo, raw(`{"user_id":"a b"}`)},
		"createDemoToken/demo_off":     {production, nil},
		"listActivities/storefront":    {demo, upcoming},
		"getActivity/active":           {demo, open(5)},
		"getBuyToken/issued":           {demo, open(5)},
		"getBuyToken/queue_admission":  {demo, queueAct(5, -time.Second)},
		"joinQueue/prequeue":           {demo, queueAct(5, 30*time.Second)},
		"joinQueue/waiting":            {demo, queueAct(1, -time.Second, "first-in-line")},
		"joinQueue/not_open_yet":       {demo, queueAct(5, 10*time.Minute)},
		"joinQueue/ended": {demo, func(t *testing.T, f *fixture, r *request) {
			res := f.call("POST", "/api/v1/admin/activities", adminToken, jsonBody(map[string]any{
				"name": "over", "stock": 1, "price_cents": 1, "admission": "queue",
				"starts_at": time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339), "ends_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
			}))
			if res.status != http.StatusCreated {
				t.Fatalf("create: %d %s", res.status, res.raw)
			}
			r.path["id"] = res.body["id"].(string)
		}},
		"joinQueue/open_admission": {demo, open(5)},
		"getQueue/admitted": {demo, func(t *testing.T, f *fixture, r *request) {
			queueAct(5, -time.Second, r.user)(t, f, r)
		}},
		"getQueue/sold_out": {demo, func(t *testing.T, f *fixture, r *request) {
			queueAct(1, -time.Second, "rival")(t, f, r)
			q := f.queue(r.path["id"], "rival")
			pass, _ := q.body["buy_token"].(string)
			if q.body["state"] != "admitted" || pass == "" {
				t.Fatalf("the rival's place: %d %s", q.status, q.raw)
			}
			if res := f.call("POST", "/api/v1/activities/"+r.path["id"]+"/orders", f.token("rival"),
				jsonBody(map[string]string{"buy_token": pass})); res.status != http.StatusAccepted {
				t.Fatalf("the rival's buy: %d %s", res.status, res.raw)
			}
			if res := f.join(r.path["id"], r.user); res.status != http.StatusOK {
				t.Fatalf("join: %d %s", res.status, res.raw)
			}
		}},
		"getQueue/not_in_queue":           {demo, queueAct(5, -time.Second)},
		"getQueue/open_admission":         {demo, open(5)},
		"getQueueAudit/audit":             {demo, queueAct(1, -time.Second, "bob", "alice")},
		"getQueueAudit/open_admission":    {demo, open(5)},
		"getBuyToken/not_started":         {demo, upcoming},
		"getBuyToken/ended":               {demo, ended},
		"placeOrder/queued":               {production, buyWith(func(_ *testing.T, f *fixture, act, user string) string { return f.buyToken(act, user) })},
		"placeOrder/validation":           {demo, raw(`{"request_id":"has spaces"}`)},
		"placeOrder/not_started":          {demo, upcoming},
		"placeOrder/ended":                {demo, ended},
		"placeOrder/buy_token_missing":    {production, open(5)},
		"placeOrder/buy_token_invalid":    {production, open(5)},
		"placeOrder/buy_token_expired":    {production, buyWith(func(t *testing.T, _ *fixture, act, user string) string { return expiredBuyToken(t, act, user) })},
		"placeOrder/buy_token_wrong_user": {production, buyWith(func(_ *testing.T, f *fixture, act, user string) string { return f.buyToken(act, user+"-other") })},
		"placeOrder/buy_token_wrong_activity": {production, buyWith(func(_ *testing.T, f *fixture, _, user string) string {
			return f.buyToken(openActivity(f, 5), user)
		})},
		"placeOrder/request_timeout": {slowBody, func(t *testing.T, f *fixture, r *request) {
			r.path["id"] = openActivity(f, 5)
			stalled := make(chan struct{})
			t.Cleanup(func() { close(stalled) })
			r.raw = io.MultiReader(strings.NewReader(`{"request_id":`), blockedReader(stalled))
		}},
		"placeOrder/already_purchased": {demo, func(t *testing.T, f *fixture, r *request) {
			r.path["id"] = openActivity(f, 5)
			if res := f.buy(r.path["id"], r.user, "an-earlier-request"); res.status != http.StatusAccepted {
				t.Fatalf("first buy: %d %s", res.status, res.raw)
			}
		}},
		"placeOrder/sold_out": {demo, func(t *testing.T, f *fixture, r *request) {
			r.path["id"] = openActivity(f, 1)
			if res := f.buy(r.path["id"], r.user+"-rival", ""); res.status != http.StatusAccepted {
				t.Fatalf("the rival's buy: %d %s", res.status, res.raw)
			}
		}},
		"getOrder/queued":  {demo, anOrder("")},
		"getOrder/created": {writing, anOrder(order.StateCreated)},
		"getOrder/another_users_order": {demo, func(t *testing.T, f *fixture, r *request) {
			anOrder("")(t, f, r)
			r.user += "-not-the-owner"
		}},
		"payOrder/paid":        {writing, anOrder(order.StateCreated)},
		"payOrder/not_payable": {demo, anOrder("")},
		"payOrder/order_cancelled": {writing, func(t *testing.T, f *fixture, r *request) {
			anOrder(order.StateCreated)(t, f, r)
			late := order.NewLifecycle(f.store, f.inv, order.LifecycleConfig{
				Logger: quiet(), Now: func() time.Time { return time.Now().Add(time.Hour) }, // past the pay deadline
			})
			if ok, err := late.CancelExpired(context.Background(), r.path["id"]); !ok || err != nil {
				t.Fatalf("cancel the order: %v %v", ok, err)
			}
		}},
		"streamDashboard/stream": {demo, func(t *testing.T, f *fixture, r *request) {
			// A viewer before this one, so the history holds samples.
			r.path["id"] = openActivity(f, 5)
			_, events := openStream(t, f.ts.URL, r.path["id"], "")
			if _, ok := nextSample(t, events, 10*time.Second); !ok {
				t.Fatal("the first viewer's stream ended without a sample")
			}
		}},
		"createActivity/created": {demo, func(_ *testing.T, _ *fixture, r *request) {
			// The example's state, upcoming, whenever the test runs.
			r.body["starts_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
			r.body["ends_at"] = time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
		}},
		"createActivity/validation": {demo, nil},
		"getActivityStats/stats": {demo, func(t *testing.T, f *fixture, r *request) {
			r.path["id"] = openActivity(f, 5)
			if res := f.buy(r.path["id"], r.user, ""); res.status != http.StatusAccepted {
				t.Fatalf("buy: %d %s", res.status, res.raw)
			}
		}},
		"listDeadLetters/listed":         {demo, nil},
		"listDeadLetters/validation":     {demo, func(_ *testing.T, _ *fixture, r *request) { r.query.Set("limit", "0") }},
		"replayDeadLetters/replayed":     {demo, nil},
		"replayDeadLetters/replayed_all": {demo, nil},
		"replayDeadLetters/validation":   {demo, nil},
		"discardDeadLetters/discarded":   {demo, nil},
		"discardDeadLetters/validation":  {demo, raw(`{"seqs":[]}`)},
	}
}

// blockedReader is a body that sends nothing more until release closes.
type blockedReader chan struct{}

func (b blockedReader) Read([]byte) (int, error) {
	<-b
	return 0, io.EOF
}

// runExample makes the call of example ex of operation o as scenario sc
// sets it up, on f, and checks the answer against the document.
func runExample(t *testing.T, doc *openapi3.T, o operation, ex example, sc scenario, f *fixture, body any) {
	r := &request{path: map[string]string{}, query: url.Values{}, user: o.op.OperationID + "." + ex.name}
	for _, p := range slices.Concat(o.item.Parameters, o.op.Parameters) {
		if p.Value.In == openapi3.ParameterInPath {
			r.path[p.Value.Name] = fmt.Sprint(p.Value.Example)
		}
	}
	if m, ok := body.(map[string]any); ok {
		r.body = deepCopy(m)
	}
	if sc.setup != nil {
		sc.setup(t, f, r)
	}

	path := o.path
	for k, v := range r.path {
		path = strings.ReplaceAll(path, "{"+k+"}", url.PathEscape(v))
	}
	target := f.ts.URL + path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var sent []byte
	var reader io.Reader
	switch {
	case r.raw != nil:
		reader = r.raw
	case r.body != nil:
		sent, _ = json.Marshal(r.body)
		reader = bytes.NewReader(sent)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, o.method, target, reader)
	if err != nil {
		t.Fatal(err)
	}
	if reader != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer := r.authorization(o, doc, f); bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", o.method, target, err)
	}
	defer resp.Body.Close()
	var got []byte
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// The stream does not end: the history and one sample.
		got, err = readEvents(resp.Body, 2)
	} else {
		got, err = io.ReadAll(resp.Body)
	}
	if err != nil {
		t.Fatalf("read the answer: %v (so far %q)", err, got)
	}
	if resp.StatusCode != ex.status {
		t.Fatalf("%s %s answered %d %s; the document puts this example under %d", o.method, target, resp.StatusCode, got, ex.status)
	}

	route := &routers.Route{Spec: doc, Path: o.path, PathItem: o.item, Method: o.method, Operation: o.op}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: r.path, Route: route}
	out := (&openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}).SetBodyBytes(got)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("the answer does not match the document: %v\nanswer: %d %s", err, resp.StatusCode, got)
	}
	if want, ok := ex.value.(map[string]any); ok {
		var answer map[string]any
		if err := json.Unmarshal(got, &answer); err != nil {
			t.Fatalf("answer %s: %v", got, err)
		}
		for _, k := range []string{"code", "state"} {
			if w, ok := want[k]; ok && answer[k] != w {
				t.Errorf("answer's %s = %v, the example's %v: %s", k, answer[k], w, got)
			}
		}
	}
	if ex.status/100 == 2 {
		// What the handler accepted, the document must accept.
		check, _ := http.NewRequestWithContext(ctx, o.method, target, bytes.NewReader(sent))
		check.Header = req.Header.Clone()
		in.Request = check
		in.Options = &openapi3filter.Options{MultiError: true, AuthenticationFunc: bearerPresent}
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("the handler accepted a request the document refuses: %v", err)
		}
	}
}

// authorization is the bearer token r sends: none when anonymous, else
// the token o's security asks for (none when it allows calls without one).
func (r *request) authorization(o operation, doc *openapi3.T, f *fixture) string {
	if r.anonymous {
		return ""
	}
	sec := doc.Security
	if o.op.Security != nil {
		sec = *o.op.Security
	}
	if len(sec) == 0 {
		return ""
	}
	for _, req := range sec {
		if len(req) == 0 {
			return ""
		}
	}
	for scheme := range sec[0] {
		switch scheme {
		case "userToken":
			return f.token(r.user)
		case "adminToken":
			return adminToken
		}
		f.t.Fatalf("%s: unknown security scheme %q", o, scheme)
	}
	return ""
}

// bearerPresent is the document's security check of a request that
// succeeded: it carries a bearer token for each http bearer scheme asked.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecurityScheme.Type == "http" && in.SecurityScheme.Scheme == "bearer" {
		if tok, ok := strings.CutPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer "); ok && tok != "" {
			return nil
		}
		return fmt.Errorf("no bearer token for %s", in.SecuritySchemeName)
	}
	return fmt.Errorf("security scheme %s: not a bearer scheme", in.SecuritySchemeName)
}

func deepCopy(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// readEvents reads a Server-Sent Events stream until n events with data
// have come, and returns the text read.
func readEvents(body io.Reader, n int) ([]byte, error) {
	var got bytes.Buffer
	br := bufio.NewReader(body)
	hasData := false
	for n > 0 {
		line, err := br.ReadString('\n')
		got.WriteString(line)
		if err != nil {
			return got.Bytes(), err
		}
		switch line = strings.TrimRight(line, "\r\n"); {
		case strings.HasPrefix(line, "data:"):
			hasData = true
		case line == "" && hasData:
			n--
			hasData = false
		}
	}
	return got.Bytes(), nil
}

// decodeEventStream reads a Server-Sent Events stream as the document
// describes it: its events in order, each {"event": name, "data": JSON}.
// Comments and frames without data (retry:, : ping) are not events.
func decodeEventStream(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	events := []any{}
	for _, frame := range strings.Split(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n\n") {
		name, data, hasData := "message", "", false
		for _, line := range strings.Split(frame, "\n") {
			if v, ok := strings.CutPrefix(line, "event:"); ok {
				name = strings.TrimPrefix(v, " ")
			} else if v, ok := strings.CutPrefix(line, "data:"); ok {
				data += strings.TrimPrefix(v, " ")
				hasData = true
			}
		}
		if !hasData {
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			return nil, fmt.Errorf("event %q: data is not JSON: %w", name, err)
		}
		events = append(events, map[string]any{"event": name, "data": v})
	}
	return events, nil
}
