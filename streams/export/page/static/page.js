// kpi-pulse live page: polls /page.json and draws tiles, SVG sparklines with the expected band,
// open alerts and stale sources. Hand-written, no dependencies, nothing fetched from elsewhere.
"use strict";

const POLL_MS = 2000;
const MAX_ALERTS = 20;
const FAST = ["1m", "5m", "1h", "1d"];
const SVG = "http://www.w3.org/2000/svg";
let chosen = "1m";
let last = null;

const number = (digits) =>
  new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const fmt2 = number(2);
const fmt1 = number(1);
const fmt0 = number(0);

function formatValue(value, unit, currency) {
  if (value === null || value === undefined) return "–";
  switch (unit) {
    case "currency": return `${fmt2.format(value)} ${currency}`;
    case "ratio": return `${fmt1.format(value * 100)} %`;
    case "count": return fmt0.format(value);
    case "days": return `${fmt1.format(value)} d`;
    case "seconds": return `${fmt1.format(value)} s`;
    default: return fmt2.format(value);
  }
}

function utc(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

function hhmm(seconds) {
  return new Date(seconds * 1000).toISOString().slice(11, 16);
}

function day(seconds) {
  return new Date(seconds * 1000).toISOString().slice(0, 10);
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function sparkline(points) {
  const w = 220, h = 52, pad = 3;
  const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "spark", role: "img" });
  if (!points.length) {
    const t = svg("text", { x: 4, y: 30, class: "empty" });
    t.textContent = "no band yet (no window scored)";
    root.append(t);
    return root;
  }
  const ys = points.flatMap((p) => [p.observed, p.lower, p.upper]).filter(Number.isFinite);
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (hi === lo) { hi += 1; lo -= 1; }
  let t0 = points[0].start;
  const t1 = points[points.length - 1].start;
  // One point so far: its band spans the width, the value sits at the right end.
  if (points.length === 1) {
    t0 = t1 - 1;
    points = [{ ...points[0], start: t0, ghost: true }, points[0]];
  }
  const x = (t) => pad + ((t - t0) / (t1 - t0)) * (w - 2 * pad);
  const y = (v) => h - pad - ((v - lo) / (hi - lo)) * (h - 2 * pad);
  const line = (key) => points.map((p) => `${x(p.start).toFixed(1)},${y(p[key]).toFixed(1)}`);
  const band = [...line("upper"), ...line("lower").reverse()].join(" ");
  root.append(svg("polygon", { class: "band", points: band }));
  root.append(svg("polyline", { class: "expected", points: line("expected").join(" ") }));
  root.append(svg("polyline", { class: "observed", points: line("observed").join(" ") }));
  for (const p of points) {
    if (!p.ghost && (p.observed < p.lower || p.observed > p.upper)) {
      root.append(svg("circle", { class: "outside", cx: x(p.start), cy: y(p.observed), r: 2.5 }));
    }
  }
  const end = points[points.length - 1];
  root.append(svg("circle", { class: "last", cx: x(end.start), cy: y(end.observed), r: 2 }));
  const title = svg("title");
  title.textContent = `observed ${fmt2.format(end.observed)}, expected ${fmt2.format(end.expected)} ` +
    `(band ${fmt2.format(end.lower)} – ${fmt2.format(end.upper)})`;
  root.append(title);
  return root;
}

function tile(t, currency) {
  const node = el("div", {
    class: `tile${t.alert ? " " + t.alert : ""}`,
    "data-kpi": t.kpi,
    "data-window": t.window,
    "data-end": String(t.end),
    title: t.description,
  });
  const name = el("div", { class: "name" });
  name.append(el("span", {}, t.kpi.replaceAll("_", " ")), el("span", {}, t.window));
  node.append(name);
  node.append(el("div", { class: "value", "data-value": String(t.value) },
    formatValue(t.value, t.unit, currency)));
  const span = t.end - t.start >= 86400
    ? `${day(t.start)} – ${day(t.end)}`
    : `${hhmm(t.start)}–${hhmm(t.end)} UTC`;
  node.append(el("div", { class: "when" },
    `${span}${t.alert ? " · alert open (" + t.alert + ")" : ""}`));
  node.append(sparkline(t.points));
  return node;
}

function dims(d) {
  const pairs = Object.entries(d).sort();
  return pairs.length ? pairs.map(([k, v]) => `${k}=${v}`).join(", ") : "company-wide";
}

function renderAlerts(alerts, currency, units) {
  const list = document.getElementById("alerts");
  list.replaceChildren();
  const count = document.getElementById("alert-count");
  count.textContent = alerts.length;
  count.classList.toggle("hot", alerts.length > 0);
  if (!alerts.length) { list.append(el("li", { class: "none" }, "none open")); return; }
  for (const a of alerts.slice(0, MAX_ALERTS)) {
    const item = el("li", {
      class: `alert ${a.severity}`,
      "data-kpi": a.kpi,
      "data-window": a.window,
      "data-dimensions": Object.entries(a.dimensions).sort().map(([k, v]) => `${k}=${v}`).join(";"),
    });
    item.append(el("span", { class: "severity" }, a.severity), " ");
    item.append(el("span", { class: "series" }, `${a.kpi} ${a.window} · ${dims(a.dimensions)}`));
    if (a.explanation) item.append(el("div", { class: "explanation" }, a.explanation));
    const unit = units[a.kpi] || "";
    item.append(el("div", { class: "detail" },
      `since ${utc(a.started_at)} · observed ${formatValue(a.observed, unit, currency)} · ` +
      `expected ${formatValue(a.expected, unit, currency)} ` +
      `(${formatValue(a.lower, unit, currency)} – ${formatValue(a.upper, unit, currency)}) · ` +
      `score ${a.score === null ? "–" : a.score.toFixed(2)}`));
    list.append(item);
  }
  if (alerts.length > MAX_ALERTS) {
    list.append(el("li", { class: "none" }, `and ${alerts.length - MAX_ALERTS} more (see /metrics)`));
  }
}

function renderStale(stale) {
  const list = document.getElementById("stale");
  list.replaceChildren();
  const count = document.getElementById("stale-count");
  count.textContent = stale.length;
  count.classList.toggle("hot", stale.length > 0);
  if (!stale.length) { list.append(el("li", { class: "none" }, "every source is fresh")); return; }
  for (const s of stale) {
    const item = el("li", { class: "stale", "data-source": s.source });
    item.append(el("span", { class: "series" }, s.source), " ");
    item.append(el("span", { class: "detail" }, `silent since ${utc(s.since)}`));
    list.append(item);
  }
}

function renderWindows(present) {
  const nav = document.getElementById("windows");
  nav.replaceChildren();
  for (const w of FAST.filter((x) => present.has(x))) {
    const b = el("button", { type: "button", "aria-pressed": String(w === chosen), "data-window": w }, w);
    b.addEventListener("click", () => { chosen = w; if (last) render(last); });
    nav.append(b);
  }
}

function render(data) {
  last = data;
  const cur = data.currency;
  const put = (id, text) => { document.getElementById(id).textContent = text; };
  put("throughput", data.throughput === null ? "–" : `${fmt1.format(data.throughput)} events/s`);
  put("lag", `${fmt0.format(data.lag.total)} messages`);
  put("counted", fmt0.format(data.counted));
  put("rejected", fmt0.format(data.rejected));
  put("partitions", String(data.partitions));
  put("watermark", utc(data.watermark));
  const units = Object.fromEntries(data.tiles.map((t) => [t.kpi, t.unit]));
  renderAlerts(data.alerts, cur, units);
  renderStale(data.stale);
  renderWindows(new Set(data.tiles.map((t) => t.window)));
  const fast = document.getElementById("tiles");
  const slow = document.getElementById("slow-tiles");
  fast.replaceChildren(...data.tiles.filter((t) => t.window === chosen).map((t) => tile(t, cur)));
  slow.replaceChildren(...data.tiles.filter((t) => !FAST.includes(t.window)).map((t) => tile(t, cur)));
  if (!data.tiles.length) fast.append(el("p", { class: "detail" }, "no closed window yet"));
  document.body.dataset.generatedAt = String(data.generated_at);
}

async function poll() {
  const state = document.getElementById("connection");
  try {
    const response = await fetch("/page.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
    state.textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC`;
    state.classList.remove("lost");
  } catch (error) {
    state.textContent = `cannot reach the worker (${error.message}); retrying`;
    state.classList.add("lost");
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

document.addEventListener("DOMContentLoaded", poll);
