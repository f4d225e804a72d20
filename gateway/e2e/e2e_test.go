package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/flashsale/seckill/gateway/app"
	"github.com/flashsale/seckill/gateway/config"
	"github.com/flashsale/seckill/order"
	"github.com/flashsale/seckill/testkit"
)

const (
	adminToken = "e2e-admin-token-0123456789abcdef"
	jwtSecret  = "e2e-jwt-secret-0123456789abcdef"
	// deviceSkew puts the browser's clock ten minutes behind the server's:
	// a page that trusted the device clock would show a 10-minute
	// countdown and never open the button within these tests.
	deviceSkew = -10 * time.Minute
)

// ---- the process under test --------------------------------------------

type harness struct {
	t    *testing.T
	app  *app.App
	base string
	http *http.Client
}

// startApp runs the all-in-one process on the embedded default (miniredis,
// SQLite, in-process queue, order workers), in demo mode, on a loopback port.
func startApp(t *testing.T, extra map[string]string) *harness {
	t.Helper()
	env := map[string]string{
		"SECKILL_HTTP_ADDR":    "127.0.0.1:0",
		"SECKILL_DATA_DIR":     t.TempDir(),
		"SECKILL_JWT_SECRET":   jwtSecret,
		"SECKILL_ADMIN_TOKEN":  adminToken,
		"SECKILL_DEMO":         "true",
		"SECKILL_REDIS_PREFIX": "e2e-" + testkit.RandomHex(4),
	}
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	a, err := app.New(context.Background(), cfg, log, app.AllInOne)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &harness{t: t, app: a, base: "http://" + a.Addr(), http: &http.Client{Timeout: 20 * time.Second}}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

func (h *harness) call(method, path, bearer string, body, out any) int {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Errorf("%s %s: %v", method, path, err)
		return 0
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Errorf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

func (h *harness) createActivity(name string, stock int, starts, ends time.Time, payTimeout int) string {
	h.t.Helper()
	var a struct {
		ID string `json:"id"`
	}
	code := h.call(http.MethodPost, "/api/v1/admin/activities", adminToken, map[string]any{
		"name": name, "stock": stock, "price_cents": 12345,
		"starts_at": starts.UTC().Format(time.RFC3339), "ends_at": ends.UTC().Format(time.RFC3339),
		"pay_timeout_seconds": payTimeout,
	}, &a)
	if code != http.StatusCreated {
		h.t.Fatalf("create activity %q: %d", name, code)
	}
	return a.ID
}

func (h *harness) token(user string) string {
	h.t.Helper()
	var r struct {
		Token string `json:"token"`
	}
	if code := h.call(http.MethodPost, "/api/v1/auth/demo-token", "", map[string]string{"user_id": user}, &r); code != http.StatusOK {
		h.t.Fatalf("demo token for %s: %d", user, code)
	}
	return r.Token
}

func (h *harness) buy(tok, activity string) int {
	h.t.Helper()
	return h.call(http.MethodPost, "/api/v1/activities/"+activity+"/orders", tok, map[string]string{}, nil)
}

// ---- the browser ------------------------------------------------------------

// chromium finds the browser, or skips (fails under CI=true).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SECKILL_E2E_CHROME"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return testkit.RequireBinary(t, "chromium") // skips, or fails in CI
}

// newBrowser starts one headless chromium for a test; tabs come from newTab.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root, where chromium's sandbox refuses to start
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(bctx); err != nil { // starts the browser, with no deadline
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// newTab opens a tab with a phone-sized viewport, the device clock skewed by
// deviceSkew, and uncaught errors collected in window.__errors.
func newTab(t *testing.T, browser context.Context, width, height int64) context.Context {
	t.Helper()
	// A browser context of its own: no localStorage (sign-in, orders)
	// shared with the other tabs.
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	script := fmt.Sprintf(`(() => {
		const real = Date.now.bind(Date);
		Date.now = () => real() + (%d);
		window.__errors = [];
		addEventListener("error", (e) => window.__errors.push(String(e.message)));
		addEventListener("unhandledrejection", (e) => window.__errors.push(String(e.reason)));
	})();`, deviceSkew.Milliseconds())
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: script}); err != nil {
		t.Fatalf("install page script: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
		t.Fatalf("viewport: %v", err)
	}
	return ctx
}

// artifacts is where screenshots go: SECKILL_E2E_ARTIFACTS, or a
// seckill-e2e directory under the temp directory.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SECKILL_E2E_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "seckill-e2e")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts directory: %v", err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG; below: JPEG
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(artifacts(t), name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Errorf("write screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", path)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// fail keeps a screenshot and the page's text, then stops the test.
func fail(t *testing.T, ctx context.Context, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	screenshot(t, ctx, "FAILED-"+unsafeName.ReplaceAllString(t.Name(), "_")+".png")
	if text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`)); err == nil {
		msg += "\n--- page text ---\n" + text
	}
	t.Fatal(msg)
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		fail(t, ctx, "%s: %v", what, err)
	}
}

// waitFor polls a JavaScript predicate until it is truthy.
func waitFor(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(sctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		fail(t, ctx, "waiting for %s (%s): %v", what, expr, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		fail(t, ctx, "evaluate %s: %v", expr, err)
	}
	return v
}

func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	return eval[string](t, ctx, `document.getElementById(`+strconv.Quote(id)+`).textContent`)
}

func signIn(t *testing.T, ctx context.Context, user string) {
	t.Helper()
	do(t, ctx, "demo sign-in",
		chromedp.WaitVisible(chromedp.ID("login-user")),
		chromedp.SendKeys(chromedp.ID("login-user"), user),
		chromedp.Click(chromedp.ID("login-btn")),
		chromedp.WaitVisible(chromedp.ID("signed-in")),
	)
	if got := text(t, ctx, "user-name"); got != user {
		fail(t, ctx, "signed in as %q, want %q", got, user)
	}
}

func noPageErrors(t *testing.T, ctx context.Context) {
	t.Helper()
	if errs := eval[[]string](t, ctx, `window.__errors`); len(errs) > 0 {
		fail(t, ctx, "uncaught errors in the page: %q", errs)
	}
}

// fitsWidth fails when the page scrolls sideways (a phone layout must not).
func fitsWidth(t *testing.T, ctx context.Context) {
	t.Helper()
	if over := eval[int](t, ctx, `document.documentElement.scrollWidth - window.innerWidth`); over > 0 {
		fail(t, ctx, "the page is %d px wider than the %d px viewport", over, eval[int](t, ctx, `window.innerWidth`))
	}
}

// ---- the tests ------------------------------------------------------------------

// TestBuyerPath walks the buyer's whole path on a phone-sized screen whose
// clock is ten minutes off: countdown with the button disabled, the button
// opening at the server's start instant, buy, in queue, order created with
// the time left to pay, pay, paid.
func TestBuyerPath(t *testing.T) {
	browser := newBrowser(t)
	h := startApp(t, nil)
	starts := time.Now().Add(7 * time.Second).Truncate(time.Second)
	act := h.createActivity("E2E headphones", 5, starts, starts.Add(time.Hour), 300)

	ctx := newTab(t, browser, 390, 844)
	do(t, ctx, "open the sale page",
		chromedp.Navigate(h.base+"/?activity="+act),
		chromedp.WaitVisible(chromedp.ID("sale")),
	)
	if got := text(t, ctx, "name"); got != "E2E headphones" {
		fail(t, ctx, "product name %q", got)
	}
	if got := text(t, ctx, "price"); !strings.Contains(got, "123.45") {
		fail(t, ctx, "price %q, want 123.45", got)
	}
	waitFor(t, ctx, "the countdown", `document.getElementById("countdown").dataset.phase === "upcoming"`, 5*time.Second)
	cd := text(t, ctx, "countdown")
	if !regexp.MustCompile(`^Starts in 00:0\d$`).MatchString(cd) {
		fail(t, ctx, "countdown %q: want seconds before the start on the server's clock (the device clock is %v off)", cd, deviceSkew)
	}
	if !eval[bool](t, ctx, `document.getElementById("buy").disabled`) {
		fail(t, ctx, "the buy button is enabled before the start")
	}
	fitsWidth(t, ctx)
	screenshot(t, ctx, "buyer-1-countdown.png")

	signIn(t, ctx, "e2e-alice")
	if !eval[bool](t, ctx, `document.getElementById("buy").disabled`) {
		fail(t, ctx, "the buy button is enabled before the start, once signed in")
	}
	waitFor(t, ctx, "the button to open at the start", `!document.getElementById("buy").disabled`, 20*time.Second)
	if early := time.Until(starts); early > 400*time.Millisecond {
		fail(t, ctx, "the button opened %v before the sale started", early)
	}
	if got := text(t, ctx, "buy"); got != "Buy now" {
		fail(t, ctx, "button says %q", got)
	}

	do(t, ctx, "press buy", chromedp.Click(chromedp.ID("buy")))
	waitFor(t, ctx, "the order to be created", `document.getElementById("order-state").dataset.state === "created"`, 20*time.Second)
	st := text(t, ctx, "order-state")
	m := regexp.MustCompile(`pay within (\d\d):(\d\d)$`).FindStringSubmatch(st)
	if m == nil {
		fail(t, ctx, "order state %q: want \"pay within mm:ss\"", st)
	}
	if mins, _ := strconv.Atoi(m[1]); mins != 4 && !(mins == 5 && m[2] == "00") {
		fail(t, ctx, "order state %q: the pay window is 300 s on the server's clock", st)
	}
	orderID := text(t, ctx, "order-id")
	if !eval[bool](t, ctx, `document.getElementById("buy").disabled`) {
		fail(t, ctx, "the buy button is still enabled with an order held")
	}
	fitsWidth(t, ctx)
	screenshot(t, ctx, "buyer-2-order-created.png")

	do(t, ctx, "press pay", chromedp.Click(chromedp.ID("pay")))
	waitFor(t, ctx, "the order to be paid", `document.getElementById("order-state").dataset.state === "paid"`, 15*time.Second)
	fitsWidth(t, ctx)
	screenshot(t, ctx, "buyer-3-paid.png")
	noPageErrors(t, ctx)

	o, err := h.app.Store().GetOrder(context.Background(), orderID)
	if err != nil {
		t.Fatalf("order %s in the database: %v", orderID, err)
	}
	if o.State != order.StatePaid || o.UserID != "e2e-alice" {
		t.Fatalf("order in the database: state %s, user %s; want paid by e2e-alice", o.State, o.UserID)
	}

	// A reload finds the order again (kept per user and activity).
	do(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("order")))
	waitFor(t, ctx, "the paid order after a reload", `document.getElementById("order-state").dataset.state === "paid"`, 10*time.Second)
}

// TestSalePageStates: every state of a sale shows its button and its
// reason, on a phone screen.
func TestSalePageStates(t *testing.T) {
	browser := newBrowser(t)
	// One buy per user per 100 s after a burst of 2: the rate-limited case
	// spends its burst through the API first.
	h := startApp(t, map[string]string{"SECKILL_RATE_PER_USER": "0.01", "SECKILL_RATE_PER_USER_BURST": "2"})
	now := time.Now()
	upcoming := h.createActivity("Upcoming sale", 10, now.Add(30*time.Minute), now.Add(2*time.Hour), 900)
	active := h.createActivity("Active sale", 100, now.Add(-time.Minute), now.Add(time.Hour), 900)
	soldOut := h.createActivity("Sold-out sale", 1, now.Add(-time.Minute), now.Add(time.Hour), 900)
	ended := h.createActivity("Ended sale", 10, now.Add(-2*time.Hour), now.Add(-time.Hour), 900)
	if code := h.buy(h.token("first-buyer"), soldOut); code != http.StatusAccepted {
		t.Fatalf("buy the only unit: %d", code)
	}
	if code := h.buy(h.token("dup"), active); code != http.StatusAccepted {
		t.Fatalf("dup's first buy: %d", code)
	}
	eager := h.token("eager")
	for i, want := range []int{http.StatusAccepted, http.StatusConflict} {
		if code := h.buy(eager, active); code != want {
			t.Fatalf("eager's buy %d: %d, want %d", i, code, want)
		}
	}

	tests := []struct {
		name     string
		activity string
		user     string // signs in when set
		click    bool
		phase    string
		button   *regexp.Regexp
		enabled  bool
		message  string // after the click
	}{
		{name: "upcoming", activity: upcoming, phase: "upcoming", button: regexp.MustCompile(`^Opens in (29:5\d|30:00)$`)}, // the device clock would say 39:5x
		{name: "active signed out", activity: active, phase: "active", button: regexp.MustCompile(`^Sign in to buy$`)},
		{name: "active signed in", activity: active, user: "newcomer", phase: "active", button: regexp.MustCompile(`^Buy now$`), enabled: true},
		{name: "sold out", activity: soldOut, user: "late", phase: "sold_out", button: regexp.MustCompile(`^Sold out$`)},
		{name: "ended", activity: ended, user: "late", phase: "ended", button: regexp.MustCompile(`^Sale ended$`)},
		{name: "already purchased", activity: active, user: "dup", click: true, phase: "active", button: regexp.MustCompile(`^Buy now$`), enabled: true, message: "Already purchased"},
		{name: "rate limited", activity: active, user: "eager", click: true, phase: "active", button: regexp.MustCompile(`^Retrying in \d+ s$`), message: "rate limited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := newTab(t, browser, 360, 740)
			do(t, ctx, "open the sale page",
				chromedp.Navigate(h.base+"/?activity="+tt.activity),
				chromedp.WaitVisible(chromedp.ID("sale")),
			)
			if tt.user != "" {
				signIn(t, ctx, tt.user)
			}
			waitFor(t, ctx, "phase "+tt.phase, `document.getElementById("buy").dataset.phase === `+strconv.Quote(tt.phase), 5*time.Second)
			if tt.click {
				do(t, ctx, "press buy", chromedp.Click(chromedp.ID("buy")))
				waitFor(t, ctx, "a message", `document.getElementById("message").textContent !== ""`, 10*time.Second)
				if msg := text(t, ctx, "message"); !strings.Contains(msg, tt.message) {
					fail(t, ctx, "message %q, want it to say %q", msg, tt.message)
				}
			}
			label := text(t, ctx, "buy")
			if !tt.button.MatchString(label) {
				fail(t, ctx, "button says %q, want %v", label, tt.button)
			}
			if disabled := eval[bool](t, ctx, `document.getElementById("buy").disabled`); disabled == tt.enabled {
				fail(t, ctx, "button disabled=%v, want enabled=%v", disabled, tt.enabled)
			}
			fitsWidth(t, ctx)
			noPageErrors(t, ctx)
			screenshot(t, ctx, "state-"+unsafeName.ReplaceAllString(tt.name, "-")+".png")
		})
	}
}

// TestDashboardDuringSpike opens /dashboard, runs a small spike (more users
// than units) and waits for the live numbers and charts to show it.
func TestDashboardDuringSpike(t *testing.T) {
	browser := newBrowser(t)
	h := startApp(t, nil)
	const stock, users = 30, 90
	act := h.createActivity("Dashboard spike", stock, time.Now().Add(-time.Second), time.Now().Add(time.Hour), 900)

	ctx := newTab(t, browser, 1280, 900)
	do(t, ctx, "open the dashboard",
		chromedp.Navigate(h.base+"/dashboard?activity="+act),
		chromedp.WaitVisible(chromedp.ID("c-peak")),
	)
	waitFor(t, ctx, "the stream to be live", `document.getElementById("conn").textContent === "live"`, 10*time.Second)
	waitFor(t, ctx, "the first sample", `document.getElementById("t-remaining").textContent === "`+strconv.Itoa(stock)+`"`, 10*time.Second)

	tokens := make([]string, users)
	for i := range tokens {
		tokens[i] = h.token(fmt.Sprintf("spiker-%03d", i))
	}
	var wg sync.WaitGroup
	codes := make([]int, users)
	for i := range tokens {
		wg.Go(func() { codes[i] = h.buy(tokens[i], act) })
	}
	wg.Wait()
	accepted := 0
	for _, c := range codes {
		if c == http.StatusAccepted {
			accepted++
		}
	}
	if accepted != stock {
		t.Fatalf("%d buys accepted, want %d (codes %v)", accepted, stock, codes)
	}

	n := strconv.Itoa(stock)
	waitFor(t, ctx, "the accepted count", `document.getElementById("t-accepted").textContent === "`+n+`"`, 15*time.Second)
	waitFor(t, ctx, "every order in the database", `document.getElementById("t-created").textContent === "`+n+`"`, 15*time.Second)
	waitFor(t, ctx, "units left to reach 0", `document.getElementById("t-remaining").textContent === "0"`, 5*time.Second)
	if got := text(t, ctx, "t-queued"); got != "0" {
		fail(t, ctx, "queued %q after the drain, want 0", got)
	}
	soldOut, err := strconv.Atoi(strings.ReplaceAll(text(t, ctx, "t-soldout"), ",", ""))
	if err != nil || soldOut != users-stock {
		fail(t, ctx, "sold-out answers %q, want %d", text(t, ctx, "t-soldout"), users-stock)
	}
	peak := eval[float64](t, ctx, `parseFloat(document.getElementById("t-ingress-peak").textContent.replace(/,/g, ""))`)
	writes := eval[float64](t, ctx, `parseFloat(document.getElementById("t-writes-peak").textContent.replace(/,/g, ""))`)
	if peak <= 0 || writes <= 0 {
		fail(t, ctx, "peaks: ingress %v/s, DB writes %v/s; want both above 0", peak, writes)
	}
	// The charts drew the spike: uPlot renders into a canvas per chart.
	if got := eval[int](t, ctx, `document.querySelectorAll(".chart canvas").length`); got < 3 {
		fail(t, ctx, "%d chart canvases, want 3", got)
	}
	noPageErrors(t, ctx)
	screenshot(t, ctx, "dashboard-spike.png")
}

// TestBuyRetriesAfterRetryAfter: a click answered 429 with Retry-After
// shows the wait on the button and retries once by itself when it is over,
// with the same request_id, and wins the unit.
func TestBuyRetriesAfterRetryAfter(t *testing.T) {
	browser := newBrowser(t)
	// One buy per user per 2 s: Retry-After: 2.
	h := startApp(t, map[string]string{"SECKILL_RATE_PER_USER": "0.5", "SECKILL_RATE_PER_USER_BURST": "1"})
	now := time.Now()
	active := h.createActivity("Patient sale", 10, now.Add(-time.Minute), now.Add(time.Hour), 900)
	other := h.createActivity("Other sale", 10, now.Add(-time.Minute), now.Add(time.Hour), 900)
	ctx := newTab(t, browser, 360, 740)
	do(t, ctx, "open the sale page",
		chromedp.Navigate(h.base+"/?activity="+active),
		chromedp.WaitVisible(chromedp.ID("sale")),
	)
	signIn(t, ctx, "patient")
	waitFor(t, ctx, "phase active", `document.getElementById("buy").dataset.phase === "active"`, 5*time.Second)
	// The per-user limit counts every buy: one on another sale spends it.
	if code := h.buy(h.token("patient"), other); code != http.StatusAccepted {
		t.Fatalf("buy on the other sale: %d", code)
	}
	do(t, ctx, "press buy", chromedp.Click(chromedp.ID("buy")))
	waitFor(t, ctx, "the wait on the button", `/^Retrying in \d+ s$/.test(document.getElementById("buy").textContent)`, 5*time.Second)
	if msg := text(t, ctx, "message"); !strings.Contains(msg, "rate limited") || !strings.Contains(msg, "Retrying by itself") {
		fail(t, ctx, "message %q, want it to say rate limited and that the page retries", msg)
	}
	waitFor(t, ctx, "the automatic retry to win", `document.getElementById("order-state") && document.getElementById("order-state").dataset.state !== undefined && document.getElementById("order-state").dataset.state !== ""`, 10*time.Second)
	if msg := text(t, ctx, "message"); !strings.Contains(msg, "You got one") {
		fail(t, ctx, "message %q after the retry, want the win", msg)
	}
	noPageErrors(t, ctx)
}

// TestWaitingRoom walks two buyers through a sale with queue admission, each
// in a browser of their own: during the countdown the page joins the
// waiting room and says so; at the start the order is drawn, the one
// admitted gets a pass and the page buys by itself (an order appears, no
// click), and the other page says sold out once the only unit is sold.
func TestWaitingRoom(t *testing.T) {
	browser := newBrowser(t)
	h := startApp(t, nil)
	starts := time.Now().Add(8 * time.Second).Truncate(time.Second)
	var a struct {
		ID string `json:"id"`
	}
	if code := h.call(http.MethodPost, "/api/v1/admin/activities", adminToken, map[string]any{
		"name": "E2E console", "stock": 1, "price_cents": 49900, "admission": "queue",
		"starts_at": starts.UTC().Format(time.RFC3339), "ends_at": starts.Add(time.Hour).UTC().Format(time.RFC3339),
		"pay_timeout_seconds": 300,
	}, &a); code != http.StatusCreated {
		t.Fatalf("create queue activity: %d", code)
	}
	tabs := map[string]context.Context{}
	for _, user := range []string{"queue-ann", "queue-bob"} {
		ctx := newTab(t, browser, 390, 844)
		do(t, ctx, "open the sale page",
			chromedp.Navigate(h.base+"/?activity="+a.ID),
			chromedp.WaitVisible(chromedp.ID("sale")),
		)
		signIn(t, ctx, user)
		waitFor(t, ctx, "the pre-queue", `document.getElementById("queue").dataset.state === "prequeue"`, 10*time.Second)
		if q := text(t, ctx, "queue"); !strings.Contains(q, "waiting room") || !strings.Contains(q, "drawn at the start") {
			fail(t, ctx, "pre-queue text %q", q)
		}
		if !eval[bool](t, ctx, `document.getElementById("buy").disabled`) {
			fail(t, ctx, "the buy button is enabled before the start")
		}
		tabs[user] = ctx
	}
	screenshot(t, tabs["queue-ann"], "waiting-room-prequeue.png")
	if time.Now().After(starts) {
		t.Fatal("the countdown was over before both pages joined: the test machine is too slow for this start time")
	}
	// After the start: exactly one page gets the unit by itself, the other
	// hears sold out.
	won, lost := "", ""
	deadline := time.Now().Add(40 * time.Second)
	for won == "" || lost == "" {
		for user, ctx := range tabs {
			if eval[bool](t, ctx, `!document.getElementById("order").classList.contains("hidden")`) {
				won = user
			} else if eval[string](t, ctx, `document.getElementById("queue").dataset.state`) == "sold_out" {
				lost = user
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the start: won %q, lost %q; want one of each", won, lost)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if won == lost {
		t.Fatalf("%s both won and lost", won)
	}
	if q := text(t, tabs[lost], "queue"); !strings.Contains(q, "Sold out") {
		fail(t, tabs[lost], "the loser's page says %q", q)
	}
	screenshot(t, tabs[won], "waiting-room-admitted-bought.png")
	screenshot(t, tabs[lost], "waiting-room-sold-out.png")
	for _, ctx := range tabs {
		noPageErrors(t, ctx)
	}
}
