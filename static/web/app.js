// The buyer's flash-sale page. Plain JavaScript, no build step, no CDN: the
// gateway binary serves it from static/ (go:embed).
//
// Time: every activity answer carries server_time. The page keeps the
// offset between the server's clock and this device's (the sample with the
// shortest round trip wins), and the countdown, the button and the pay
// deadline all run on serverNow() = Date.now() + offset.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const S = {
    activityId: params.get("activity") || "",
    act: null, // last activity answer
    offset: 0, // server clock - local clock, ms
    bestRtt: Infinity,
    token: localStorage.getItem("seckill.token") || "",
    user: "",
    orderId: "",
    order: null,
    buying: false,
    retryAt: 0, // serverNow() before which the button stays disabled (429/503)
    autoRetry: 0, // timer of the one automatic retry after a 429/503, 0 when none is pending
    pollTimer: 0,
    orderTimer: 0,
    buyToken: null, // {token, expiresAt (local ms), key}: the buy path's pass, fetched from the start
    buyTokenFetch: null, // the fetch in flight, shared by the clock and a click
    buyTokenNext: 0, // Date.now() before which the clock does not fetch again after a failure
    demo: true,
    // The waiting room of a sale with queue admission: the last answer,
    // the next poll, and whether a join or poll is in flight.
    queue: null,
    queueTimer: 0,
    queueBusy: false,
    queueNext: 0, // Date.now() before which the clock does not join again
  };
  S.user = userOf(S.token);

  const serverNow = () => Date.now() + S.offset;

  function userOf(token) {
    try {
      const p = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(p)).sub || "";
    } catch (e) {
      return "";
    }
  }

  function newRequestId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  // api calls the JSON API; it resolves to {status, body, headers} and never
  // throws for an HTTP error (only for a network failure).
  async function api(method, path, body, auth) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth && S.token) headers.Authorization = "Bearer " + S.token;
    const res = await fetch(path, {
      method, headers, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    return { status: res.status, body: data || {}, headers: res.headers };
  }

  function say(el, text, kind) {
    const m = $(el);
    m.textContent = text || "";
    m.className = "msg" + (text ? " " + (kind || "info") : "");
  }

  const pad = (n) => String(n).padStart(2, "0");
  function hms(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h > 0 ? pad(h) + ":" : "") + pad(m) + ":" + pad(s % 60);
  }
  function money(cents) {
    return (cents / 100).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  function localTime(iso) {
    return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  // ---- the activity ---------------------------------------------------

  async function pickActivity() {
    if (S.activityId) return S.activityId;
    const r = await api("GET", "/api/v1/activities");
    const list = (r.status === 200 && r.body.activities) || [];
    const rank = { active: 0, upcoming: 1, sold_out: 2, ended: 3 };
    list.sort((a, b) => (rank[a.state] - rank[b.state]) ||
      (a.state === "upcoming" ? Date.parse(a.starts_at) - Date.parse(b.starts_at) : Number(b.id) - Number(a.id)));
    return list.length ? list[0].id : "";
  }

  async function loadActivity() {
    const t0 = Date.now();
    let r;
    try {
      r = await api("GET", "/api/v1/activities/" + encodeURIComponent(S.activityId));
    } catch (e) {
      say("message", "The server is unreachable; retrying…", "warn");
      return false;
    }
    const t1 = Date.now();
    if (r.status === 404) {
      $("loading").textContent = "No such sale: " + (r.body.message || "activity " + S.activityId + " not found") + ".";
      $("loading").classList.remove("hidden");
      $("sale").classList.add("hidden");
      return false;
    }
    if (r.status !== 200) {
      say("message", "Could not read the sale (" + (r.body.message || r.status) + "); retrying…", "warn");
      return false;
    }
    const rtt = t1 - t0;
    // A sample with a shorter round trip bounds the offset better; old
    // estimates age out slowly so a device clock that jumps is followed.
    S.bestRtt += 50;
    if (rtt <= S.bestRtt) {
      S.bestRtt = rtt;
      S.offset = Date.parse(r.body.server_time) - (t0 + rtt / 2);
    }
    S.act = r.body;
    if (S.act.state === "sold_out" && S.retryAt) S.retryAt = 0;
    render();
    return true;
  }

  // phase is the sale's state on the server's clock: it flips to active at
  // the start instant even between two polls.
  function phase() {
    const a = S.act;
    if (!a) return "loading";
    const now = serverNow();
    if (now < Date.parse(a.starts_at)) return "upcoming";
    if (now >= Date.parse(a.ends_at)) return "ended";
    if (a.remaining <= 0 || a.state === "sold_out") return "sold_out";
    return "active";
  }

  function schedulePoll() {
    clearTimeout(S.pollTimer);
    let wait = 5000;
    const p = phase();
    if (p === "active") wait = 1000;
    if (p === "upcoming" && Date.parse(S.act.starts_at) - serverNow() < 15000) wait = 1000;
    if (document.hidden) wait = Math.max(wait, 10000);
    S.pollTimer = setTimeout(async () => { await loadActivity(); schedulePoll(); }, wait);
  }

  // ---- rendering ------------------------------------------------------

  function render() {
    const a = S.act;
    if (!a) return;
    $("loading").classList.add("hidden");
    $("sale").classList.remove("hidden");
    $("name").textContent = a.name;
    document.title = a.name + " · flash sale";
    $("price").textContent = money(a.price_cents);
    $("remaining").textContent = Math.max(0, a.remaining);
    $("stock").textContent = a.stock;
    $("left-bar").style.width = (a.stock > 0 ? Math.max(0, a.remaining) / a.stock * 100 : 0) + "%";
    $("window").textContent = localTime(a.starts_at) + " – " + localTime(a.ends_at);
    tick();
  }

  // tick runs four times a second: countdowns and the button.
  function tick() {
    const a = S.act;
    if (!a) return;
    const p = phase();
    const now = serverNow();
    const cd = $("countdown");
    cd.dataset.phase = p;
    if (p === "upcoming") cd.textContent = "Starts in " + hms(Date.parse(a.starts_at) - now);
    else if (p === "active") cd.textContent = "Ends in " + hms(Date.parse(a.ends_at) - now);
    else if (p === "sold_out") cd.textContent = "Sold out";
    else cd.textContent = "Ended";

    const b = $("buy");
    let label = "Buy now", enabled = false;
    if (p === "upcoming") label = "Opens in " + hms(Date.parse(a.starts_at) - now);
    else if (p === "sold_out") label = "Sold out";
    else if (p === "ended") label = "Sale ended";
    else if (S.orderId && !(S.order && S.order.state === "cancelled")) label = "You have an order";
    else if (!S.token) label = "Sign in to buy";
    else if (S.buying) label = "Sending…";
    else if (now < S.retryAt) label = (S.autoRetry ? "Retrying in " : "Try again in ") + Math.ceil((S.retryAt - now) / 1000) + " s";
    else enabled = true;
    if (queued()) {
      // The waiting room decides: the button opens with the pass.
      if (p !== "sold_out" && p !== "ended" && S.token && !S.orderId && !S.queue && !S.queueBusy && Date.now() >= S.queueNext) joinQueue();
      if (enabled && !haveBuyToken()) { enabled = false; label = "Waiting for your turn"; }
      if (enabled && S.autoBuy) { S.autoBuy = false; setTimeout(() => buy(true), 0); }
      renderQueue();
    } else if (p === "active" && S.token && !S.orderId && !haveBuyToken() && !S.buyTokenFetch && Date.now() >= S.buyTokenNext) fetchBuyToken();
    b.textContent = label;
    b.disabled = !enabled;
    b.dataset.phase = p;
    renderOrderClock();
  }

  // ---- sign in ----------------------------------------------------------

  function renderLogin() {
    const signed = !!S.token;
    $("demo-login").classList.toggle("hidden", signed || !S.demo);
    $("token-login").classList.toggle("hidden", signed || S.demo);
    $("signed-in").classList.toggle("hidden", !signed);
    $("login-title").textContent = signed ? "Account" : "Sign in";
    $("user-name").textContent = S.user;
    $("whoami").textContent = signed ? S.user : "";
  }

  function signIn(token) {
    S.token = token;
    S.user = userOf(token);
    localStorage.setItem("seckill.token", token);
    say("login-message", "");
    renderLogin();
    resumeOrder();
    tick();
  }

  $("demo-login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const user = $("login-user").value.trim();
    let r;
    try {
      r = await api("POST", "/api/v1/auth/demo-token", { user_id: user });
    } catch (e) {
      say("login-message", "The server is unreachable.", "error");
      return;
    }
    if (r.status === 200) return signIn(r.body.token);
    if (r.status === 404) {
      S.demo = false;
      renderLogin();
      say("login-message", "Demo login is off on this server: paste a user token from your login service.", "info");
      return;
    }
    say("login-message", r.body.message || "Sign-in failed (" + r.status + ").", "error");
  });

  $("token-login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const tok = $("login-token").value.trim();
    if (!userOf(tok)) {
      say("login-message", "That does not look like a user token (a JWT with a sub claim).", "error");
      return;
    }
    signIn(tok);
  });

  $("logout").addEventListener("click", () => {
    localStorage.removeItem("seckill.token");
    S.token = S.user = "";
    setOrder("", null);
    renderLogin();
    tick();
  });

  function signedOut(msg) {
    localStorage.removeItem("seckill.token");
    S.token = S.user = "";
    renderLogin();
    say("login-message", msg || "Your sign-in expired; sign in again.", "warn");
    tick();
  }

  // ---- buy --------------------------------------------------------------

  const orderKey = () => "seckill.order." + S.activityId + "." + S.user;
  const requestKey = () => "seckill.request." + S.activityId + "." + S.user;

  $("buy").addEventListener("click", () => buy(false));

  // retryAfterMs reads Retry-After (seconds, or an HTTP date) and adds a
  // little jitter, so a crowd told "1" does not come back in one instant.
  function retryAfterMs(headers) {
    const v = (headers.get("Retry-After") || "").trim();
    let ms = /^\d+$/.test(v) ? parseInt(v, 10) * 1000 : Date.parse(v) - Date.now();
    if (!(ms >= 1000)) ms = 1000;
    return ms + Math.floor(Math.random() * Math.min(1000, ms / 4));
  }

  // ---- the buy token ----------------------------------------------------
  // The buy route wants a token that only exists from the start (GET
  // .../buy-token answers 403 NOT_STARTED before). The clock fetches it at
  // the start instant (server time); a click fetches it if it is missing
  // or about to expire. It is bound to this user and this sale.

  function buyTokenKey() { return S.activityId + "/" + S.user; }

  function haveBuyToken() {
    const t = S.buyToken;
    return !!t && t.key === buyTokenKey() && Date.now() < t.expiresAt - 5000;
  }

  // fetchBuyToken resolves to true once a fresh token is held. A sale with
  // queue admission has no buy token: its pass comes from the waiting room.
  function fetchBuyToken() {
    if (haveBuyToken()) return Promise.resolve(true);
    if (queued()) return Promise.resolve(false);
    if (S.buyTokenFetch) return S.buyTokenFetch;
    const key = buyTokenKey();
    S.buyTokenFetch = (async () => {
      try {
        const r = await api("GET", "/api/v1/activities/" + encodeURIComponent(S.activityId) + "/buy-token", undefined, true);
        if (r.status === 200 && key === buyTokenKey()) {
          // expires_at is on the server's clock; keep it on ours.
          S.buyToken = { token: r.body.token, expiresAt: Date.parse(r.body.expires_at) - S.offset, key: key };
          return true;
        }
        S.buyTokenNext = Date.now() + (r.status === 429 ? retryAfterMs(r.headers) : 2000);
        if (r.status === 401) signedOut("Your sign-in is no longer valid; sign in again.");
        else if (r.status === 403) loadActivity(); // our clock ran ahead of the server's
        return false;
      } catch (e) {
        S.buyTokenNext = Date.now() + 2000;
        return false;
      } finally {
        S.buyTokenFetch = null;
      }
    })();
    return S.buyTokenFetch;
  }

  // buy sends the click. auto is the one automatic retry after a 429 or
  // 503: it sends the same request_id, so it cannot buy twice.
  async function buy(auto) {
    if (!auto && S.autoRetry) {
      clearTimeout(S.autoRetry);
      S.autoRetry = 0;
    }
    if (S.buying || phase() !== "active" || !S.token) return;
    if (S.orderId && !(S.order && S.order.state === "cancelled")) return;
    S.buying = true;
    tick();
    say("message", "");
    // One request_id per purchase attempt, kept until it gets an answer:
    // a retry after a lost response returns the same order, not a second one.
    let rid = sessionStorage.getItem(requestKey());
    if (!rid) {
      rid = newRequestId();
      sessionStorage.setItem(requestKey(), rid);
    }
    let r;
    try {
      const body = { request_id: rid };
      if (await fetchBuyToken()) body.buy_token = S.buyToken.token;
      r = await api("POST", "/api/v1/activities/" + encodeURIComponent(S.activityId) + "/orders", body, true);
    } catch (e) {
      S.buying = false;
      say("message", "No answer from the server (network). Press buy again: the same request is retried safely.", "warn");
      tick();
      return;
    }
    S.buying = false;
    // retry keeps the button shut for Retry-After (plus jitter); after a
    // click, the page then retries once by itself, with the same
    // request_id (kept in sessionStorage until a definite answer).
    const retry = (why) => {
      const wait = retryAfterMs(r.headers);
      S.retryAt = serverNow() + wait;
      const secs = Math.ceil(wait / 1000) + " s";
      if (!auto) {
        S.autoRetry = setTimeout(() => { S.autoRetry = 0; buy(true); }, wait);
        say("message", why + " Retrying by itself in " + secs + " (the same request: it cannot buy twice).", "warn");
      } else {
        say("message", why + " You can try again in " + secs + ".", "warn");
      }
    };
    switch (r.status) {
      case 202:
        sessionStorage.removeItem(requestKey());
        localStorage.setItem(orderKey(), r.body.order_id);
        setOrder(r.body.order_id, { state: "queued" });
        say("message", "You got one! Your order is below.", "ok");
        pollOrder(0);
        break;
      case 409:
        sessionStorage.removeItem(requestKey());
        if (localStorage.getItem(orderKey())) {
          say("message", "You already hold an order for this sale (shown below).", "info");
          resumeOrder();
        } else {
          say("message", "Already purchased: this account already holds an order for this sale.", "warn");
        }
        break;
      case 410:
        sessionStorage.removeItem(requestKey());
        if (queued()) S.queue = { state: "sold_out" };
        S.act.remaining = 0;
        S.act.state = "sold_out";
        say("message", "Sold out: every unit is taken. Units return if an order is not paid in time.", "warn");
        render();
        break;
      case 403:
        if (/^BUY_TOKEN_/.test(r.body.code || "")) {
          // Expired or not ours (another tab signed in as someone else):
          // drop it; the retry fetches a fresh one, same request_id.
          S.buyToken = null;
          if (!auto) {
            S.autoRetry = setTimeout(() => { S.autoRetry = 0; buy(true); }, 0);
          } else {
            say("message", (r.body.message || "The buy pass was refused") + ". Press buy again.", "warn");
          }
          break;
        }
        say("message", r.body.code === "NOT_STARTED" ? "The sale has not started yet." : "The sale has ended.", "warn");
        loadActivity();
        break;
      case 429:
        retry("Too many tries (rate limited).");
        break;
      case 503:
        retry("Busy: the shop is flooded and nothing was reserved.");
        break;
      case 401:
        signedOut("Your sign-in is no longer valid; sign in again.");
        break;
      default:
        say("message", (r.body.message || "Unexpected answer") + " (" + r.status + ")", "error");
    }
    tick();
  }

  // ---- the waiting room ---------------------------------------------------
  // A sale with queue admission: the page joins during the countdown (the
  // pre-queue, whose order is drawn at the start), shows the place, the
  // people ahead and the estimated wait, asks again when the answer says
  // (poll_after_ms: asking sooner gains nothing), and buys by itself the
  // moment it is admitted, with the pass it gets.

  function queued() { return !!S.act && S.act.admission === "queue"; }
  const queuePath = () => "/api/v1/activities/" + encodeURIComponent(S.activityId) + "/queue";

  function scheduleQueue(ms) {
    clearTimeout(S.queueTimer);
    S.queueTimer = setTimeout(pollQueue, Math.max(ms, 100));
  }

  async function joinQueue() {
    S.queueBusy = true;
    let r;
    try {
      r = await api("POST", queuePath(), undefined, true);
    } catch (e) {
      S.queueNext = Date.now() + 2000;
      return;
    } finally {
      S.queueBusy = false;
    }
    if (r.status === 200) return onQueue(r.body);
    if (r.status === 401) return signedOut();
    // Too early (the pre-queue is not open yet), rate limited or busy: the
    // clock joins again a little later.
    S.queueNext = Date.now() + (r.status === 429 || r.status === 503 ? retryAfterMs(r.headers) : 5000);
    if (r.status === 403 && r.body.code === "NOT_STARTED") S.queueNote = r.body.message || "";
    tick();
  }

  async function pollQueue() {
    if (!queued() || S.orderId || !S.token) return;
    S.queueBusy = true;
    let r;
    try {
      r = await api("GET", queuePath(), undefined, true);
    } catch (e) {
      return scheduleQueue(2000);
    } finally {
      S.queueBusy = false;
    }
    if (r.status === 200) return onQueue(r.body);
    if (r.status === 401) return signedOut();
    if (r.status === 404) { S.queue = null; return tick(); } // not in it (the queue was lost): join again
    scheduleQueue(r.status === 429 || r.status === 503 ? retryAfterMs(r.headers) : 2000);
  }

  function onQueue(q) {
    S.queue = q;
    if (q.state === "admitted" && q.buy_token) {
      // The pass: the buy token of this sale, until expires_at (server time).
      S.buyToken = { token: q.buy_token, expiresAt: Date.parse(q.expires_at) - S.offset, key: buyTokenKey() };
      S.autoBuy = true; // the clock buys at once (or the moment the sale opens on this page's clock)
      tick();
      return;
    }
    if (q.state === "sold_out") {
      S.act.remaining = 0;
      render();
    }
    tick();
    if (q.state !== "bought" && q.state !== "expired") scheduleQueue(q.poll_after_ms);
  }

  function renderQueue() {
    const el = $("queue"), q = S.queue;
    el.classList.toggle("hidden", !S.token || !!S.orderId);
    let text = "";
    if (!q) {
      text = S.queueNote ? "The waiting room is not open yet. " + S.queueNote : "Joining the waiting room…";
    } else {
      switch (q.state) {
        case "prequeue":
          text = "You are in the waiting room with " + q.waiting + " people. Your place is drawn at the start: arriving earlier gives no edge.";
          break;
        case "waiting":
          text = "Your place: #" + q.position + " · " + q.ahead + " ahead" +
            (q.estimated_wait_s ? " · about " + Math.ceil(q.estimated_wait_s) + " s" : "") + ". Keep this page open; it buys for you when it is your turn.";
          break;
        case "admitted":
          text = "It is your turn! Your pass is valid until " + new Date(Date.parse(q.expires_at)).toLocaleTimeString() + ".";
          break;
        case "sold_out":
          text = "Sold out: every unit is taken. If one comes back, the next people in the queue get their turn.";
          break;
        case "expired":
          text = "Your turn passed unused and your pass expired.";
          break;
        case "bought":
          text = "You bought with your pass.";
          break;
      }
    }
    el.textContent = text;
    el.dataset.state = q ? q.state : "";
  }

  // ---- the order --------------------------------------------------------

  function setOrder(id, order) {
    S.orderId = id;
    S.order = order;
    clearTimeout(S.orderTimer);
    $("order").classList.toggle("hidden", !id);
    $("order-id").textContent = id;
    renderOrder();
  }

  function resumeOrder() {
    const id = S.user ? localStorage.getItem(orderKey()) : "";
    if (id && id !== S.orderId) {
      setOrder(id, { state: "queued" });
      pollOrder(0);
    }
  }

  function pollOrder(delay) {
    clearTimeout(S.orderTimer);
    S.orderTimer = setTimeout(fetchOrder, delay);
  }

  async function fetchOrder() {
    const id = S.orderId;
    if (!id) return;
    let r;
    try {
      r = await api("GET", "/api/v1/orders/" + encodeURIComponent(id), undefined, true);
    } catch (e) {
      return pollOrder(3000);
    }
    if (id !== S.orderId) return;
    if (r.status === 401) return signedOut();
    if (r.status === 404) {
      localStorage.removeItem(orderKey());
      setOrder("", null);
      say("message", "That order no longer exists on the server.", "warn");
      tick();
      return;
    }
    if (r.status !== 200) return pollOrder(3000);
    S.order = r.body;
    renderOrder();
    switch (r.body.state) {
      case "queued": return pollOrder(1000); // waiting for the database
      case "created": return pollOrder(5000); // watch for a timeout cancel
      default: return; // paid or cancelled: final
    }
  }

  function renderOrder() {
    const o = S.order;
    const st = $("order-state"), pay = $("pay");
    if (!o) return;
    st.dataset.state = o.state;
    pay.classList.toggle("hidden", o.state !== "created");
    switch (o.state) {
      case "queued":
        st.textContent = "In queue: your unit is reserved, the order is being written…";
        say("order-message", "");
        break;
      case "created":
        renderOrderClock();
        break;
      case "paid":
        st.textContent = "Paid ✓ The unit is yours.";
        say("order-message", "Payment received. A confirmation is on its way.", "ok");
        break;
      case "cancelled":
        st.textContent = "Cancelled";
        say("order-message", "The order was cancelled (not paid in time) and the unit went back on sale.", "warn");
        break;
      default:
        st.textContent = o.state;
    }
  }

  function renderOrderClock() {
    const o = S.order;
    if (!o || o.state !== "created") return;
    const st = $("order-state");
    const left = o.pay_deadline ? Date.parse(o.pay_deadline) - serverNow() : NaN;
    if (isNaN(left)) {
      st.textContent = "Order created: pay now";
    } else if (left > 0) {
      st.textContent = "Order created: pay within " + hms(left);
    } else {
      st.textContent = "The payment window has closed; the order is being cancelled…";
      $("pay").disabled = true;
    }
  }

  $("pay").addEventListener("click", async () => {
    const id = S.orderId, pay = $("pay");
    if (!id) return;
    pay.disabled = true;
    say("order-message", "Paying…", "info");
    let r;
    try {
      r = await api("POST", "/api/v1/orders/" + encodeURIComponent(id) + "/pay", {}, true);
    } catch (e) {
      pay.disabled = false;
      say("order-message", "No answer from the server; press pay again (paying twice is safe).", "warn");
      return;
    }
    pay.disabled = false;
    if (r.status === 200) {
      S.order = Object.assign({}, S.order, { state: r.body.state || "paid" });
      renderOrder();
      return;
    }
    if (r.status === 401) return signedOut();
    if (r.status === 409 && r.body.code === "ORDER_CANCELLED") {
      S.order = Object.assign({}, S.order, { state: "cancelled" });
      renderOrder();
      return;
    }
    if (r.status === 409 && r.body.code === "NOT_PAYABLE") {
      say("order-message", "The order is still in the queue; pay in a moment.", "warn");
      pollOrder(1000);
      return;
    }
    say("order-message", (r.body.message || "Payment failed") + " (" + r.status + ")", "error");
  });

  // ---- start ------------------------------------------------------------

  async function start() {
    renderLogin();
    try {
      S.activityId = await pickActivity();
    } catch (e) {
      S.activityId = "";
    }
    if (!S.activityId) {
      $("loading").textContent = "No flash sale is scheduled. Come back later.";
      setTimeout(start, 10000);
      return;
    }
    $("dashboard-link").href = "/dashboard?activity=" + encodeURIComponent(S.activityId);
    await loadActivity();
    resumeOrder();
    schedulePoll();
    setInterval(tick, 250);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) { loadActivity(); schedulePoll(); } });
  }
  start();
})();
