// kmagic training dashboard: an anywidget ESM module, no imports, no network.
// The messages between kernel and view are listed in docs/dashboard.md ("Messages"):
// the kernel sends only new points ({type: "update"}); a new view asks for
// everything once ({type: "sync"}) and gets {type: "reset"}. The Stop button: see stopControl.
//
// Parts: createStore (message protocol and state), createLayout (DOM), renderStatus
// (status bar), createStopButton (the Stop button), drawChart (one canvas), themeColors and
// watchTheme (JupyterLab light/dark/high-contrast themes), render (wires them together).

// Series colours: CSS variables (set in dashboard.css per theme), these as fallbacks.
const COLORS = { batch: "#9ecae1", train: "#1f77b4", val: "#ff7f0e", best: "#2ca02c", lr: "#9467bd", grid: "rgba(128,128,128,0.25)", fg: "#333" };
const MEAN_LIKE = /(^loss$|accuracy$|crossentropy$|error$|^mae$|^mse$|^mape$|^msle$|hinge$|^kl_divergence$|^poisson$|^log_cosh$)/;

function fmtNum(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return v.toPrecision(4).replace(/\.?0+$/, "");
}

function fmtTime(s) {
  if (s === null || s === undefined || !isFinite(s)) return "–";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

function niceTicks(lo, hi, n) {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= step0) || step0;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

// Keras reports running means over the epoch; recover each batch's own value
// (exact for mean metrics with equal batch sizes) so the curve is per batch.
function perBatch(xs, ys, steps, name) {
  if (!steps || !MEAN_LIKE.test(name)) return ys;
  const out = new Array(ys.length);
  let prevEpoch = -1, prevCount = 0, prevMean = 0;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i], e = Math.ceil(x - 1e-9) - 1, count = Math.round((x - e) * steps), m = ys[i];
    if (e !== prevEpoch) { prevEpoch = e; prevCount = 0; prevMean = 0; }
    if (m === null || !isFinite(m) || count <= prevCount) { out[i] = m; continue; }
    out[i] = (count * m - prevCount * prevMean) / (count - prevCount);
    prevCount = count; prevMean = m;
  }
  return out;
}

function smooth(ys, alpha) {
  if (!(alpha > 0)) return ys;
  const out = new Array(ys.length);
  let acc = null, w = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null || !isFinite(y)) { out[i] = y; continue; }
    acc = acc === null ? y * (1 - alpha) : acc * alpha + y * (1 - alpha);
    w = w * alpha + (1 - alpha);
    out[i] = acc / w; // bias-corrected EMA, as TensorBoard does
  }
  return out;
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// -- theme -------------------------------------------------------------------------

// The colours to draw with, read from the page's CSS (JupyterLab's --jp-* variables through
// dashboard.css's --kmagic-* ones), so canvases follow light, dark and high-contrast themes.
function themeColors(node) {
  const style = getComputedStyle(node);
  const pick = (name, fallback) => (style.getPropertyValue(name) || "").trim() || fallback;
  return {
    fg: pick("--kmagic-fg", style.color || COLORS.fg),
    grid: pick("--kmagic-grid", COLORS.grid),
    batch: pick("--kmagic-batch", COLORS.batch),
    train: pick("--kmagic-train", COLORS.train),
    val: pick("--kmagic-val", COLORS.val),
    best: pick("--kmagic-best", COLORS.best),
    lr: pick("--kmagic-lr", COLORS.lr),
  };
}

// Call `onChange` when the page's theme changes (JupyterLab sets data-jp-theme-* on <body>;
// elsewhere the system's colour scheme). Returns a function that stops watching.
function watchTheme(callback) {
  const stops = [];
  // The theme's stylesheet may finish loading just after the attribute changes: redraw twice.
  const onChange = () => { callback(); setTimeout(callback, 300); };
  if (typeof MutationObserver !== "undefined" && document.body) {
    const observer = new MutationObserver(onChange);
    observer.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name", "class", "style"] });
    stops.push(() => observer.disconnect());
  }
  if (typeof window.matchMedia === "function") {
    const query = window.matchMedia("(prefers-color-scheme: dark)");
    if (query.addEventListener) { query.addEventListener("change", onChange); stops.push(() => query.removeEventListener("change", onChange)); }
  }
  return () => stops.forEach((stop) => stop());
}

// -- message protocol and state -------------------------------------------------------

// The view's copy of the record. Each kind of point keeps `end`, the kernel's count of
// points it covers: a reset may hold a thinned copy (fewer local points than `end`), and an
// update starting at `start` is appended at local index start - (end - local length).
function createStore(model) {
  const store = {
    data: { bx: [], by: {}, ex: [], ey: {}, lr: [], bEnd: 0, eEnd: 0, lEnd: 0 },
    status: model.get("status") || {},
    metrics: model.get("metrics") || [],
    compare: model.get("compare") || [],
    asked: false,
  };

  function place(part, xs, ends, key) {
    const start = part.start || 0;
    const local = start - (store.data[ends] - xs.length);
    if (local < 0 || local > xs.length) return -1; // a gap or an overlap we cannot place
    store.data[ends] = part.end !== undefined ? part.end : start + (part.x || part.points || []).length;
    return local;
  }

  function applyPart(part, xsKey, ysKey, ends) {
    if (!part) return true;
    const xs = store.data[xsKey];
    const at = place(part, xs, ends);
    if (at < 0) return false;
    xs.length = at;
    for (const v of part.x) xs.push(v);
    const ys = store.data[ysKey];
    for (const [k, vals] of Object.entries(part.y || {})) {
      const arr = ys[k] || (ys[k] = []);
      arr.length = Math.min(arr.length, at);
      while (arr.length < at) arr.push(null);
      for (const v of vals) arr.push(v);
    }
    return true;
  }

  function applyLr(part) {
    if (!part) return true;
    const at = place(part, store.data.lr, "lEnd");
    if (at < 0) return false;
    store.data.lr.length = at;
    for (const p of part.points) store.data.lr.push(p);
    return true;
  }

  // Apply one kernel message; false when the view missed points and must ask for everything.
  store.apply = (msg) => {
    if (!msg || typeof msg !== "object") return true;
    if (msg.type === "reset") {
      store.data = { bx: [], by: {}, ex: [], ey: {}, lr: [], bEnd: 0, eEnd: 0, lEnd: 0 };
      store.asked = false;
    }
    if (msg.status) store.status = msg.status;
    if (msg.metrics) store.metrics = msg.metrics;
    const points = msg.points;
    if (!points) return true;
    const okB = applyPart(points.batch, "bx", "by", "bEnd");
    const okE = applyPart(points.epoch, "ex", "ey", "eEnd");
    const okL = applyLr(points.lr);
    return okB && okE && okL;
  };

  store.askSync = () => {
    if (store.asked) return;
    store.asked = true;
    model.send({ type: "sync" });
  };

  // The x-axis: the planned epochs while training; after an early stop, the epochs that ran.
  store.xmax = () => {
    const s = store.status, d = store.data;
    const ran = Math.max(d.ex.length ? d.ex[d.ex.length - 1] : 0, d.bx.length ? d.bx[d.bx.length - 1] : 0, s.epochs_run || 0);
    const earlier = Math.max(0, ...store.compare.map((run) => run.x.length));
    if (s.finished && s.stopped_early) return Math.max(ran > 0 ? ran : 1, earlier);
    return Math.max(s.epochs || 1, ran, earlier);
  };
  return store;
}

// -- layout ------------------------------------------------------------------------------

function createLayout(host, model, opts, onOption) {
  const root = el("div", "kmagic-dash");
  const head = el("div", "kmagic-head");
  const title = el("span", "kmagic-title", model.get("title") || "Training");
  const state = el("span", "kmagic-state");
  head.append(title, state);
  const bar = el("div", "kmagic-bar");
  const fill = el("div", "kmagic-fill");
  bar.append(fill);
  const stats = el("div", "kmagic-stats");
  const warn = el("div", "kmagic-warn");
  const lrLine = el("div", "kmagic-lr");
  const noteLine = el("div", "kmagic-note");
  const controls = el("div", "kmagic-controls");
  const mkCheck = (label, key) => {
    const lab = el("label");
    const box = el("input");
    box.type = "checkbox"; box.checked = opts[key];
    box.addEventListener("change", () => { opts[key] = box.checked; onOption(); });
    lab.append(box, document.createTextNode(" " + label));
    return lab;
  };
  const smoothLab = el("label", null, "smoothing ");
  const slider = el("input");
  slider.type = "range"; slider.min = "0"; slider.max = "0.99"; slider.step = "0.01"; slider.value = String(opts.smoothing);
  const smoothVal = el("span", "kmagic-num", opts.smoothing.toFixed(2));
  slider.addEventListener("input", () => { opts.smoothing = +slider.value; smoothVal.textContent = opts.smoothing.toFixed(2); onOption(); });
  smoothLab.append(slider, smoothVal);
  controls.append(mkCheck("log scale", "log"), mkCheck("per-batch curve", "batches"), smoothLab);
  const legend = el("div", "kmagic-legend");
  for (const [cls, text] of [["batch", "━ train (per batch)"], ["train", "━● train (epoch)"], ["val", "━● validation"], ["best", "┆ best epoch"]]) {
    legend.append(el("span", "kmagic-key-" + cls, text));
  }
  const grid = el("div", "kmagic-grid");
  root.append(head, bar, stats, noteLine, warn, controls, legend, grid, lrLine);
  host.append(root);
  const charts = new Map();
  const chartFor = (name) => {
    let c = charts.get(name);
    if (c) return c;
    const box = el("div", "kmagic-chart");
    const cap = el("div", "kmagic-cap", name);
    const canvas = el("canvas");
    box.append(cap, canvas);
    grid.append(box);
    c = { box, cap, canvas };
    charts.set(name, c);
    return c;
  };
  return { root, head, state, fill, stats, warn, lrLine, noteLine, grid, chartFor };
}

// -- status bar --------------------------------------------------------------------------

function stateText(s) {
  if (s.finished) {
    const at = s.stopped_at ? ` at epoch ${s.stopped_at[0]}, batch ${s.stopped_at[1]}` : "";
    const end = s.stopped_early ? `stopped${at}: ${s.stop_reason || "early"}` : "finished";
    return s.drawing ? `${end} · drawing the final image…` : end;
  }
  return s.epochs ? "running" : "waiting";
}

function statsText(s) {
  const parts = [];
  if (s.epochs) parts.push(`epoch ${s.epoch}/${s.epochs}`);
  if (s.steps) parts.push(`step ${s.step}/${s.steps}`);
  parts.push(`elapsed ${fmtTime(s.elapsed)}`);
  if (!s.finished) parts.push(`ETA ${fmtTime(s.eta)}`);
  if (s.samples_per_s) parts.push(`${fmtNum(s.samples_per_s)} samples/s`);
  else if (s.steps_per_s) parts.push(`${fmtNum(s.steps_per_s)} batches/s`);
  if (s.best_epoch) parts.push(`best ${s.monitor} ${fmtNum(s.best_value)} at epoch ${s.best_epoch}`);
  return parts.join("  ·  ");
}

function nanText(s) {
  const at = s.nan_at ? ` (epoch ${s.nan_at[0]}, batch ${s.nan_at[1]})` : "";
  const r = s.restored_from;
  const back = r ? (r[1] ? ` Weights restored to after batch ${r[1]} of epoch ${r[0]}.` : ` Weights restored to the start of epoch ${r[0]}.`) : "";
  return `⚠ The loss became NaN or infinite${at}.${back} Try a lower learning rate, gradient clipping, or check the data for NaN.`;
}

function renderStatus(ui, s, note, lr) {
  ui.noteLine.textContent = note;
  ui.noteLine.style.display = note && !s.finished ? "block" : "none";
  const p = Math.max(0, Math.min(1, s.progress || 0));
  ui.fill.style.width = (100 * p).toFixed(1) + "%";
  ui.state.textContent = stateText(s);
  ui.root.classList.toggle("kmagic-done", !!s.finished);
  ui.stats.textContent = statsText(s);
  if (s.nan_detected) { ui.warn.textContent = nanText(s); ui.warn.style.display = "block"; } else ui.warn.style.display = "none";
  if (lr.length > 1) {
    ui.lrLine.textContent = "learning rate: " + lr.map(([e, v]) => `${fmtNum(v)} from epoch ${e}`).join(" → ");
    ui.lrLine.style.display = "block";
  } else ui.lrLine.style.display = "none";
}

// -- the Stop button ---------------------------------------------------------------------

// ---- The Stop button ------------------------------------------------------------------
// While a cell trains, the kernel's shell is busy and a comm message waits for the cell
// to end. The kernel's CONTROL channel is read on a thread of its own, so a click opens
// a short WebSocket to the Jupyter server hosting this page and sends one
// kernel_info_request on channel "control" carrying {kmagic_stop: token}; the kernel
// (kmagic/widgets/stop_route.py) ends training at the end of the running batch.
// Where that cannot work (no Jupyter server page, a kernel this server does not run)
// the button is disabled from the start and says why and what to do instead.

const STOP_CURE = "Interrupt the kernel instead (■ in the toolbar, or I, I): training then stops at the end of the current batch and keeps its weights and history.";

function jupyterPage() {
  const node = document.getElementById("jupyter-config-data");
  if (!node) return null;
  try {
    const cfg = JSON.parse(node.textContent || "{}");
    const base = new URL(cfg.baseUrl || "/", window.location.href);
    const ws = cfg.wsUrl ? new URL(cfg.wsUrl, window.location.href) : new URL(base.href);
    if (!cfg.wsUrl) ws.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    return { base: base.href.replace(/\/?$/, "/"), ws: ws.href.replace(/\/?$/, "/"), token: cfg.token || "" };
  } catch (err) {
    return null;
  }
}

function uuid() {
  return (crypto.randomUUID && crypto.randomUUID()) || Math.random().toString(16).slice(2) + Date.now().toString(16);
}

// One kernel_info_request on the control channel; resolves when the kernel replies. The
// socket then stays open until the running cell ends (its execute_request's idle status on
// iopub), and calls onEnded: the button's state does not depend on the widget's comm.
function sendStop(page, kernelId, token, onEnded) {
  return new Promise((resolve, reject) => {
    const session = uuid(), msgId = uuid();
    const query = `session_id=${session}` + (page.token ? `&token=${encodeURIComponent(page.token)}` : "");
    let socket;
    try {
      socket = new WebSocket(`${page.ws}api/kernels/${encodeURIComponent(kernelId)}/channels?${query}`);
    } catch (err) {
      reject(err);
      return;
    }
    let answered = false;
    let timer = setTimeout(() => { socket.close(); reject(new Error("no answer from the kernel within 10 s")); }, 10000);
    socket.onopen = () => socket.send(JSON.stringify({
      header: { msg_id: msgId, msg_type: "kernel_info_request", username: "kmagic", session, date: new Date().toISOString(), version: "5.3" },
      parent_header: {}, metadata: {}, content: { kmagic_stop: token }, channel: "control", buffers: [],
    }));
    socket.onmessage = (event) => {
      let msg = null;
      try { msg = JSON.parse(event.data); } catch (err) { return; }
      if (!msg || !msg.parent_header) return;
      if (!answered && msg.channel === "control" && msg.parent_header.msg_id === msgId) {
        answered = true;
        clearTimeout(timer);
        timer = setTimeout(() => socket.close(), 600000);
        resolve();
      } else if (answered && msg.channel === "iopub" && msg.header && msg.header.msg_type === "status"
                 && msg.content && msg.content.execution_state === "idle" && msg.parent_header.msg_type === "execute_request") {
        clearTimeout(timer);
        socket.close();
        onEnded();
      }
    };
    socket.onerror = () => { clearTimeout(timer); if (!answered) reject(new Error("the connection to the kernel failed")); };
    socket.onclose = (event) => { clearTimeout(timer); if (!answered) reject(new Error(`the connection closed (${event.code})`)); };
  });
}

function stopControl(model, button, redraw) {
  const note = el("div", "kmagic-stop-note");
  note.style.display = "none";
  let phase = "ready"; // ready | sending | sent | ended | unavailable
  let why = "";
  const page = jupyterPage();
  const route = () => model.get("stop_route") || {};

  function unavailable(reason) {
    phase = "unavailable";
    why = reason;
    redraw();
  }

  function check() {
    const r = route();
    if (r.reason) return unavailable(r.reason);
    if (!page) return unavailable("This front end is not a Jupyter server page, so the button cannot reach the kernel while a cell runs. " + STOP_CURE);
    if (!r.kernel_id) return unavailable("This widget does not know its kernel. " + STOP_CURE);
    phase = phase === "unavailable" ? "ready" : phase;
    why = "";
    const headers = page.token ? { Authorization: `token ${page.token}` } : {};
    fetch(`${page.base}api/kernels/${encodeURIComponent(r.kernel_id)}`, { headers, credentials: "same-origin" })
      .then((response) => {
        if (response.status === 404) unavailable("This page's Jupyter server does not run the kernel that trains. " + STOP_CURE);
      })
      .catch(() => {}); // offline or blocked: keep the button; a failed click says so
  }

  button.addEventListener("click", () => {
    const r = route();
    if (phase !== "ready" || !page || !r.kernel_id) return;
    phase = "sending";
    redraw();
    sendStop(page, r.kernel_id, r.token, () => { if (phase === "sent") { phase = "ended"; redraw(); } }).then(
      () => { phase = "sent"; redraw(); },
      (err) => { phase = "ready"; why = `The stop request did not arrive: ${err.message}. ${STOP_CURE}`; redraw(); },
    );
  });
  model.on("change:stop_route", check);
  check();

  return {
    note,
    // Called from drawStatus with the training status.
    show(status) {
      const finished = !!(status && status.finished);
      button.style.display = finished ? "none" : "";
      const ended = phase === "ended"; // the cell ended, whether or not this widget's comm still updates it
      const stopping = !finished && !ended && (phase === "sending" || phase === "sent" || !!model.get("stop_requested"));
      button.disabled = finished || ended || stopping || phase === "unavailable";
      button.textContent = ended ? "Stopped" : stopping ? "Stopping…" : "■ Stop";
      button.title = phase === "unavailable" ? why : "End training at the end of the current batch, keeping weights and history";
      note.textContent = why;
      note.style.display = why && !finished ? "block" : "none";
      if (finished && phase !== "unavailable") { phase = "ready"; why = ""; }
    },
    dispose() { model.off("change:stop_route", check); },
  };
}

// The Stop button for the layout: the button, its note (why it is disabled, or what failed),
// `update(status)` on every redraw, the model events that change it, and `dispose()`.
function createStopButton(model, redraw) {
  const button = el("button", "kmagic-stop", "■ Stop");
  const control = stopControl(model, button, redraw);
  return { node: button, note: control.note, update: (s) => control.show(s), events: ["change:stop_requested"],
           dispose: control.dispose };
}

// -- chart drawing -----------------------------------------------------------------------

// Earlier runs (Dashboard(compare=...)): their epoch series of `name`, drawn faded under the live ones.
function compareSeries(compare, name) {
  const out = [];
  for (const run of compare || []) {
    for (const key of [name, "val_" + name]) {
      const ys = run.y && run.y[key];
      if (ys) out.push({ xs: run.x, ys, color: "rgba(128,128,128,0.45)", width: 1.2, dots: false, faded: true });
    }
  }
  return out;
}

function chartSeries(data, status, opts, name, colors, compare) {
  const series = compareSeries(compare, name);
  if (opts.batches && data.by[name]) {
    const raw = perBatch(data.bx, data.by[name], status.steps, name);
    series.push({ xs: data.bx, ys: smooth(raw, opts.smoothing), color: colors.batch, width: 1.2, dots: false });
  }
  if (data.ey[name]) series.push({ xs: data.ex, ys: data.ey[name], color: colors.train, width: 2, dots: true });
  if (data.ey["val_" + name]) series.push({ xs: data.ex, ys: data.ey["val_" + name], color: colors.val, width: 2, dots: true });
  return series;
}

function lastFinite(arr) {
  if (!arr) return null;
  for (let i = arr.length - 1; i >= 0; i--) if (arr[i] !== null && isFinite(arr[i])) return arr[i];
  return null;
}

// Draw one metric's chart: axes, ticks, learning-rate and best-epoch marks, the series.
function drawChart(chart, name, store, opts, colors, width, height) {
  const { canvas, cap } = chart;
  const data = store.data, status = store.status, xmax = store.xmax();
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr); canvas.height = Math.round(height * dpr);
    canvas.style.width = width + "px"; canvas.style.height = height + "px";
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const L = 52, R = 10, T = 8, B = 24, W = width - L - R, H = height - T - B;
  const series = chartSeries(data, status, opts, name, colors, store.compare);

  let lo = Infinity, hi = -Infinity;
  const useLog = opts.log;
  for (const line of series) for (const y of line.ys) {
    if (y === null || !isFinite(y) || (useLog && y <= 0)) continue;
    if (y < lo) lo = y; if (y > hi) hi = y;
  }
  const lastTrain = data.ey[name] ? lastFinite(data.ey[name]) : lastFinite(data.by[name]);
  const lastVal = lastFinite(data.ey["val_" + name]);
  cap.textContent = `${name}   train ${fmtNum(lastTrain)}` + (lastVal !== null ? `   val ${fmtNum(lastVal)}` : "");
  ctx.font = "11px sans-serif";
  ctx.fillStyle = colors.fg;
  if (!(hi >= lo)) { ctx.fillText("waiting for the first batch…", L, T + H / 2); return; }
  const logScale = useLog && lo > 0;
  const f = logScale ? Math.log10 : (v) => v;
  let ylo = f(lo), yhi = f(hi);
  if (yhi - ylo < 1e-12) { ylo -= 0.5; yhi += 0.5; }
  const pad = (yhi - ylo) * 0.06; ylo -= pad; yhi += pad;
  const px = (x) => L + (x / xmax) * W;
  const py = (y) => T + H - ((f(y) - ylo) / (yhi - ylo)) * H;

  ctx.strokeStyle = colors.grid; ctx.lineWidth = 1;
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const t of niceTicks(ylo, yhi, 4)) {
    const y = T + H - ((t - ylo) / (yhi - ylo)) * H;
    ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(L + W, y); ctx.stroke();
    ctx.fillText(fmtNum(logScale ? Math.pow(10, t) : t), L - 4, y);
  }
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (const t of niceTicks(0, xmax, Math.min(8, Math.max(1, Math.floor(W / 60))))) {
    const x = px(t);
    ctx.beginPath(); ctx.moveTo(x, T); ctx.lineTo(x, T + H); ctx.stroke();
    ctx.fillText(String(t), x, T + H + 4);
  }
  ctx.fillText("epoch", L + W / 2, T + H + 13);

  for (const [e] of data.lr.slice(1)) {
    const x = px(e - 1);
    ctx.strokeStyle = colors.lr; ctx.setLineDash([2, 3]);
    ctx.beginPath(); ctx.moveTo(x, T); ctx.lineTo(x, T + H); ctx.stroke();
    ctx.setLineDash([]);
  }
  if (status.best_epoch) {
    const x = px(status.best_epoch);
    ctx.strokeStyle = colors.best; ctx.setLineDash([4, 3]); ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.moveTo(x, T); ctx.lineTo(x, T + H); ctx.stroke();
    ctx.setLineDash([]); ctx.fillStyle = colors.best; ctx.textAlign = "left";
    ctx.fillText("best", Math.min(x + 3, L + W - 24), T + 2);
  }

  ctx.save();
  ctx.beginPath(); ctx.rect(L, T, W, H); ctx.clip();
  for (const line of series) drawSeries(ctx, line, px, py, logScale);
  ctx.restore();
}

function drawSeries(ctx, line, px, py, logScale) {
  ctx.strokeStyle = line.color; ctx.fillStyle = line.color; ctx.lineWidth = line.width;
  ctx.beginPath();
  let pen = false, lastPx = -1;
  const n = line.xs.length;
  for (let i = 0; i < n; i++) {
    const y = line.ys[i];
    if (y === null || y === undefined || !isFinite(y) || (logScale && y <= 0)) { pen = false; continue; }
    const X = px(line.xs[i]), Y = py(y);
    if (pen && X - lastPx < 0.5 && i < n - 1) continue; // at most ~2 points per pixel
    if (pen) ctx.lineTo(X, Y); else ctx.moveTo(X, Y);
    pen = true; lastPx = X;
  }
  ctx.stroke();
  if (line.dots) for (let i = 0; i < n; i++) {
    const y = line.ys[i];
    if (y === null || !isFinite(y) || (logScale && y <= 0)) continue;
    ctx.beginPath(); ctx.arc(px(line.xs[i]), py(y), 2.6, 0, 2 * Math.PI); ctx.fill();
  }
}

// -- the view ----------------------------------------------------------------------------

function render({ model, el: host }) {
  const store = createStore(model);
  const opts = { log: false, batches: true, smoothing: 0.6 };
  let pending = false;
  const schedule = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  };
  const ui = createLayout(host, model, opts, schedule);
  const stop = createStopButton(model, () => schedule());
  ui.head.append(stop.node);
  ui.head.after(stop.note);

  function draw() {
    const s = store.status || {};
    renderStatus(ui, s, model.get("note") || "", store.data.lr);
    stop.update(s);
    const names = store.metrics.length ? store.metrics : Object.keys(store.data.by).filter((k) => !k.startsWith("val_"));
    const width = Math.max(240, Math.floor((ui.grid.clientWidth || 720) / Math.min(names.length || 1, 3)) - 12);
    const colors = themeColors(ui.root);
    for (const name of names) drawChart(ui.chartFor(name), name, store, opts, colors, width, 190);
  }

  const onMessage = (msg) => { if (!store.apply(msg)) store.askSync(); schedule(); };
  const onStatus = () => { store.status = model.get("status") || store.status; schedule(); };
  const onMetrics = () => { store.metrics = model.get("metrics") || store.metrics; schedule(); };
  const onCompare = () => { store.compare = model.get("compare") || []; schedule(); };
  const events = [["msg:custom", onMessage], ["change:status", onStatus], ["change:metrics", onMetrics],
    ["change:note", schedule], ["change:compare", onCompare]];
  for (const ev of stop.events) events.push([ev, schedule]);
  for (const [ev, f] of events) model.on(ev, f);
  let observer = null;
  if (typeof ResizeObserver !== "undefined") { observer = new ResizeObserver(schedule); observer.observe(ui.grid); }
  const unwatch = watchTheme(schedule);
  store.askSync();
  schedule();
  return () => {
    for (const [ev, f] of events) model.off(ev, f);
    if (observer) observer.disconnect();
    unwatch();
    stop.dispose();
  };
}

export default { render };
