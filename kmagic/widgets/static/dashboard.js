// kmagic training dashboard: an anywidget ESM module, no imports, no network.
// The kernel sends only new points ({type: "update"}); a new view asks for
// everything once ({type: "sync"}). The Stop button: see stopControl below.

const COLORS = { batch: "#9ecae1", train: "#1f77b4", val: "#ff7f0e", best: "#2ca02c", lr: "#9467bd", grid: "rgba(128,128,128,0.18)" };
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

function render({ model, el: host }) {
  const data = { bx: [], by: {}, ex: [], ey: {}, lr: [] };
  let status = model.get("status") || {};
  let metrics = model.get("metrics") || [];
  const opts = { log: false, batches: true, smoothing: 0.6 };
  let asked = false, pending = false;

  const root = el("div", "kmagic-dash");
  const head = el("div", "kmagic-head");
  const title = el("span", "kmagic-title", model.get("title") || "Training");
  const state = el("span", "kmagic-state");
  const stopBtn = el("button", "kmagic-stop", "■ Stop");
  head.append(title, state, stopBtn);
  const stopper = stopControl(model, stopBtn, schedule);
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
    box.addEventListener("change", () => { opts[key] = box.checked; schedule(); });
    lab.append(box, document.createTextNode(" " + label));
    return lab;
  };
  const smoothLab = el("label", null, "smoothing ");
  const slider = el("input");
  slider.type = "range"; slider.min = "0"; slider.max = "0.99"; slider.step = "0.01"; slider.value = String(opts.smoothing);
  const smoothVal = el("span", "kmagic-num", opts.smoothing.toFixed(2));
  slider.addEventListener("input", () => { opts.smoothing = +slider.value; smoothVal.textContent = opts.smoothing.toFixed(2); schedule(); });
  smoothLab.append(slider, smoothVal);
  controls.append(mkCheck("log scale", "log"), mkCheck("per-batch curve", "batches"), smoothLab);
  const legend = el("div", "kmagic-legend");
  legend.innerHTML = `<span style="color:${COLORS.batch}">━ train (per batch)</span> <span style="color:${COLORS.train}">━● train (epoch)</span> <span style="color:${COLORS.val}">━● validation</span> <span style="color:${COLORS.best}">┆ best epoch</span>`;
  const grid = el("div", "kmagic-grid");
  root.append(head, stopper.note, bar, stats, noteLine, warn, controls, legend, grid, lrLine);
  host.append(root);

  const charts = new Map();
  function chartFor(name) {
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
  }

  function applyPart(part, xsKey, ysKey) {
    if (!part) return true;
    const start = part.start || 0;
    const xs = data[xsKey];
    if (start > xs.length) return false; // a gap: we missed points
    xs.length = start;
    for (const v of part.x) xs.push(v);
    const ys = data[ysKey];
    for (const [k, vals] of Object.entries(part.y || {})) {
      const arr = ys[k] || (ys[k] = []);
      arr.length = Math.min(arr.length, start);
      while (arr.length < start) arr.push(null);
      for (const v of vals) arr.push(v);
    }
    return true;
  }

  function applyPoints(points) {
    if (!points) return;
    const okB = applyPart(points.batch, "bx", "by");
    const okE = applyPart(points.epoch, "ex", "ey");
    if (points.lr) {
      if (points.lr.start > data.lr.length) { askSync(); return; }
      data.lr.length = points.lr.start;
      for (const p of points.lr.points) data.lr.push(p);
    }
    if (!okB || !okE) askSync();
  }

  function askSync() {
    if (asked) return;
    asked = true;
    model.send({ type: "sync" });
  }

  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  }

  function drawStatus() {
    const s = status || {};
    const note = model.get("note") || "";
    noteLine.textContent = note;
    noteLine.style.display = note && !s.finished ? "block" : "none";
    const p = Math.max(0, Math.min(1, s.progress || 0));
    fill.style.width = (100 * p).toFixed(1) + "%";
    let st = "running";
    if (s.finished) {
      const at = s.stopped_at ? ` at epoch ${s.stopped_at[0]}, batch ${s.stopped_at[1]}` : "";
      st = s.stopped_early ? `stopped${at}: ${s.stop_reason || "early"}` : "finished";
    } else if (!s.epochs) st = "waiting";
    state.textContent = st;
    root.classList.toggle("kmagic-done", !!s.finished);
    stopper.show(s);
    const parts = [];
    if (s.epochs) parts.push(`epoch ${s.epoch}/${s.epochs}`);
    if (s.steps) parts.push(`step ${s.step}/${s.steps}`);
    parts.push(`elapsed ${fmtTime(s.elapsed)}`);
    if (!s.finished) parts.push(`ETA ${fmtTime(s.eta)}`);
    if (s.samples_per_s) parts.push(`${fmtNum(s.samples_per_s)} samples/s`);
    else if (s.steps_per_s) parts.push(`${fmtNum(s.steps_per_s)} batches/s`);
    if (s.best_epoch) parts.push(`best ${s.monitor} ${fmtNum(s.best_value)} at epoch ${s.best_epoch}`);
    stats.textContent = parts.join("  ·  ");
    if (s.nan_detected) {
      const at = s.nan_at ? ` (epoch ${s.nan_at[0]}, batch ${s.nan_at[1]})` : "";
      const back = s.restored_from ? (s.restored_from[1] ? ` Weights restored to after batch ${s.restored_from[1]} of epoch ${s.restored_from[0]}.` : ` Weights restored to the start of epoch ${s.restored_from[0]}.`) : "";
      warn.textContent = `⚠ The loss became NaN or infinite${at}.${back} Try a lower learning rate, gradient clipping, or check the data for NaN.`;
      warn.style.display = "block";
    } else warn.style.display = "none";
    if (data.lr.length > 1) {
      lrLine.textContent = "learning rate: " + data.lr.map(([e, v]) => `${fmtNum(v)} from epoch ${e}`).join(" → ");
      lrLine.style.display = "block";
    } else lrLine.style.display = "none";
  }

  function draw() {
    drawStatus();
    const names = metrics.length ? metrics : Object.keys(data.by).filter((k) => !k.startsWith("val_"));
    const width = Math.max(240, Math.floor((grid.clientWidth || 720) / Math.min(names.length || 1, 3)) - 12);
    const xmax = Math.max(status.epochs || 1, data.ex.length ? data.ex[data.ex.length - 1] : 0, data.bx.length ? data.bx[data.bx.length - 1] : 0);
    for (const name of names) drawChart(chartFor(name), name, width, 190, xmax);
  }

  function drawChart(chart, name, width, height, xmax) {
    const { canvas, cap } = chart;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(width * dpr); canvas.height = Math.round(height * dpr);
      canvas.style.width = width + "px"; canvas.style.height = height + "px";
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const style = getComputedStyle(root);
    const fg = style.color || "#333";
    const L = 52, R = 10, T = 8, B = 24, W = width - L - R, H = height - T - B;

    const series = [];
    if (opts.batches && data.by[name]) {
      const raw = perBatch(data.bx, data.by[name], status.steps, name);
      series.push({ xs: data.bx, ys: smooth(raw, opts.smoothing), color: COLORS.batch, width: 1.2, dots: false });
    }
    if (data.ey[name]) series.push({ xs: data.ex, ys: data.ey[name], color: COLORS.train, width: 2, dots: true });
    if (data.ey["val_" + name]) series.push({ xs: data.ex, ys: data.ey["val_" + name], color: COLORS.val, width: 2, dots: true });

    let lo = Infinity, hi = -Infinity;
    const useLog = opts.log;
    for (const s of series) for (const y of s.ys) {
      if (y === null || !isFinite(y) || (useLog && y <= 0)) continue;
      if (y < lo) lo = y; if (y > hi) hi = y;
    }
    const last = (arr) => { for (let i = arr.length - 1; i >= 0; i--) if (arr[i] !== null && isFinite(arr[i])) return arr[i]; return null; };
    const lastTrain = data.ey[name] ? last(data.ey[name]) : (data.by[name] ? last(data.by[name]) : null);
    const lastVal = data.ey["val_" + name] ? last(data.ey["val_" + name]) : null;
    cap.textContent = `${name}   train ${fmtNum(lastTrain)}` + (lastVal !== null ? `   val ${fmtNum(lastVal)}` : "");
    ctx.font = "11px sans-serif";
    ctx.fillStyle = fg;
    if (!(hi >= lo)) { ctx.fillText("waiting for the first batch…", L, T + H / 2); return; }
    const logScale = useLog && lo > 0;
    const f = logScale ? Math.log10 : (v) => v;
    let ylo = f(lo), yhi = f(hi);
    if (yhi - ylo < 1e-12) { ylo -= 0.5; yhi += 0.5; }
    const pad = (yhi - ylo) * 0.06; ylo -= pad; yhi += pad;
    const px = (x) => L + (x / xmax) * W;
    const py = (y) => T + H - ((f(y) - ylo) / (yhi - ylo)) * H;

    ctx.strokeStyle = COLORS.grid; ctx.lineWidth = 1;
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
      ctx.strokeStyle = COLORS.lr; ctx.setLineDash([2, 3]);
      ctx.beginPath(); ctx.moveTo(x, T); ctx.lineTo(x, T + H); ctx.stroke();
      ctx.setLineDash([]);
    }
    if (status.best_epoch) {
      const x = px(status.best_epoch);
      ctx.strokeStyle = COLORS.best; ctx.setLineDash([4, 3]); ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(x, T); ctx.lineTo(x, T + H); ctx.stroke();
      ctx.setLineDash([]); ctx.fillStyle = COLORS.best; ctx.textAlign = "left";
      ctx.fillText("best", Math.min(x + 3, L + W - 24), T + 2);
    }

    ctx.save();
    ctx.beginPath(); ctx.rect(L, T, W, H); ctx.clip();
    for (const s of series) {
      ctx.strokeStyle = s.color; ctx.fillStyle = s.color; ctx.lineWidth = s.width;
      ctx.beginPath();
      let pen = false, lastPx = -1;
      const n = s.xs.length;
      for (let i = 0; i < n; i++) {
        const y = s.ys[i];
        if (y === null || y === undefined || !isFinite(y) || (logScale && y <= 0)) { pen = false; continue; }
        const X = px(s.xs[i]), Y = py(y);
        if (pen && X - lastPx < 0.5 && i < n - 1) continue; // at most ~2 points per pixel
        if (pen) ctx.lineTo(X, Y); else ctx.moveTo(X, Y);
        pen = true; lastPx = X;
      }
      ctx.stroke();
      if (s.dots) for (let i = 0; i < n; i++) {
        const y = s.ys[i];
        if (y === null || !isFinite(y) || (logScale && y <= 0)) continue;
        ctx.beginPath(); ctx.arc(px(s.xs[i]), py(y), 2.6, 0, 2 * Math.PI); ctx.fill();
      }
    }
    ctx.restore();
  }

  function onMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "reset") {
      data.bx = []; data.by = {}; data.ex = []; data.ey = {}; data.lr = [];
      asked = false;
    }
    if (msg.status) status = msg.status;
    if (msg.metrics) metrics = msg.metrics;
    applyPoints(msg.points);
    schedule();
  }

  const onStatus = () => { status = model.get("status") || status; schedule(); };
  const onMetrics = () => { metrics = model.get("metrics") || metrics; schedule(); };
  model.on("msg:custom", onMessage);
  model.on("change:status", onStatus);
  model.on("change:metrics", onMetrics);
  model.on("change:stop_requested", schedule);
  model.on("change:note", schedule);
  let observer = null;
  if (typeof ResizeObserver !== "undefined") { observer = new ResizeObserver(schedule); observer.observe(grid); }
  model.send({ type: "sync" });
  asked = true;
  schedule();
  return () => {
    model.off("msg:custom", onMessage);
    model.off("change:status", onStatus);
    model.off("change:metrics", onMetrics);
    model.off("change:stop_requested", schedule);
    model.off("change:note", schedule);
    if (observer) observer.disconnect();
    stopper.dispose();
  };
}

export default { render };
