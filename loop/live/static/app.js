// The live view of an insitu run: it follows /api/events (server-sent
// events; the first carries the whole state, later ones what is new) and
// draws on canvas. STOP, PAUSE and RESUME are POSTs to /api/*; the access
// cookie set when the page was opened with ?token= authorizes them.
"use strict";

const $ = (id) => document.getElementById(id);
const run = { queries: [], iterations: [], predictions: [], state: null, input: null, output: null, ended: false };
let dirty = false;

// ---- formatting ----

function fmt(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(digits - 1);
  return Number(v.toPrecision(digits)).toString();
}

function duration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "–";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m${String(sec).padStart(2, "0")}s`;
  return `${sec}s`;
}

// ---- plotting ----

function niceStep(span, n) {
  const raw = span / Math.max(n, 1);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

function ticks(lo, hi, n) {
  if (!(hi > lo)) return [lo];
  const step = niceStep(hi - lo, n);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return out;
}

// logTicks are ticks on a log10 axis from y0 to y1 (exponents): the
// decades, or 1, 2 and 5 times them when the axis spans less than two.
function logTicks(y0, y1) {
  const out = [];
  const mult = y1 - y0 < 2 ? [1, 2, 5] : [1];
  for (let e = Math.floor(y0); e <= Math.ceil(y1); e++) {
    for (const m of mult) {
      const t = e + Math.log10(m);
      if (t >= y0 && t <= y1) out.push(t);
    }
  }
  if (out.length < 2) {
    return ticks(Math.pow(10, y0), Math.pow(10, y1), 4).filter((v) => v > 0).map(Math.log10);
  }
  return out;
}

// setup sizes a canvas's backing store to its CSS size and returns its
// context in CSS pixels.
function setup(canvas) {
  const r = canvas.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(Math.round(r.width), 50), h = Math.max(Math.round(r.height), 50);
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  return { g, w, h };
}

const colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#d62728", "#8c564b", "#e377c2", "#17becf"];

// plot draws series {xs, ys, kind: "line"|"dots"|"step", color} on shared
// axes; log: a logarithmic y axis (non-positive values are left out).
function plot(canvas, series, opts = {}) {
  const { g, w, h } = setup(canvas);
  const tr = (v) => (opts.log ? (v > 0 ? Math.log10(v) : NaN) : v);
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity, n = 0;
  for (const s of series) {
    for (let i = 0; i < s.xs.length; i++) {
      const x = s.xs[i], y = tr(s.ys[i]);
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); n++;
    }
  }
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#687082";
  if (n === 0) {
    g.fillText(opts.empty || "no data yet", 12, h / 2);
    return 0;
  }
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { const d = Math.abs(y0) * 0.1 || 1; y0 -= d; y1 += d; }
  const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
  const L = opts.ylabel ? 70 : 56, R = 10, T = 8, B = 30;
  const px = (x) => L + ((x - x0) / (x1 - x0)) * (w - L - R);
  const py = (y) => T + (1 - (y - y0) / (y1 - y0)) * (h - T - B);
  g.strokeStyle = "#e6e9ef"; g.lineWidth = 1;
  g.textAlign = "right"; g.textBaseline = "middle";
  const yt = opts.log ? logTicks(y0, y1) : ticks(y0, y1, 5);
  for (const t of yt) {
    g.beginPath(); g.moveTo(L, py(t) + 0.5); g.lineTo(w - R, py(t) + 0.5); g.stroke();
    g.fillText(opts.log ? fmt(Math.pow(10, t), 2) : fmt(t, 3), L - 4, py(t));
  }
  g.textAlign = "center"; g.textBaseline = "top";
  for (const t of ticks(x0, x1, Math.max(2, Math.floor((w - L) / 90)))) {
    if (opts.integerX && !Number.isInteger(t)) continue;
    g.fillText(fmt(t, 4), px(t), h - B + 4);
  }
  if (opts.xlabel) { g.textAlign = "right"; g.fillText(opts.xlabel, w - R, h - 13); }
  if (opts.ylabel) yLabel(g, opts.ylabel, T + (h - T - B) / 2);
  g.strokeStyle = "#b8bfcc";
  g.beginPath(); g.moveTo(L, T); g.lineTo(L, h - B); g.lineTo(w - R, h - B); g.stroke();
  g.save();
  g.beginPath(); g.rect(L, T, w - L - R, h - T - B); g.clip();
  for (const s of series) {
    g.strokeStyle = g.fillStyle = s.color;
    if (s.kind === "dots") {
      g.globalAlpha = s.alpha || 0.45;
      const r = s.xs.length > 5000 ? 1 : 1.8;
      for (let i = 0; i < s.xs.length; i++) {
        const y = tr(s.ys[i]);
        if (!Number.isFinite(y)) continue;
        g.fillRect(px(s.xs[i]) - r, py(y) - r, 2 * r, 2 * r);
      }
      g.globalAlpha = 1;
      continue;
    }
    g.lineWidth = s.width || 1.8;
    g.beginPath();
    let up = true, last = null;
    for (let i = 0; i < s.xs.length; i++) {
      const y = tr(s.ys[i]);
      if (!Number.isFinite(y)) { up = true; continue; }
      const X = px(s.xs[i]), Y = py(y);
      if (up) g.moveTo(X, Y);
      else if (s.kind === "step") { g.lineTo(X, last); g.lineTo(X, Y); }
      else g.lineTo(X, Y);
      up = false; last = Y;
    }
    g.stroke();
  }
  g.restore();
  return n;
}

// yLabel writes an axis title up the left edge, centred on y.
function yLabel(g, text, y) {
  g.save();
  g.translate(11, y);
  g.rotate(-Math.PI / 2);
  g.textAlign = "center"; g.textBaseline = "middle"; g.fillStyle = "#687082";
  g.fillText(text, 0, 0);
  g.restore();
}

// withUnit is "label (unit)", or the label alone when the unit is unknown.
function withUnit(label, unit) {
  return unit ? `${label} (${unit})` : label;
}

// ---- images and bars ----

// A cyclic colour map for phase: the same colour at 0 and one period.
function phaseColor(t) {
  const a = 2 * Math.PI * t;
  return [0.5 + 0.5 * Math.cos(a), 0.5 + 0.5 * Math.cos(a - 2.0944), 0.5 + 0.5 * Math.cos(a - 4.1888)].map((v) => Math.round(255 * (0.12 + 0.8 * v)));
}

// A sequential colour map for intensity: black, purple, orange, yellow.
const heatStops = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];
function heatColor(t) {
  const x = Math.min(Math.max(t, 0), 1) * (heatStops.length - 1);
  const i = Math.min(Math.floor(x), heatStops.length - 2), f = x - i;
  return heatStops[i].map((v, k) => Math.round(v + f * (heatStops[i + 1][k] - v)));
}
const phaseLUT = Array.from({ length: 256 }, (_, i) => phaseColor(i / 256));
const heatLUT = Array.from({ length: 256 }, (_, i) => heatColor(i / 255));

function drawImage(canvas, v) {
  const bytes = Uint8Array.from(atob(v.pixels), (c) => c.charCodeAt(0));
  canvas.width = v.cols; canvas.height = v.rows;
  canvas.style.aspectRatio = `${v.cols} / ${v.rows}`;
  const g = canvas.getContext("2d");
  const img = g.createImageData(v.cols, v.rows);
  const lut = v.kind === "phase" ? phaseLUT : heatLUT;
  for (let k = 0; k < bytes.length; k++) {
    const c = lut[bytes[k]];
    img.data[4 * k] = c[0]; img.data[4 * k + 1] = c[1]; img.data[4 * k + 2] = c[2]; img.data[4 * k + 3] = 255;
  }
  g.putImageData(img, 0, 0);
}

// drawBars draws v's bars on canvas; label names the quantity for the
// axis title (its unit added when the bars share one).
function drawBars(canvas, v, label) {
  const { g, w, h } = setup(canvas);
  const n = v.values.length;
  if (n === 0) return;
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < n; i++) {
    for (const x of [v.values[i], v.lo ? v.lo[i] : null, v.hi ? v.hi[i] : null]) {
      if (x !== null && Number.isFinite(x)) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
    }
  }
  lo = Math.min(lo, 0); hi = Math.max(hi, 0);
  if (!(hi > lo)) { hi = lo + 1; }
  const L = 62, B = n <= 24 ? 26 : 8, T = 6;
  const py = (y) => T + (1 - (y - lo) / (hi - lo)) * (h - T - B);
  const bw = (w - L - 4) / n;
  g.font = "11px system-ui, sans-serif"; g.fillStyle = "#687082"; g.textAlign = "right"; g.textBaseline = "middle";
  for (const t of ticks(lo, hi, 4)) g.fillText(fmt(t, 3), L - 4, py(t));
  yLabel(g, withUnit(label, v.unit), T + (h - T - B) / 2);
  g.strokeStyle = "#b8bfcc"; g.beginPath(); g.moveTo(L, py(0) + 0.5); g.lineTo(w, py(0) + 0.5); g.stroke();
  for (let i = 0; i < n; i++) {
    const x = L + i * bw;
    if (v.lo && v.hi) {
      g.fillStyle = "#eef1f6";
      g.fillRect(x + bw * 0.1, py(v.hi[i]), bw * 0.8, py(v.lo[i]) - py(v.hi[i]));
    }
    const y = v.values[i];
    if (y === null || !Number.isFinite(y)) continue;
    g.fillStyle = colors[0];
    g.fillRect(x + bw * 0.15, Math.min(py(y), py(0)), bw * 0.7, Math.max(Math.abs(py(y) - py(0)), 1));
  }
  if (n <= 24) {
    g.fillStyle = "#687082"; g.textAlign = "center"; g.textBaseline = "top";
    for (let i = 0; i < n; i++) g.fillText(barName(v.names[i]), L + (i + 0.5) * bw, h - B + 6);
  }
}

// barName shortens a component's name to fit under its bar: a rig part's
// prefix goes (the caption and the names say which), then the middle.
function barName(n) {
  const s = n.includes("/") ? n.slice(n.lastIndexOf("/") + 1) : n;
  return s.length > 10 ? s.slice(0, 4) + "…" + s.slice(-5) : s;
}

function drawVector(prefix, v) {
  const img = $(prefix + "-image"), bars = $(prefix + "-bars");
  if (!v) return;
  const hasImage = !!v.pixels;
  img.hidden = !hasImage;
  bars.hidden = !(v.values && v.values.length);
  if (hasImage) drawImage(img, v);
  if (!bars.hidden) drawBars(bars, v, prefix === "input" ? "setpoint" : "reading");
  let cap = `query #${v.n || "?"} (journal id ${v.id})`;
  const iu = v.image_unit ? " " + v.image_unit : "";
  if (hasImage && v.kind === "phase") cap += ` · ${v.rows}×${v.cols} phase map, cyclic colours over [${fmt(v.min, 3)}, ${fmt(v.max, 3)}]${iu}`;
  if (hasImage && v.kind === "image") cap += ` · ${v.rows}×${v.cols} image, ${fmt(v.min, 3)}${iu} (black) to ${fmt(v.max, 3)}${iu} (white)`;
  if (v.bars_total) cap += ` · ${v.values.length} of ${v.bars_total} components shown`;
  $(prefix + "-caption").textContent = cap;
}

// ---- the state ----

function merge(msg) {
  const q = run.queries;
  q.length = Math.min(q.length, msg.queries_from);
  for (const p of msg.queries) q.push(p);
  const it = run.iterations;
  it.length = Math.min(it.length, msg.iterations_from);
  for (const p of msg.iterations) it.push(p);
  const pr = run.predictions;
  pr.length = Math.min(pr.length, msg.predictions_from);
  for (const p of msg.predictions) pr.push(p);
  if (msg.input) run.input = msg.input;
  if (msg.output) run.output = msg.output;
  run.state = msg;
  dirty = true;
}

function render() {
  const s = run.state;
  if (!s) return;
  const r = s.run;
  document.title = `${r.name || "insitu"} · ${s.status}`;
  $("name").textContent = r.name || "insitu";
  $("method").textContent = `${r.command} · ${r.method}`;
  $("kind").textContent = r.kind;
  $("dir").textContent = r.dir;
  let status = s.status;
  if (s.stopping && s.status === "running") status = "stopping";
  else if (s.paused && s.status === "running") status = s.holding ? "paused" : "pausing";
  const badge = $("status");
  badge.textContent = s.ended ? `${status} · ended` : status;
  badge.className = "badge " + (status === "pausing" ? "paused" : status);

  const over = s.ended || s.status !== "running";
  $("stop").disabled = over || s.stopping;
  $("pause").disabled = over || s.stopping;
  $("resume").disabled = over || s.stopping;
  $("pause").hidden = s.paused;
  $("resume").hidden = !s.paused;

  const p = s.progress;
  $("q-measured").textContent = p.measured;
  $("q-budget-wrap").hidden = !(p.budget > 0);
  $("q-budget").textContent = p.budget;
  $("budget-bar").style.width = p.budget > 0 ? `${Math.min(100, (100 * p.measured) / p.budget)}%` : "0";
  $("unit").textContent = r.unit;
  for (const e of document.querySelectorAll(".unit-name")) e.textContent = r.unit;
  $("iteration").textContent = p.iteration >= 0 ? p.iteration : "–";
  $("iterations-wrap").hidden = !(r.iterations > 0);
  $("iterations").textContent = r.iterations;
  $("best").textContent = r.objective ? fmt(p.best, 5) : (run.iterations.length ? fmt(run.iterations[run.iterations.length - 1].best, 4) + " test acc." : "–");
  $("qps").textContent = fmt(p.qps, 3);
  $("eta").textContent = duration(p.eta_s);
  $("elapsed").textContent = duration(p.elapsed_s);
  $("failed-wrap").hidden = !(p.failed > 0);
  $("failed").textContent = p.failed;

  drawCurve(r);
  $("input-title").textContent = r.objective ? "Best input" : "Last input";
  drawVector("input", run.input);
  drawVector("output", run.output);
  drawIterations();
  drawGuard(s.guard);
  drawEvents(s);
  $("error").textContent = s.error ? `journal: ${s.error}` : "";
}

function drawCurve(r) {
  const c = $("curve");
  const q = run.queries;
  let n; // points drawn: queries, or epochs of a training
  if (r.objective) {
    $("curve-title").textContent = `Objective vs queries (${r.direction === "max" ? "maximized" : "minimized"}) · ${r.method} · ${r.name}`;
    $("curve-legend").innerHTML = '<span class="key dot c0"></span>each query <span class="key c1"></span>best so far';
    const xs = q.map((p) => p.n);
    n = plot(c, [
      { xs, ys: q.map((p) => p.f), kind: "dots", color: colors[0] },
      { xs, ys: q.map((p) => p.best), kind: "step", color: colors[1] },
    ], { xlabel: "queries", ylabel: withUnit(r.objective_kind || "objective", r.objective_unit), empty: "waiting for the first query" }) > 0 ? q.length : 0;
  } else {
    $("curve-title").textContent = `Accuracy on the black box vs queries · ${r.method} · ${r.name}`;
    $("curve-legend").innerHTML = '<span class="key c1"></span>test <span class="key c0"></span>train';
    const it = run.iterations;
    const xs = it.map((p) => p.queries);
    n = plot(c, [
      { xs, ys: it.map((p) => p.step), kind: "line", color: colors[0] },
      { xs, ys: it.map((p) => p.best), kind: "line", color: colors[1] },
    ], { xlabel: "queries", ylabel: "accuracy", empty: "waiting for the first epoch" }) > 0 ? it.length : 0;
  }
  c.dataset.points = String(n);
}

function drawIterations() {
  const it = run.iterations;
  const xs = it.map((p) => p.it);
  const loss = it.map((p) => p.train_loss);
  const positive = loss.every((v) => v === null || v > 0);
  const r = run.state.run;
  $("loss").dataset.points = String(plot($("loss"), [{ xs, ys: loss, kind: "line", color: colors[2] }],
    { log: positive, xlabel: r.unit, ylabel: r.objective ? "surrogate loss" : "cross-entropy", integerX: true,
      empty: r.objective ? "no surrogate loss recorded (this method trains none)" : "waiting for the first epoch" }));
  const later = it.filter((p) => p.it > 0);
  const tx = later.map((p) => p.it);
  $("timing").dataset.points = String(plot($("timing"), [
    { xs: tx, ys: later.map((p) => p.controller_s), kind: "line", color: colors[0] },
    { xs: tx, ys: later.map((p) => p.box_s), kind: "line", color: colors[1] },
  ], { xlabel: r.unit, ylabel: `seconds per ${r.unit}`, integerX: true, empty: `waiting for the first ${r.unit}` }));
  drawMarks();
  const pe = run.predictions;
  $("pred-panel").hidden = pe.length === 0;
  if (pe.length) {
    // Each query's error, and their mean over the last 20 predictions.
    const xs = pe.map((p) => p.n), ys = pe.map((p) => p.err), mean = [];
    let sum = 0, k = 0;
    for (let i = 0; i < ys.length; i++) {
      if (Number.isFinite(ys[i])) { sum += ys[i]; k++; }
      if (i >= 20 && Number.isFinite(ys[i - 20])) { sum -= ys[i - 20]; k--; }
      mean.push(k > 0 ? sum / k : null);
    }
    $("pred").dataset.points = String(plot($("pred"), [
      { xs, ys, kind: "dots", color: colors[3] },
      { xs, ys: mean, kind: "line", color: colors[1] },
    ], { xlabel: "queries", ylabel: "error (normalized)" }));
  }
}

// The instants of a query in the order they happen: the loop's start and
// end around what the devices mark.
const stages = ["start", "written", "shown", "settled", "exposure_start", "exposure_end", "measured", "end"];

// drawMarks plots, for every query whose devices marked its instants, the
// time between consecutive marks (written→shown: the pattern reaching the
// display, shown→settled, exposure, …); hidden when no query has marks.
function drawMarks() {
  const pts = run.queries.filter((p) => p.marks);
  $("marks-panel").hidden = pts.length === 0;
  if (!pts.length) return;
  const series = new Map();
  for (const p of pts) {
    let prev = null;
    for (const s of stages) {
      const t = p.marks[s];
      if (t === undefined || t === null) continue;
      if (prev) {
        const key = `${prev.s}→${s}`;
        if (!series.has(key)) series.set(key, { xs: [], ys: [] });
        const sr = series.get(key);
        sr.xs.push(p.n); sr.ys.push(t - prev.t);
      }
      prev = { s, t };
    }
  }
  const list = [...series.entries()].map(([key, s], i) => ({ key, xs: s.xs, ys: s.ys, kind: "dots", color: colors[i % colors.length], alpha: 0.7 }));
  $("marks").dataset.points = String(plot($("marks"), list, { xlabel: "queries", ylabel: "seconds", empty: "no marks yet" }));
  const legend = $("marks-legend");
  legend.replaceChildren();
  for (const s of list) {
    const k = document.createElement("span");
    k.className = "key dot";
    k.style.background = s.color;
    legend.append(k, document.createTextNode(s.key + " "));
  }
}

const guardRows = [
  ["attempted", "queries attempted"], ["passed", "passed"], ["rejected", "rejected", true],
  ["device_queries", "device queries (ramp steps included)"], ["clamped", "clamped", true], ["ramped", "ramped"],
  ["ramp_steps", "ramp steps"], ["rate_waits", "rate-limit waits"], ["rate_waited_s", "time waited (s)"],
  ["output_violations", "output violations", true], ["saturated", "saturated outputs", true],
  ["trips", "trips (watchdog, interlock, abort)", true], ["safe_states", "safe-state calls"],
];

function drawGuard(c) {
  const tb = $("guard").tBodies[0];
  if (!tb.rows.length) {
    for (const [key, label] of guardRows) {
      const tr = tb.insertRow();
      tr.insertCell().textContent = label;
      const td = tr.insertCell();
      td.id = "g-" + key.replace(/_/g, "-");
      td.textContent = "–";
    }
  }
  if (!c) return;
  guardRows.forEach(([key, , alert], i) => {
    const v = c[key];
    tb.rows[i].cells[1].textContent = key === "rate_waited_s" ? fmt(v, 3) : v;
    tb.rows[i].className = alert && v > 0 ? "alert" : "";
  });
  const by = Object.entries(c.rejected_by || {}).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(", ");
  tb.rows[2].cells[0].textContent = by ? `rejected (${by})` : "rejected";
}

function drawEvents(s) {
  const counts = Object.entries(s.event_counts || {}).map(([k, v]) => `${k} ${v}`).join(" · ");
  $("event-counts").textContent = counts ? `(${counts})` : "(none)";
  const tb = $("events").tBodies[0];
  const key = s.events.length ? s.events[s.events.length - 1].id : 0;
  if (tb.dataset.last === String(key)) return;
  tb.dataset.last = String(key);
  tb.replaceChildren();
  for (const e of [...s.events].reverse()) {
    const tr = tb.insertRow();
    tr.insertCell().textContent = new Date(e.time).toLocaleTimeString();
    const k = tr.insertCell();
    k.textContent = e.kind; k.className = "kind kind-" + e.kind;
    tr.insertCell().textContent = e.name || "";
    tr.insertCell().textContent = e.value === null ? "" : fmt(e.value, 4);
    tr.insertCell().textContent = e.detail;
  }
}

// ---- controls ----

async function control(what) {
  $("message").textContent = `${what}…`;
  try {
    const r = await fetch(`/api/${what}`, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: "{}" });
    const body = await r.json().catch(() => ({}));
    $("message").textContent = body.message || `${what}: ${r.status} ${r.statusText}`;
  } catch (err) {
    $("message").textContent = `${what}: ${err}`;
  }
}

function connect() {
  const es = new EventSource("/api/events");
  es.onmessage = (ev) => { merge(JSON.parse(ev.data)); $("error").textContent = ""; };
  es.addEventListener("end", () => {
    es.close();
    run.ended = true;
    $("message").textContent = "the run is over; this page no longer updates";
  });
  es.onerror = () => {
    if (!run.ended) $("error").textContent = "connection lost; retrying…";
  };
}

function frame() {
  if (dirty) {
    dirty = false;
    try { render(); } catch (err) { $("error").textContent = String(err); }
  }
  requestAnimationFrame(frame);
}

$("stop").addEventListener("click", () => control("stop"));
$("pause").addEventListener("click", () => control("pause"));
$("resume").addEventListener("click", () => control("resume"));
window.addEventListener("resize", () => { dirty = true; });
connect();
requestAnimationFrame(frame);
