package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBuyTokenFromTheStart: with SECKILL_BUY_TOKEN=required the buy route
// has no way in before the start; the page fetches its pass at the start
// instant (server clock) and buys with it, while a script that skips the
// pass is refused at the door.
func TestBuyTokenFromTheStart(t *testing.T) {
	browser := newBrowser(t)
	h := startApp(t, map[string]string{"SECKILL_BUY_TOKEN": "required"})
	starts := time.Now().Add(6 * time.Second).Truncate(time.Second)
	act := h.createActivity("Token sale", 3, starts, starts.Add(time.Hour), 300)

	script := h.token("script")
	var refusal struct {
		Code string `json:"code"`
	}
	if code := h.call(http.MethodGet, "/api/v1/activities/"+act+"/buy-token", script, nil, &refusal); code != http.StatusForbidden || refusal.Code != "NOT_STARTED" {
		t.Fatalf("a buy token before the start: %d %s, want 403 NOT_STARTED", code, refusal.Code)
	}

	ctx := newTab(t, browser, 390, 844)
	do(t, ctx, "open the sale page",
		chromedp.Navigate(h.base+"/?activity="+act),
		chromedp.WaitVisible(chromedp.ID("sale")),
	)
	signIn(t, ctx, "e2e-token")
	waitFor(t, ctx, "the button to open at the start", `!document.getElementById("buy").disabled`, 20*time.Second)
	do(t, ctx, "press buy", chromedp.Click(chromedp.ID("buy")))
	waitFor(t, ctx, "the order to be created", `document.getElementById("order-state").dataset.state === "created"`, 20*time.Second)
	noPageErrors(t, ctx)

	// The sale is open now, and a script that fires at the buy route
	// without the pass is still turned away, with nothing reserved.
	if code := h.call(http.MethodPost, "/api/v1/activities/"+act+"/orders", script, map[string]string{"request_id": "s1"}, &refusal); code != http.StatusForbidden || refusal.Code != "BUY_TOKEN_MISSING" {
		t.Fatalf("a buy without the token after the start: %d %s, want 403 BUY_TOKEN_MISSING", code, refusal.Code)
	}
	var st struct {
		Remaining int `json:"remaining"`
	}
	if code := h.call(http.MethodGet, "/api/v1/activities/"+act, "", nil, &st); code != http.StatusOK || st.Remaining != 2 {
		t.Fatalf("activity after one page buy and one refused script: %d remaining %d, want 200 and 2", code, st.Remaining)
	}
}
