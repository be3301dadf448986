// The dashboard page: reads only the dashboard's API (signed in by a personal link or by
// Telegram's Mini App data), draws with lightweight-charts, and follows live updates.
/* global LightweightCharts */
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const usd = (micro, d = 2) => `$${(micro / 1e6).toFixed(d)}`;
const num = (n, d = 2) => (n === undefined || n === null ? "–" : Number(n).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }));
const signed = (n, d = 2) => `<span class="${n >= 0 ? "pos" : "neg"}">${n >= 0 ? "+" : ""}${num(n, d)}</span>`;
const when = (t) => new Date(t).toISOString().slice(0, 16).replace("T", " ");
const secs = (t) => Math.floor(t / 1000);

// --- signing in: a link (?t=) or Telegram's signed data (#tgWebAppData=) ---
function credentials() {
  const link = new URLSearchParams(location.search).get("t");
  if (link) return { header: `Bearer ${link}`, query: `t=${encodeURIComponent(link)}` };
  let tg = new URLSearchParams(location.hash.slice(1)).get("tgWebAppData");
  if (tg) sessionStorage.setItem("tgWebAppData", tg);
  else tg = sessionStorage.getItem("tgWebAppData");
  if (tg) return { header: `tma ${tg}`, query: `tma=${encodeURIComponent(tg)}` };
  return undefined;
}
const creds = credentials();

function notice(text, error = false) {
  const n = $("notice");
  n.textContent = text;
  n.className = error ? "notice error" : "notice";
  n.hidden = !text;
}

async function api(path) {
  const res = await fetch(path, { headers: { authorization: creds.header }, cache: "no-store" });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) {
    signedOut(body.error, body.how);
    throw new Error("signed out");
  }
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

let live;
function signedOut(why, how) {
  live?.close();
  $("live").classList.remove("on");
  notice(`${why || "Not signed in."} ${how || "Type /dashboard in the team's chat for a new link."}`, true);
}

// --- charts ---
const LC = globalThis.LightweightCharts;
const chartOptions = () => ({
  autoSize: true,
  layout: { background: { color: "transparent" }, textColor: "#8b97a6", attributionLogo: false },
  grid: { vertLines: { color: "#222c36" }, horzLines: { color: "#222c36" } },
  timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#2a3541" },
  rightPriceScale: { borderColor: "#2a3541" },
});
let firstChartMarked = false;
function drawn(el) {
  el.dataset.drawn = "1";
  if (!firstChartMarked) {
    firstChartMarked = true;
    // Two frames: the chart paints on the next one.
    requestAnimationFrame(() => requestAnimationFrame(() => (document.body.dataset.firstChart = String(Math.round(performance.now())))));
  }
}

const equityChart = LC.createChart($("equity-chart"), chartOptions());
const equitySeries = equityChart.addSeries(LC.LineSeries, { color: "#4fc3f7", lineWidth: 2, priceLineVisible: false });
const drawdownSeries = equityChart.addSeries(LC.HistogramSeries, { color: "#ef5350", priceFormat: { type: "percent" }, priceLineVisible: false }, 1);

const priceChart = LC.createChart($("price-chart"), chartOptions());
const candles = priceChart.addSeries(LC.CandlestickSeries, { upColor: "#26a69a", downColor: "#ef5350", wickUpColor: "#26a69a", wickDownColor: "#ef5350", borderVisible: false });
const markers = LC.createSeriesMarkers(candles, []);
let priceLines = [];

async function loadEquity() {
  const e = await api("/api/equity");
  const pts = dedupe(e.points.map((p) => ({ time: secs(p.time), equity: p.equity, dd: p.drawdownPct })));
  equitySeries.setData(pts.map((p) => ({ time: p.time, value: p.equity })));
  drawdownSeries.setData(pts.map((p) => ({ time: p.time, value: -p.dd })));
  equityChart.timeScale().fitContent();
  const last = pts[pts.length - 1];
  $("equity-now").textContent = last ? `${num(last.equity)} ${e.quote} · max drawdown ${num(e.maxDrawdownPct)}%` : "no equity points yet (the position monitor records them)";
  drawn($("equity-chart"));
}

/** One point per second (the chart's unit), the last one winning. */
function dedupe(points) {
  const out = [];
  for (const p of points) {
    if (out.length && out[out.length - 1].time === p.time) out[out.length - 1] = p;
    else if (!out.length || out[out.length - 1].time < p.time) out.push(p);
  }
  return out;
}

async function loadPrice() {
  const symbol = $("price-symbol").value;
  if (!symbol) return;
  const p = await api(`/api/price?symbol=${encodeURIComponent(symbol)}&limit=200`);
  const bars = dedupe(p.candles.map((c) => ({ time: secs(c.time), open: c.open, high: c.high, low: c.low, close: c.close })));
  candles.setData(bars);
  // Each mark on the candle it happened in.
  const barOf = (t) => {
    let lo = 0;
    for (let i = 0; i < bars.length && bars[i].time <= t; i++) lo = i;
    return bars[lo]?.time;
  };
  markers.setMarkers(
    p.markers
      .filter((m) => bars.length && secs(m.time) >= bars[0].time)
      .map((m) => ({ time: barOf(secs(m.time)), position: m.kind === "entry" ? "belowBar" : "aboveBar", shape: m.kind === "entry" ? "arrowUp" : "arrowDown", color: m.kind === "entry" ? "#26a69a" : "#ef5350", text: m.label }))
      .sort((a, b) => a.time - b.time),
  );
  for (const l of priceLines) candles.removePriceLine(l);
  priceLines = [];
  if (p.stops) {
    priceLines.push(candles.createPriceLine({ price: p.stops.entry, color: "#8b97a6", lineStyle: 2, title: "entry" }));
    priceLines.push(candles.createPriceLine({ price: p.stops.stopLoss, color: "#ef5350", lineStyle: 2, title: "stop" }));
    priceLines.push(candles.createPriceLine({ price: p.stops.takeProfit, color: "#26a69a", lineStyle: 2, title: "target" }));
  }
  priceChart.timeScale().fitContent();
  drawn($("price-chart"));
}

// --- tables ---
async function loadPositions() {
  const p = await api("/api/positions");
  $("cash").textContent = `cash ${num(p.cash)} · equity ${num(p.equity)} ${p.quote}`;
  const rows = p.positions.map(
    (x) => `<tr><td>${esc(x.symbol)}</td><td class="num">${num(x.qty, 6)}</td><td class="num">${num(x.entryPrice)}</td><td class="num">${num(x.last)}</td><td class="num">${signed(x.unrealizedPnl)}</td><td class="num">${num(x.stopLoss)}</td><td class="num">${num(x.takeProfit)}</td></tr>`,
  );
  const pending = p.pendingOrders.map((o) => `<p class="d-more">pending ${esc(o.side)} ${esc(o.symbol)} ${num(o.qty, 6)} (${esc(o.origin)}): outcome not known yet, ${o.lookups} lookups</p>`);
  $("positions").innerHTML = p.positions.length
    ? `<div class="tablewrap"><table><thead><tr><th>symbol</th><th class="num">qty</th><th class="num">entry</th><th class="num">last</th><th class="num">P&amp;L</th><th class="num">stop</th><th class="num">target</th></tr></thead><tbody>${rows.join("")}</tbody></table></div>${pending.join("")}`
    : `<p class="d-more">No open position.</p>${pending.join("")}`;
}

function capBar(label, spent, reserved, cap) {
  const pct = cap > 0 ? Math.min(100, (spent / cap) * 100) : 0;
  const cls = pct >= 100 ? "over" : pct >= 80 ? "hot" : "";
  return `<div>${label}: ${usd(spent, 4)} of ${usd(cap)}${reserved ? ` (+${usd(reserved, 4)} held)` : ""}</div><div class="bar" role="progressbar" aria-valuenow="${pct.toFixed(0)}"><span class="${cls}" data-pct="${pct.toFixed(1)}"></span></div>`;
}

/** Daily spend as plain SVG bars, the daily cap as a line. */
function spendBars(days, cap) {
  const w = 300;
  const h = 90;
  const max = Math.max(cap, ...days.map((d) => d.costMicro), 1);
  const bw = w / days.length;
  const bars = days.map((d, i) => {
    const bh = (d.costMicro / max) * (h - 14);
    return `<rect x="${(i * bw + 1).toFixed(1)}" y="${(h - 12 - bh).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${bh.toFixed(1)}" fill="${d.costMicro > cap ? "#ef5350" : "#4fc3f7"}"><title>${esc(d.day)}: ${usd(d.costMicro, 4)}, ${d.calls} calls</title></rect>`;
  });
  const capY = (h - 12 - (cap / max) * (h - 14)).toFixed(1);
  return `<svg viewBox="0 0 ${w} ${h}" width="100%" role="img" aria-label="spend per day against the daily cap">${bars.join("")}<line x1="0" x2="${w}" y1="${capY}" y2="${capY}" stroke="#f5a623" stroke-dasharray="4 3"/><text x="2" y="${h - 1}">${esc(days[0]?.day ?? "")}</text><text x="${w - 2}" y="${h - 1}" text-anchor="end">${esc(days[days.length - 1]?.day ?? "")}</text></svg>`;
}

async function loadSpend() {
  const s = await api("/api/spend?days=30");
  $("caps").innerHTML = capBar("Today", s.today.spentMicro, s.today.reservedMicro, s.caps.dailyMicro) + capBar("This month", s.month.spentMicro, s.month.reservedMicro, s.caps.monthlyMicro);
  // Widths set through the DOM: the page's CSP allows no inline style.
  for (const bar of $("caps").querySelectorAll("[data-pct]")) bar.style.width = `${bar.dataset.pct}%`;
  $("spend-bars").innerHTML = spendBars(s.perDay, s.caps.dailyMicro);
  $("spend-models").innerHTML = s.perModel.length
    ? `<table><thead><tr><th>model (30 days)</th><th class="num">calls</th><th class="num">cost</th></tr></thead><tbody>${s.perModel.map((m) => `<tr><td>${esc(m.model)}</td><td class="num">${m.calls}</td><td class="num">${usd(m.costMicro, 4)}</td></tr>`).join("")}</tbody></table>`
    : `<p class="d-more">No paid model call in 30 days.</p>`;
  $("sessions").innerHTML = s.sessions.length
    ? `<details><summary>${s.sessions.length} permit session(s)</summary><table><thead><tr><th>session</th><th>status</th><th class="num">calls</th><th class="num">booked</th><th class="num">settled</th><th class="num">left</th></tr></thead><tbody>${s.sessions
        .map((x) => `<tr><td>${esc(x.id.slice(0, 10))}</td><td>${esc(x.status)}</td><td class="num">${x.calls}</td><td class="num">${usd(x.bookedMicro, 4)}</td><td class="num">${usd(x.settledMicro, 4)}</td><td class="num">${usd(x.leftMicro, 4)}</td></tr>`)
        .join("")}</tbody></table></details>`
    : "";
}

async function loadTrades() {
  const t = await api("/api/trades");
  $("realized").innerHTML = `${signed(t.realizedPnl)} ${esc(t.quote)} over ${t.trades.length} closed trade(s)`;
  const table = (rows, key) =>
    rows.length ? `<table><thead><tr><th>${key}</th><th class="num">trades</th><th class="num">wins</th><th class="num">P&amp;L</th></tr></thead><tbody>${rows.map((r) => `<tr><td>${esc(r[key])}</td><td class="num">${r.trades}</td><td class="num">${r.wins}</td><td class="num">${signed(r.pnl)}</td></tr>`).join("")}</tbody></table>` : "";
  $("pnl-symbol").innerHTML = table(t.bySymbol, "symbol") || `<p class="d-more">No closed trade yet.</p>`;
  $("pnl-day").innerHTML = t.byDay.length ? `<details><summary>by day</summary>${table(t.byDay.slice().reverse(), "day")}</details>` : "";
}

async function loadBalance() {
  const b = await api("/api/balance?days=30");
  $("balance").innerHTML = `<p>${usd(b.balanceMicro)} <span class="tag">${esc(b.level)}</span> <small>${esc(b.wallet)}</small></p><p class="d-more">warn under $${num(b.rules.minBalance)}, trading pauses under $${num(b.rules.criticalBalance)}; auto-refill ${b.rules.autoRefill ? "on" : "off"}</p>`;
}

async function loadStatus() {
  const s = await api("/api/status");
  $("status").innerHTML = `<p>${s.paused ? '<span class="fail">Trading paused</span>' : '<span class="ok">Trading on</span>'} · ${s.status === "ok" ? '<span class="ok">all parts ok</span>' : `<span class="fail">failing: ${esc(s.failing.join(", "))}</span>`}</p><table><tbody>${Object.entries(s.parts)
    .map(([part, h]) => `<tr><td>${esc(part)}</td><td class="${h.ok ? "ok" : "fail"}">${h.ok ? "ok" : "failing"}</td><td>${esc(h.detail ?? "")}</td></tr>`)
    .join("")}</tbody></table>`;
}

async function loadAudit() {
  const a = await api("/api/audit?limit=50");
  $("audit").innerHTML = `<div class="tablewrap"><table><thead><tr><th>time (UTC)</th><th>who</th><th>command</th><th>result</th><th>detail</th></tr></thead><tbody>${a.entries
    .map((e) => `<tr><td>${when(e.time)}</td><td>${esc(e.user)} (${esc(e.platform)})</td><td>${esc(e.command)}</td><td>${esc(e.result)}</td><td>${esc(e.detail)}</td></tr>`)
    .join("")}</tbody></table></div>`;
}

// --- the diary ---
let diaryNext = null;
function diaryItem(d, fresh) {
  const ind = Object.entries(d.indicators).slice(0, 8).map(([k, v]) => `${esc(k)} ${esc(typeof v === "number" ? num(v, v > 100 ? 2 : 4) : v)}`).join(" · ");
  const order = d.order ? `order ${esc(d.order.side)} ${num(d.order.qty, 6)} @ ${num(d.order.avgPrice)} (${esc(d.order.status)})` : "";
  const research = d.research ? `research: ${esc(d.research.source)} (${esc(d.research.served)}${d.research.costMicro ? `, ${usd(d.research.costMicro, 4)}` : ""})` : "";
  return `<li data-id="${esc(d.id)}" class="${fresh ? "fresh" : ""}"><div class="d-head"><b>${esc(d.symbol)}</b><span class="tag ${esc(d.action)}">${esc(d.action)}</span><span class="tag">${esc(d.outcome)}</span><small>${when(d.time)} · ${esc(d.model)} · ${usd(d.costMicro, 4)}${d.confidence !== undefined ? ` · conf ${num(d.confidence, 2)}` : ""}</small></div>
<div>${esc(d.reasons.join("; ") || d.error || "")}</div>
<details><summary>details</summary><div class="d-more">${ind}</div>${d.risk ? `<div class="d-more">risk: ${esc(d.risk.outcome)}: ${esc(d.risk.message)}</div>` : ""}${order ? `<div class="d-more">${order}</div>` : ""}${research ? `<div class="d-more">${research}</div>` : ""}</details></li>`;
}

function diaryQuery(cursor) {
  const q = new URLSearchParams({ limit: "30" });
  if ($("diary-symbol").value) q.set("symbol", $("diary-symbol").value);
  if ($("diary-action").value) q.set("action", $("diary-action").value);
  if (cursor) q.set("cursor", cursor);
  return `/api/diary?${q}`;
}

async function loadDiary(more = false) {
  const page = await api(diaryQuery(more ? diaryNext : null));
  const shown = new Set([...$("diary").children].map((li) => li.dataset.id));
  const html = page.entries.map((d) => diaryItem(d, !more && shown.size > 0 && !shown.has(d.id))).join("");
  if (more) $("diary").insertAdjacentHTML("beforeend", html);
  else $("diary").innerHTML = html || `<li class="d-more">No decision matches.</li>`;
  diaryNext = page.next;
  $("diary-more").hidden = !diaryNext;
}

// --- live updates ---
const refresh = {};
function soon(name, fn) {
  clearTimeout(refresh[name]);
  refresh[name] = setTimeout(() => fn().catch(() => {}), 150);
}
function follow() {
  live = new EventSource(`/api/events?${creds.query}`);
  live.onopen = () => $("live").classList.add("on");
  live.onerror = () => {
    $("live").classList.remove("on");
    // A refused stream is closed for good: say why once the API says it.
    if (live.readyState === EventSource.CLOSED) api("/api/me").catch(() => {});
  };
  live.addEventListener("decision", () => {
    soon("diary", () => loadDiary());
    soon("spend", loadSpend);
  });
  live.addEventListener("fill", () => {
    soon("positions", loadPositions);
    soon("price", loadPrice);
    soon("trades", loadTrades);
    soon("equity", loadEquity);
  });
  live.addEventListener("alert", (e) => {
    const a = JSON.parse(e.data);
    notice(a.text.split("\n")[0]);
    soon("status", loadStatus);
  });
  live.addEventListener("expired", (e) => {
    const why = JSON.parse(e.data || "{}").why;
    signedOut(why ? `Signed out: ${why}.` : "This link has expired.", "Type /dashboard in the team's chat for a new one.");
  });
}

async function start() {
  document.body.dataset.started = String(Math.round(performance.now()));
  if (!creds) {
    notice("Not signed in: open the dashboard with /dashboard in the team's chat (a personal link, or in Telegram its button).", true);
    return;
  }
  // The equity chart needs nothing from /api/me: asked at once, beside it.
  const equity = loadEquity();
  equity.catch(() => {});
  const me = await api("/api/me");
  document.body.dataset.signedIn = String(Math.round(performance.now()));
  $("paper").hidden = !me.paper;
  if (me.paper) document.title = `[PAPER] ${document.title}`;
  $("who").textContent = `${me.user.name} · ${me.role}${me.expiresAt ? ` · link until ${when(me.expiresAt).slice(11)} UTC` : ""}`;
  for (const s of me.symbols) {
    $("price-symbol").insertAdjacentHTML("beforeend", `<option>${esc(s)}</option>`);
    $("diary-symbol").insertAdjacentHTML("beforeend", `<option>${esc(s)}</option>`);
  }
  $("price-symbol").onchange = () => loadPrice();
  $("diary-symbol").onchange = () => loadDiary();
  $("diary-action").onchange = () => loadDiary();
  $("diary-more").onclick = () => loadDiary(true);
  follow();
  const loads = [equity, loadPrice(), loadPositions(), loadSpend(), loadDiary(), loadTrades(), loadBalance(), loadStatus()];
  if (me.role === "admin") {
    $("s-audit").hidden = false;
    loads.push(loadAudit());
  }
  const failed = (await Promise.allSettled(loads)).filter((r) => r.status === "rejected" && r.reason.message !== "signed out");
  if (failed.length) notice(`Some parts could not be read: ${failed[0].reason.message}`, true);
  document.body.dataset.ready = "1";
}

start().catch((err) => {
  if (err.message !== "signed out") notice(`The dashboard could not start: ${err.message}`, true);
});
