// The live dashboard: one SSE stream per watched activity, read with fetch
// (so an admin token can go in the Authorization header, never in a URL),
// drawn with the vendored uPlot.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const MAX_POINTS = 600;
  const OUTCOMES = ["accepted", "sold_out", "already_purchased", "not_open", "token_refused", "rate_limited", "busy", "rejected", "error"];
  // Buys refused at the door for their buy token, by reason; the chart
  // draws their sum as token_refused.
  const TOKEN_REASONS = ["missing", "invalid", "expired", "wrong_user", "wrong_activity"];
  const tokenRefused = (m) => TOKEN_REASONS.reduce((n, r) => n + ((m || {})["token_" + r] || 0), 0);
  const OUTCOME_COLORS = ["#1a7f37", "#e4393c", "#8250df", "#9a6700", "#0969da", "#bf8700", "#cf222e", "#6e7781", "#000000"];

  const D = {
    activityId: params.get("activity") || "",
    token: sessionStorage.getItem("seckill.admin") || "",
    abort: null,
    retryTimer: 0,
    samples: [],
    peakIn: 0,
    peakDB: 0,
    charts: {},
  };

  function say(text, kind) {
    const m = $("message");
    m.textContent = text || "";
    m.className = "msg" + (text ? " " + (kind || "info") : "");
  }
  function conn(text, cls) {
    const c = $("conn");
    c.textContent = text;
    c.className = "pill " + (cls || "");
  }
  const fmt = (v) => (v == null || isNaN(v)) ? "–" : (Math.abs(v) >= 100 || Number.isInteger(v) ? Math.round(v).toLocaleString() : v.toFixed(1));
  const sum = (o) => Object.values(o || {}).reduce((a, b) => a + b, 0);

  // ---- charts -----------------------------------------------------------

  function width(el) { return Math.max(280, el.clientWidth - 4); }

  function makeChart(id, series, yLabel) {
    const el = $(id);
    const opts = {
      width: width(el), height: 240,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [{}, { label: yLabel, size: 60 }],
      series: [{}].concat(series.map((s) => ({ label: s.label, stroke: s.color, width: s.width || 2, fill: s.fill, points: { show: false } }))),
      legend: { live: true },
    };
    const data = [[]].concat(series.map(() => []));
    const u = new uPlot(opts, data, el);
    return { u, el, data, series };
  }

  function setupCharts() {
    D.charts.peak = makeChart("c-peak", [
      { label: "buy requests/s (all answers)", color: "#e4393c", fill: "rgba(228,57,60,.12)", get: (s) => sum(s.ingress_per_s) },
      { label: "accepted/s (202)", color: "#bf8700", get: (s) => s.ingress_per_s.accepted },
      { label: "DB writes/s", color: "#0969da", width: 3, fill: "rgba(9,105,218,.12)", get: (s) => s.db_writes_per_s },
    ], "per second");
    D.charts.outcomes = makeChart("c-outcomes", OUTCOMES.map((o, i) => ({ label: o, color: OUTCOME_COLORS[i], get: (s) => o === "token_refused" ? tokenRefused(s.ingress_per_s) : s.ingress_per_s[o] })), "requests/s");
    D.charts.queue = makeChart("c-queue", [
      { label: "queued (this activity)", color: "#8250df", get: (s) => s.queued },
      { label: "units left", color: "#1a7f37", get: (s) => s.remaining },
      { label: "queue depth (process)", color: "#6e7781", get: (s) => s.queue_depth },
    ], "count");
    window.addEventListener("resize", () => {
      for (const c of Object.values(D.charts)) c.u.setSize({ width: width(c.el), height: 240 });
    });
  }

  function redraw() {
    const xs = D.samples.map((s) => Date.parse(s.t) / 1000);
    for (const c of Object.values(D.charts)) {
      c.data = [xs].concat(c.series.map((ser) => D.samples.map((s) => { const v = ser.get(s); return v == null ? null : v; })));
      c.u.setData(c.data);
    }
  }

  // ---- numbers ------------------------------------------------------------

  function show(s) {
    $("name").textContent = s.name || "activity " + s.activity_id;
    $("act-id").textContent = s.activity_id;
    $("state").textContent = (s.state || "").replace("_", " ");
    $("updated").textContent = new Date(s.t).toLocaleTimeString();
    $("t-remaining").textContent = fmt(s.remaining);
    $("t-stock").textContent = fmt(s.stock);
    $("t-queued").textContent = fmt(s.queued);
    $("t-created").textContent = fmt(s.created);
    $("t-paid").textContent = fmt(s.paid);
    $("t-cancelled").textContent = fmt(s.cancelled);
    const tin = sum(s.ingress_per_s);
    D.peakIn = Math.max(D.peakIn, tin);
    D.peakDB = Math.max(D.peakDB, s.db_writes_per_s || 0);
    $("t-ingress").textContent = fmt(tin);
    $("t-ingress-peak").textContent = fmt(D.peakIn);
    $("t-writes").textContent = fmt(s.db_writes_per_s);
    $("t-writes-peak").textContent = fmt(D.peakDB);
    $("t-depth").textContent = fmt(s.queue_depth);
    const wr = s.waiting_room;
    for (const el of document.querySelectorAll(".tile.wr")) el.classList.toggle("hidden", !wr);
    if (wr) {
      $("t-wr-waiting").textContent = wr.sold_out ? fmt(wr.waiting) + " (sold out)" : fmt(wr.waiting);
      $("t-wr-admitted").textContent = fmt(wr.admitted);
      $("t-wr-active").textContent = fmt(wr.active);
      $("t-wr-skipped").textContent = fmt(wr.skipped);
    }
    const tot = s.ingress_total || {};
    $("t-accepted").textContent = fmt(tot.accepted);
    $("t-soldout").textContent = fmt(tot.sold_out);
    $("t-limited").textContent = fmt(tot.rate_limited);
    $("t-busy").textContent = fmt(tot.busy) + " / " + fmt((tot.rejected || 0) + (tot.error || 0) + (tot.already_purchased || 0) + (tot.not_open || 0));
    $("t-token").textContent = fmt(tokenRefused(tot));
    $("t-token-why").textContent = TOKEN_REASONS.filter((r) => tot["token_" + r]).map((r) => r.replace("_", " ") + " " + fmt(tot["token_" + r])).join(" · ") || "none";
    if (s.error) say("Some numbers are stale: " + s.error, "warn");
    else if ($("message").classList.contains("warn")) say("");
  }

  function onHistory(list) {
    D.samples = (list || []).slice(-MAX_POINTS);
    D.peakIn = 0;
    D.peakDB = 0;
    for (const s of D.samples) {
      D.peakIn = Math.max(D.peakIn, sum(s.ingress_per_s));
      D.peakDB = Math.max(D.peakDB, s.db_writes_per_s || 0);
    }
    if (D.samples.length) show(D.samples[D.samples.length - 1]);
    redraw();
  }

  function onSample(s) {
    D.samples.push(s);
    if (D.samples.length > MAX_POINTS) D.samples.shift();
    show(s);
    redraw();
  }

  // ---- the stream -----------------------------------------------------------

  function reconnect(ms) {
    clearTimeout(D.retryTimer);
    D.retryTimer = setTimeout(connect, ms);
  }

  async function connect() {
    if (D.abort) D.abort.abort();
    const ctl = new AbortController();
    D.abort = ctl;
    const headers = { Accept: "text/event-stream" };
    if (D.token) headers.Authorization = "Bearer " + D.token;
    conn("connecting");
    let res;
    try {
      res = await fetch("/api/v1/dashboard/activities/" + encodeURIComponent(D.activityId) + "/stream", { headers, signal: ctl.signal, cache: "no-store" });
    } catch (e) {
      if (ctl.signal.aborted) return;
      conn("offline", "down");
      return reconnect(2000);
    }
    if (res.status === 401) {
      conn("locked", "down");
      $("auth").classList.remove("hidden");
      say(D.token ? "That admin token was refused." : "Outside demo mode the dashboard needs the admin token.", "warn");
      return;
    }
    if (res.status === 404) {
      conn("no such activity", "down");
      say("Activity " + D.activityId + " does not exist.", "error");
      return;
    }
    if (res.status !== 200) {
      conn("retrying", "down");
      return reconnect(res.status === 429 || res.status === 503 ? 3000 : 5000);
    }
    $("auth").classList.add("hidden");
    conn("live", "live");
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let ev = "message", data = "";
          for (const line of frame.split("\n")) {
            if (line.startsWith("event:")) ev = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (!data) continue;
          const v = JSON.parse(data);
          if (ev === "history") onHistory(v);
          else if (ev === "sample") onSample(v);
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    conn("reconnecting", "down");
    reconnect(1000);
  }

  // ---- activity picker --------------------------------------------------------

  async function loadList() {
    let list = [];
    try {
      const r = await fetch("/api/v1/activities", { cache: "no-store" });
      if (r.ok) list = (await r.json()).activities || [];
    } catch (e) { /* the stream reports the outage */ }
    const sel = $("activity");
    sel.textContent = "";
    for (const a of list) {
      const o = document.createElement("option");
      o.value = a.id;
      o.textContent = "#" + a.id + " " + a.name + " (" + a.state.replace("_", " ") + ")";
      sel.appendChild(o);
    }
    if (!D.activityId && list.length) {
      const live = list.find((a) => a.state === "active") || list.find((a) => a.state === "upcoming") || list[0];
      D.activityId = live.id;
    }
    if (D.activityId && !list.some((a) => a.id === D.activityId)) {
      const o = document.createElement("option");
      o.value = D.activityId;
      o.textContent = "#" + D.activityId;
      sel.appendChild(o);
    }
    sel.value = D.activityId;
  }

  $("pick").addEventListener("submit", (ev) => {
    ev.preventDefault();
    D.activityId = $("activity").value;
    history.replaceState(null, "", "?activity=" + encodeURIComponent(D.activityId));
    $("sale-link").href = "/?activity=" + encodeURIComponent(D.activityId);
    onHistory([]);
    connect();
  });

  $("auth").addEventListener("submit", (ev) => {
    ev.preventDefault();
    D.token = $("admin-token").value.trim();
    sessionStorage.setItem("seckill.admin", D.token);
    say("");
    connect();
  });

  async function start() {
    setupCharts();
    await loadList();
    if (!D.activityId) {
      conn("idle");
      say("No activity yet. Create one (POST /api/v1/admin/activities) and reload.", "info");
      return;
    }
    $("sale-link").href = "/?activity=" + encodeURIComponent(D.activityId);
    connect();
  }
  start();
})();
