// The timeline: a canvas with a time ruler, a pinned strip (GC collections, heap) and virtualized lanes.
//
// The browser never holds the whole trace: for the visible time window and the visible lanes it asks the server
// for spans at the canvas's pixel width (/api/spans; spans narrower than a pixel come merged), keeps the last
// answer per lane and draws it. Navigation: the wheel zooms around the pointer (over the lane names it scrolls),
// W/S zoom, A/D and drag pan, shift+drag or a drag on the ruler selects a range.

import { api } from "./api.js";
import { GC_COLORS, HEAP_COLORS, LOOP_COLORS, LOOP_LABELS, UI, stateFill, textOn } from "./colors.js";
import { fmtBytes, fmtCount, fmtDur, fmtTick, fmtTime, niceStep } from "./format.js";
import { el } from "./dom.js";
import { HEADER_H, ROW_H, rowAt } from "./lanes.js";

const LABEL_W = 230;
const RULER_H = 24;
const GC_H = 14;
const HEAP_H = 40;
const MIN_SPAN = 100; // ns: the deepest zoom
const BATCH = 120; // lanes per /api/spans request
const OVERSCAN = 10; // rows fetched beyond the visible ones
const KEEP = 4000; // lanes whose last answer is kept
const ZOOM_STEP = 1.25;
const FONT = "11px system-ui, -apple-system, 'Segoe UI', sans-serif";
const BOLD = "600 11px system-ui, -apple-system, 'Segoe UI', sans-serif";

export class Timeline {
  constructor(container, { info, model, states, onSpan, onRange, onView, onToggleGroup, onToggleProcess }) {
    this.info = info;
    this.model = model;
    this.states = states; // names by state index
    this.duration = Math.max(1, info.duration_ns || 1);
    this.onSpan = onSpan || (() => {});
    this.onRange = onRange || (() => {});
    this.onView = onView || (() => {});
    this.onToggleGroup = onToggleGroup || (() => {});
    this.onToggleProcess = onToggleProcess || (() => {});
    this.hasHeap = !!model.meta.heap && !model.several; // several processes: each has its heap lane
    this.pinnedH = RULER_H + GC_H + (this.hasHeap ? HEAP_H : 0);

    this.start = 0;
    this.end = this.duration;
    this.layout = { rows: [], offsets: new Float64Array(1), height: 0 };
    this.rowIndex = new Map();
    this.data = new Map(); // lane key -> {start, end, width, cols}
    this.inflight = 0;
    this.background = false;
    this.again = false;
    this.fetchQueued = false;
    this.error = null;
    this.selected = null; // {key, start, end}
    this.range = null; // {start, end}
    this.arrow = null; // {fromKey, fromT, toKey, toT}
    this.highlightKey = null;
    this.pointer = null; // {x, y} in canvas css px
    this.drag = null;
    this.drawQueued = false;
    this.stats = { settled: 0, lastSettleMs: null, settleTimes: [], firstPaint: null, requests: 0, viewChangedAt: performance.now() };
    this.pendingSettle = true;

    this.root = el("div", { class: "timeline" });
    this.scroller = el("div", { class: "timeline-scroller", tabindex: "0" });
    this.canvas = el("canvas", { class: "timeline-canvas" });
    this.spacer = el("div", { class: "timeline-spacer" });
    this.tooltip = el("div", { class: "tooltip", hidden: true });
    this.status = el("div", { class: "timeline-status", role: "status" });
    this.scroller.append(this.canvas, this.spacer);
    this.root.append(this.scroller, this.tooltip, this.status);
    container.appendChild(this.root);
    this.ctx = this.canvas.getContext("2d");

    this.listeners = [];
    this.listen(this.scroller, "scroll", () => { this.markDirty(); this.requestDraw(); this.scheduleFetch(); });
    this.listen(this.canvas, "wheel", (e) => this.onWheel(e), { passive: false });
    this.listen(this.canvas, "mousedown", (e) => this.onMouseDown(e));
    this.listen(window, "mousemove", (e) => this.onMouseMove(e));
    this.listen(window, "mouseup", (e) => this.onMouseUp(e));
    this.listen(this.canvas, "mouseleave", () => { this.pointer = null; this.tooltip.hidden = true; this.requestDraw(); });
    this.listen(window, "keydown", (e) => this.onKey(e));
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(this.scroller);
    this.resize();
  }

  listen(target, type, fn, options) {
    target.addEventListener(type, fn, options);
    this.listeners.push([target, type, fn, options]);
  }

  destroy() {
    for (const [t, type, fn, options] of this.listeners) t.removeEventListener(type, fn, options);
    this.resizeObserver.disconnect();
    this.destroyed = true;
    this.root.remove();
  }

  // ---- geometry ----

  get plotW() {
    return Math.max(1, this.cssW - LABEL_W);
  }

  get pixelWidth() {
    return Math.max(1, Math.min(10000, Math.round(this.plotW)));
  }

  xOf(t) {
    return LABEL_W + ((t - this.start) / (this.end - this.start)) * this.plotW;
  }

  tOf(x) {
    return this.start + ((x - LABEL_W) / this.plotW) * (this.end - this.start);
  }

  resize() {
    const w = Math.max(200, this.scroller.clientWidth);
    const h = Math.max(this.pinnedH + ROW_H, this.scroller.clientHeight);
    if (w === this.cssW && h === this.cssH) return;
    this.cssW = w;
    this.cssH = h;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.updateSpacer();
    this.viewChanged();
  }

  updateSpacer() {
    const rowsViewH = (this.cssH || 0) - this.pinnedH;
    this.spacer.style.height = `${Math.max(0, this.layout.height - rowsViewH)}px`;
  }

  setLayout(layout) {
    this.layout = layout;
    this.rowIndex = new Map(layout.rows.map((r, i) => [r.key, i]));
    this.updateSpacer();
    this.markDirty();
    this.requestDraw();
    this.scheduleFetch();
  }

  // Visible rows: [first, last] indices (inclusive), with `extra` rows beyond each edge.
  visibleRows(extra = 0) {
    const { offsets, rows } = this.layout;
    if (!rows.length) return [0, -1];
    const top = this.scroller.scrollTop;
    const bottom = top + this.cssH - this.pinnedH;
    let first = rowAt(offsets, top);
    if (first < 0) first = 0;
    let last = rowAt(offsets, Math.min(bottom, this.layout.height - 1));
    if (last < 0) last = rows.length - 1;
    return [Math.max(0, first - extra), Math.min(rows.length - 1, last + extra)];
  }

  // The canvas y of a row's top, or null when no row has that key.
  rowTop(key) {
    const i = this.rowIndex.get(key);
    if (i === undefined) return null;
    return this.pinnedH + this.layout.offsets[i] - this.scroller.scrollTop;
  }

  // Scroll so that the row `key` shows (centred when it was out of view); true when it exists.
  scrollToRow(key) {
    const i = this.rowIndex.get(key);
    if (i === undefined) return false;
    const y = this.layout.offsets[i];
    const viewH = this.cssH - this.pinnedH;
    const top = this.scroller.scrollTop;
    if (y < top || y + this.layout.rows[i].height > top + viewH) {
      this.scroller.scrollTop = Math.max(0, y - viewH / 2);
    }
    this.requestDraw();
    this.scheduleFetch();
    return true;
  }

  // Where to click to hit lane `key` at time `t`: page coordinates, after scrolling the lane into view.
  pointFor(key, t) {
    if (key === "gc") {
      const r = this.canvas.getBoundingClientRect();
      return { x: r.left + this.xOf(t), y: r.top + RULER_H + GC_H / 2 };
    }
    if (!this.scrollToRow(key)) return null;
    const r = this.canvas.getBoundingClientRect();
    const i = this.rowIndex.get(key);
    return { x: r.left + this.xOf(t), y: r.top + this.rowTop(key) + this.layout.rows[i].height / 2 };
  }

  // ---- the view ----

  setView(start, end, { silent = false } = {}) {
    let span = Math.max(MIN_SPAN, end - start);
    const maxSpan = this.duration * 1.05;
    if (span > maxSpan) span = maxSpan;
    const slack = this.duration * 0.025;
    start = Math.min(Math.max(start, -slack), this.duration + slack - span);
    end = start + span;
    if (start === this.start && end === this.end) return;
    this.start = start;
    this.end = end;
    this.viewChanged();
    if (!silent) this.onView(this.start, this.end);
  }

  // New lanes show: the next complete draw counts as settled.
  markDirty() {
    if (this.pendingSettle) return;
    this.pendingSettle = true;
    this.stats.viewChangedAt = performance.now();
  }

  viewChanged() {
    this.stats.viewChangedAt = performance.now();
    this.pendingSettle = true;
    this.requestDraw();
    this.scheduleFetch();
  }

  zoomAt(x, factor) {
    const t = this.tOf(x);
    const span = (this.end - this.start) / factor;
    const frac = (x - LABEL_W) / this.plotW;
    this.setView(t - frac * span, t - frac * span + span);
  }

  zoomAround(factor) {
    const x = this.pointer && this.pointer.x > LABEL_W ? this.pointer.x : LABEL_W + this.plotW / 2;
    this.zoomAt(x, factor);
  }

  panBy(dxPx) {
    const dt = (dxPx / this.plotW) * (this.end - this.start);
    this.setView(this.start + dt, this.end + dt);
  }

  centerOn(t) {
    const span = this.end - this.start;
    this.setView(t - span / 2, t + span / 2);
  }

  setRange(range) {
    this.range = range;
    this.requestDraw();
  }

  setSelected(sel) {
    this.selected = sel;
    this.requestDraw();
  }

  setArrow(arrow) {
    this.arrow = arrow;
    this.requestDraw();
  }

  setHighlight(key) {
    this.highlightKey = key;
    this.requestDraw();
  }

  // ---- fetching ----

  // Lane keys of the pinned strip and of the visible rows, with `extra` rows beyond each edge.
  neededKeys(extra = 0) {
    const [first, last] = this.visibleRows(extra);
    const keys = ["gc"];
    if (this.hasHeap) keys.push("heap");
    for (let i = first; i <= last; i++) {
      const r = this.layout.rows[i];
      if (r && (r.type === "g" || r.type === "loop" || r.type === "gc" || r.type === "heap")) keys.push(r.key);
    }
    return keys;
  }

  request() {
    return { start: Math.floor(this.start), end: Math.ceil(this.end), width: this.pixelWidth };
  }

  fresh(key, req) {
    const d = this.data.get(key);
    return !!d && d.start === req.start && d.end === req.end && d.width === req.width;
  }

  scheduleFetch() {
    if (this.fetchQueued) return;
    this.fetchQueued = true;
    setTimeout(() => {
      this.fetchQueued = false;
      this.fetch();
    }, 0);
  }

  // Ask for the spans of the lanes whose last answer is for another window. The visible lanes go first, one
  // request at a time (a frame waits for them); the lanes just out of view follow in the background, without
  // holding up the next visible request.
  fetch() {
    if (this.destroyed || !this.cssW) return;
    const req = this.request();
    const visible = this.neededKeys(0).filter((k) => !this.fresh(k, req));
    if (visible.length) {
      if (this.inflight) {
        this.again = true;
        return;
      }
      this.send(visible, req, false);
      return;
    }
    if (this.inflight || this.background) return;
    const nearby = this.neededKeys(OVERSCAN).filter((k) => !this.fresh(k, req));
    if (nearby.length) this.send(nearby, req, true);
    else this.requestDraw();
  }

  send(keys, req, background) {
    const began = performance.now();
    const batches = [];
    for (let i = 0; i < keys.length; i += BATCH) batches.push(keys.slice(i, i + BATCH));
    let left = batches.length;
    if (background) this.background = true;
    else this.inflight = left;
    for (const batch of batches) {
      this.stats.requests++;
      api.spans(batch, req.start, req.end, req.width)
        .then((answer) => {
          if (this.destroyed) return;
          const lanes = answer.lanes || {};
          for (const key of batch) {
            this.data.set(key, { start: req.start, end: req.end, width: req.width, cols: lanes[key] || {} });
          }
          this.error = null;
        })
        .catch((err) => {
          this.error = `Could not load spans: ${err.message}`;
        })
        .finally(() => {
          if (this.destroyed) return;
          if (--left > 0) return;
          if (background) this.background = false;
          else {
            this.inflight = 0;
            this.stats.lastFetchMs = performance.now() - began;
          }
          this.evict();
          this.requestDraw();
          this.again = false;
          if (!this.error) this.scheduleFetch(); // a newer view, or the lanes just out of view
        });
    }
  }

  evict() {
    if (this.data.size <= KEEP) return;
    const keep = new Set(this.neededKeys(OVERSCAN));
    for (const key of this.data.keys()) {
      if (!keep.has(key)) this.data.delete(key);
      if (this.data.size <= KEEP / 2) break;
    }
  }

  // ---- input ----

  canvasPoint(e) {
    const r = this.canvas.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  onWheel(e) {
    const p = this.canvasPoint(e);
    if (p.x < LABEL_W && !e.ctrlKey) return; // over the names: scroll the lanes
    e.preventDefault();
    if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
      const d = Math.abs(e.deltaX) > Math.abs(e.deltaY) ? e.deltaX : e.deltaY;
      this.panBy(d * (e.deltaMode === 1 ? 16 : 1));
      return;
    }
    const dy = e.deltaY * (e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1);
    this.zoomAt(Math.max(LABEL_W, p.x), Math.exp(-dy * 0.002));
  }

  onMouseDown(e) {
    if (e.button !== 0) return;
    const p = this.canvasPoint(e);
    this.scroller.focus({ preventScroll: true });
    if (p.x < LABEL_W) {
      this.drag = { mode: "label", x0: p.x, y0: p.y };
      return;
    }
    e.preventDefault();
    const mode = e.shiftKey || p.y < RULER_H ? "range" : "pan";
    this.drag = { mode, x0: p.x, y0: p.y, lastX: p.x, t0: this.tOf(p.x), moved: false };
  }

  onMouseMove(e) {
    const p = this.canvasPoint(e);
    const inside = p.x >= 0 && p.y >= 0 && p.x <= this.cssW && p.y <= this.cssH;
    this.pointer = inside ? p : null;
    if (this.drag && this.drag.mode !== "label") {
      if (Math.abs(p.x - this.drag.x0) > 3) this.drag.moved = true;
      if (this.drag.mode === "pan") {
        this.panBy(this.drag.lastX - p.x);
        this.drag.lastX = p.x;
      } else if (this.drag.moved) {
        const t1 = this.tOf(Math.max(LABEL_W, Math.min(this.cssW, p.x)));
        this.range = { start: Math.min(this.drag.t0, t1), end: Math.max(this.drag.t0, t1) };
      }
      this.tooltip.hidden = true;
      this.requestDraw();
      return;
    }
    if (inside) this.hover(p);
    this.requestDraw();
  }

  onMouseUp(e) {
    const drag = this.drag;
    this.drag = null;
    if (!drag) return;
    const p = this.canvasPoint(e);
    if (drag.mode === "label") {
      if (Math.abs(p.y - drag.y0) < 4) this.clickLabel(p);
      return;
    }
    if (drag.mode === "range" && drag.moved && this.range) {
      this.onRange(this.range);
      return;
    }
    if (!drag.moved) this.click(p);
  }

  onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
    if (!this.root.isConnected) return;
    const k = e.key.toLowerCase();
    if (k === "w") this.zoomAround(ZOOM_STEP);
    else if (k === "s") this.zoomAround(1 / ZOOM_STEP);
    else if (k === "a") this.panBy(-this.plotW * 0.15);
    else if (k === "d") this.panBy(this.plotW * 0.15);
    else if (k === "0") this.setView(0, this.duration);
    else if (k === "escape") {
      this.range = null;
      this.onRange(null);
    } else return;
    e.preventDefault();
  }

  // What is under canvas point p: {kind: "gc"|"heap"|"ruler"|"row", row?, t}
  hit(p) {
    const t = this.tOf(p.x);
    if (p.y < RULER_H) return { kind: "ruler", t };
    if (p.y < RULER_H + GC_H) return { kind: "gc", key: "gc", t };
    if (this.hasHeap && p.y < this.pinnedH) return { kind: "heap", key: "heap", t };
    const i = rowAt(this.layout.offsets, p.y - this.pinnedH + this.scroller.scrollTop);
    if (i < 0) return { kind: "none", t };
    return { kind: "row", row: this.layout.rows[i], t };
  }

  // The index of the span of `cols` under x (within a few pixels), or -1.
  spanAt(cols, x) {
    const starts = cols.start, ends = cols.end;
    if (!starts || !starts.length) return -1;
    const t = this.tOf(x);
    const slop = (3 / this.plotW) * (this.end - this.start);
    // the last span that starts at or before t + slop
    let lo = 0, hi = starts.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid] <= t + slop) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    let best = -1, bestD = Infinity;
    for (let i = found; i >= 0 && i > found - 8; i--) {
      const d = t < starts[i] ? starts[i] - t : t >= ends[i] ? t - ends[i] : 0;
      if (d < bestD) { best = i; bestD = d; }
      if (d === 0) break;
    }
    return bestD <= slop ? best : -1;
  }

  hover(p) {
    const h = this.hit(p);
    const lines = [];
    if (h.kind === "row" && (h.row.type === "g" || h.row.type === "loop")) {
      const d = this.data.get(h.row.key);
      if (d) {
        const i = this.spanAt(d.cols, p.x);
        if (i >= 0) {
          const c = d.cols;
          if (h.row.type === "g") {
            const state = this.states[c.state[i]] || "?";
            lines.push(h.row.label, `${state} · ${fmtDur(c.end[i] - c.start[i])}`);
            if (c.count && c.count[i] > 1) lines.push(`${fmtCount(c.count[i])} spans merged (zoom in)`);
          } else {
            lines.push(c.label[i] || LOOP_LABELS[c.what[i]], `${LOOP_LABELS[c.what[i]]} · ${fmtDur(c.end[i] - c.start[i])}`);
          }
          lines.push(`at ${fmtTime(c.start[i])}`);
        }
      }
    } else if (h.kind === "gc" || (h.kind === "row" && h.row.type === "gc")) {
      const d = this.data.get(h.kind === "gc" ? "gc" : h.row.key);
      if (d) {
        const i = this.spanAt(d.cols, p.x);
        if (i >= 0) lines.push(`GC generation ${d.cols.generation[i]}`, `${fmtDur(d.cols.end[i] - d.cols.start[i])} at ${fmtTime(d.cols.start[i])}`);
      }
    } else if (h.kind === "heap" || (h.kind === "row" && h.row.type === "heap")) {
      const d = this.data.get(h.kind === "heap" ? "heap" : h.row.key);
      if (d && d.cols.ts && d.cols.ts.length) {
        const ts = d.cols.ts;
        let i = 0;
        while (i + 1 < ts.length && ts[i + 1] <= h.t) i++;
        lines.push(`heap at ${fmtTime(ts[i])}`, `${fmtCount(d.cols.blocks[i])} allocated blocks`);
        if (d.cols.rss && d.cols.rss[i] !== null && d.cols.rss[i] !== undefined) lines.push(`RSS ${fmtBytes(d.cols.rss[i])}`);
      }
    }
    if (!lines.length) {
      this.tooltip.hidden = true;
      return;
    }
    this.tooltip.replaceChildren(...lines.map((l, j) => el("div", j === 0 ? { class: "tt-title" } : null, l)));
    this.tooltip.hidden = false;
    const left = Math.min(p.x + 14, this.cssW - 260);
    this.tooltip.style.left = `${left}px`;
    this.tooltip.style.top = `${p.y + 16}px`;
  }

  clickLabel(p) {
    const h = this.hit(p);
    if (h.kind === "row" && h.row.type === "group") this.onToggleGroup(h.row.group);
    if (h.kind === "row" && h.row.type === "process") this.onToggleProcess(h.row.proc);
  }

  click(p) {
    const h = this.hit(p);
    if (h.kind === "row" && h.row.type === "group") {
      this.onToggleGroup(h.row.group);
      return;
    }
    if (h.kind === "row" && h.row.type === "process") {
      this.onToggleProcess(h.row.proc);
      return;
    }
    const gcRow = h.kind === "row" && h.row.type === "gc";
    const key = h.kind === "gc" ? "gc" : h.kind === "row" && h.row.type !== "heap" ? h.row.key : null;
    const d = key && this.data.get(key);
    const i = d ? this.spanAt(d.cols, p.x) : -1;
    if (i < 0) {
      this.onSpan(null);
      return;
    }
    const c = d.cols;
    // a time inside the span, as near the pointer as possible
    const t = Math.max(c.start[i], Math.min(c.end[i] - 1, Math.round(h.t)));
    if (key === "gc" || gcRow) this.onSpan({ kind: "gc", key, proc: gcRow ? h.row.proc : null, start: c.start[i], end: c.end[i], generation: c.generation[i] });
    else if (h.row.type === "loop") {
      // merged spans (narrower than a pixel) have no task and the label "N spans"
      const merged = c.g[i] < 0 && /^\d+ spans$/.test(c.label[i] || "");
      const mid = Math.floor((c.start[i] + c.end[i]) / 2);
      this.onSpan({ kind: "loop", key, loop: h.row.id, t: mid, start: c.start[i], end: c.end[i], merged, label: c.label[i] });
    }
    else this.onSpan({ kind: "g", key, g: h.row.id, t, start: c.start[i], end: c.end[i], merged: c.count ? c.count[i] : 1 });
  }

  // ---- drawing ----

  requestDraw() {
    if (this.drawQueued || this.destroyed) return;
    this.drawQueued = true;
    requestAnimationFrame(() => {
      this.drawQueued = false;
      if (!this.destroyed) this.draw();
    });
  }

  draw() {
    const ctx = this.ctx;
    const W = this.cssW, H = this.cssH;
    if (!W) return;
    const began = performance.now();
    ctx.save();
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, H);
    ctx.font = FONT;
    ctx.textBaseline = "middle";

    const step = niceStep(((this.end - this.start) / this.plotW) * 110);
    this.drawRows(step);
    this.drawPinned(step);
    this.drawOverlays();
    ctx.restore();
    this.status.textContent = this.error || "";
    this.status.hidden = !this.error;
    this.stats.lastDrawMs = performance.now() - began;
    this.noteSettled();
  }

  noteSettled() {
    if (!this.pendingSettle) return;
    const req = this.request();
    if (this.neededKeys(0).every((k) => this.fresh(k, req))) {
      this.pendingSettle = false;
      const now = performance.now();
      const ms = now - this.stats.viewChangedAt;
      this.stats.settled++;
      this.stats.lastSettleMs = ms;
      this.stats.settleTimes.push(ms);
      if (this.stats.settleTimes.length > 1000) this.stats.settleTimes.shift();
      if (this.stats.firstPaint === null) this.stats.firstPaint = now;
      this.root.dataset.settled = String(this.stats.settled);
    }
  }

  gridLines(step, top, bottom) {
    const ctx = this.ctx;
    ctx.strokeStyle = UI.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let t = Math.ceil(this.start / step) * step; t <= this.end; t += step) {
      const x = Math.round(this.xOf(t)) + 0.5;
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
    }
    ctx.stroke();
  }

  drawPinned(step) {
    const ctx = this.ctx;
    const W = this.cssW;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, this.pinnedH);
    // ruler
    ctx.fillStyle = "#f3f5f8";
    ctx.fillRect(LABEL_W, 0, W - LABEL_W, RULER_H);
    ctx.strokeStyle = "#9aa4ae";
    ctx.fillStyle = UI.text;
    ctx.beginPath();
    const extent = Math.max(Math.abs(this.start), Math.abs(this.end));
    for (let t = Math.ceil(this.start / step) * step; t <= this.end; t += step) {
      const x = Math.round(this.xOf(t)) + 0.5;
      ctx.moveTo(x, RULER_H - 8);
      ctx.lineTo(x, RULER_H);
      ctx.fillText(fmtTick(t, step, extent), x + 3, RULER_H / 2 - 2);
    }
    const minor = step / 5;
    for (let t = Math.ceil(this.start / minor) * minor; t <= this.end; t += minor) {
      const x = Math.round(this.xOf(t)) + 0.5;
      ctx.moveTo(x, RULER_H - 3);
      ctx.lineTo(x, RULER_H);
    }
    ctx.stroke();
    ctx.fillStyle = UI.mutedText;
    ctx.fillText(`${fmtDur(this.end - this.start)} shown`, 8, RULER_H / 2);
    // pointer time
    if (this.pointer && this.pointer.x > LABEL_W) {
      const label = fmtTime(this.tOf(this.pointer.x));
      const w = ctx.measureText(label).width + 8;
      const x = Math.min(this.pointer.x, W - w);
      ctx.fillStyle = UI.text;
      ctx.fillRect(x, 0, w, RULER_H - 8);
      ctx.fillStyle = "#fff";
      ctx.fillText(label, x + 4, (RULER_H - 8) / 2);
    }

    // GC strip
    let y = RULER_H;
    this.laneLabel(this.model.several ? "GC, every process" : "GC", y, GC_H, BOLD);
    this.drawGc("gc", y, GC_H);
    y += GC_H;
    if (this.hasHeap) this.drawHeap(y);
    ctx.strokeStyle = "#c9d0d8";
    ctx.beginPath();
    ctx.moveTo(0, this.pinnedH - 0.5);
    ctx.lineTo(W, this.pinnedH - 0.5);
    ctx.moveTo(LABEL_W - 0.5, 0);
    ctx.lineTo(LABEL_W - 0.5, this.cssH);
    ctx.stroke();
  }

  drawGc(key, y, height) {
    const ctx = this.ctx;
    const gc = this.data.get(key);
    if (!gc) return;
    const c = gc.cols;
    for (let i = 0; i < (c.start || []).length; i++) {
      const px = this.pixels(c.start[i], c.end[i]);
      if (!px) continue;
      ctx.fillStyle = GC_COLORS[Math.min(2, Math.max(0, c.generation[i] | 0))];
      ctx.fillRect(px[0], y + 2, px[1], height - 4);
    }
  }

  drawHeap(y, key = "heap", name = "Heap") {
    const ctx = this.ctx;
    const heap = this.data.get(key);
    const top = y + 3, h = HEAP_H - 6;
    let label = "";
    if (heap && heap.cols.ts && heap.cols.ts.length) {
      const { ts, blocks, rss } = heap.cols;
      let maxB = 0, maxR = 0, minB = Infinity, minR = Infinity;
      for (let i = 0; i < ts.length; i++) {
        maxB = Math.max(maxB, blocks[i] || 0);
        minB = Math.min(minB, blocks[i] || 0);
        if (rss && rss[i]) { maxR = Math.max(maxR, rss[i]); minR = Math.min(minR, rss[i]); }
      }
      // each series spans the lane from a little under its smallest value to its largest, so changes show
      const floor = (lo, hi) => Math.max(0, lo - Math.max((hi - lo) * 0.25, hi * 0.02));
      const series = (values, lo, max, color, fill) => {
        if (!(max > 0)) return;
        const base = floor(lo, max);
        ctx.beginPath();
        let started = false;
        for (let i = 0; i < ts.length; i++) {
          if (values[i] === null || values[i] === undefined) continue;
          const x = Math.max(LABEL_W, Math.min(this.cssW, this.xOf(ts[i])));
          const yy = top + h - ((values[i] - base) / (max - base || 1)) * h;
          if (!started) { ctx.moveTo(x, fill ? top + h : yy); if (fill) ctx.lineTo(x, yy); started = true; } else ctx.lineTo(x, yy);
          if (i + 1 < ts.length) {
            const xn = Math.max(LABEL_W, Math.min(this.cssW, this.xOf(ts[i + 1])));
            ctx.lineTo(xn, yy); // a step: the value holds until the next sample
          }
        }
        if (!started) return;
        if (fill) {
          ctx.lineTo(Math.max(LABEL_W, Math.min(this.cssW, this.xOf(ts[ts.length - 1]))), top + h);
          ctx.closePath();
          ctx.globalAlpha = 0.35;
          ctx.fillStyle = color;
          ctx.fill();
          ctx.globalAlpha = 1;
        } else {
          ctx.strokeStyle = color;
          ctx.lineWidth = 1.5;
          ctx.stroke();
          ctx.lineWidth = 1;
        }
      };
      ctx.save();
      ctx.beginPath();
      ctx.rect(LABEL_W, y, this.cssW - LABEL_W, HEAP_H);
      ctx.clip();
      series(blocks, minB, maxB, HEAP_COLORS.blocks, true);
      if (rss && maxR > 0) series(rss, minR, maxR, HEAP_COLORS.rss, false);
      ctx.restore();
      label = `${fmtCount(minB)}–${fmtCount(maxB)} blocks`;
      if (maxR > 0) label += `, RSS ≤ ${fmtBytes(maxR)}`;
    }
    this.laneLabel(name, y, HEAP_H / 2, BOLD);
    if (label) this.laneLabel(label, y + HEAP_H / 2 - 4, HEAP_H / 2, FONT);
  }

  laneLabel(text, y, h, font) {
    const ctx = this.ctx;
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, y, LABEL_W - 6, h);
    ctx.clip();
    ctx.font = font;
    ctx.fillStyle = UI.text;
    ctx.fillText(text, 8, y + h / 2);
    ctx.restore();
  }

  clipX(s, e) {
    return [Math.max(LABEL_W, this.xOf(s)), Math.min(this.cssW, this.xOf(e))];
  }

  // A span's pixels, snapped to whole pixels and at least one wide: [x, width], or null when out of view.
  pixels(s, e) {
    const a = Math.round(Math.max(LABEL_W, this.xOf(s)));
    const b = Math.round(Math.min(this.cssW, this.xOf(e)));
    if (b < a || a >= this.cssW || b < LABEL_W) return null;
    return [a, Math.max(1, b - a)];
  }

  drawRows(step) {
    const ctx = this.ctx;
    const W = this.cssW;
    const [first, last] = this.visibleRows(0);
    const top = this.pinnedH;
    const scroll = this.scroller.scrollTop;
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, top, W, this.cssH - top);
    ctx.clip();
    this.gridLines(step, top, this.cssH);
    for (let i = first; i <= last; i++) {
      const r = this.layout.rows[i];
      const y = top + this.layout.offsets[i] - scroll;
      if (r.type === "process") {
        ctx.fillStyle = r.key === this.highlightKey ? "#ffe58a" : UI.processHeader;
        ctx.fillRect(0, y, W, r.height);
        ctx.fillStyle = UI.text;
        ctx.font = BOLD;
        ctx.fillText(`${r.open ? "▾" : "▸"} ${r.label} (${fmtCount(r.count)} goroutines)`, 6, y + r.height / 2);
        ctx.font = FONT;
        continue;
      }
      if (r.type === "section" || r.type === "group") {
        ctx.fillStyle = UI.groupHeader;
        ctx.fillRect(0, y, W, r.height);
        ctx.fillStyle = UI.text;
        ctx.font = BOLD;
        const text = r.type === "group" ? `${r.open ? "▾" : "▸"} ${r.label} (${fmtCount(r.count)})` : r.label;
        ctx.fillText(text, 6, y + r.height / 2);
        ctx.font = FONT;
        continue;
      }
      if (r.key === this.highlightKey) {
        ctx.fillStyle = "#fff6c9";
        ctx.fillRect(0, y, W, r.height);
      } else if (i % 2) {
        ctx.fillStyle = UI.laneAlt;
        ctx.fillRect(0, y, W, r.height);
      }
      if (r.type === "gc") {
        this.drawGc(r.key, y, r.height);
        this.laneLabel(r.label, y, r.height, BOLD);
        continue;
      }
      if (r.type === "heap") {
        this.drawHeap(y, r.key, r.label);
        continue;
      }
      const d = this.data.get(r.key);
      if (d) {
        if (r.type === "g") this.drawStates(d.cols, y + 2, r.height - 3);
        else this.drawLoop(d.cols, y + 2, r.height - 3);
      }
      this.laneLabel(r.label, y, r.height, FONT);
    }
    ctx.restore();
  }

  drawStates(c, y, h) {
    const ctx = this.ctx;
    const n = c.start ? c.start.length : 0;
    // Adjacent spans of one state that meet on screen become one rectangle; rectangles are drawn by state.
    const runs = this.states.map(() => []);
    let state = -1, x0 = 0, x1 = 0;
    const flush = () => { if (state >= 0 && runs[state]) runs[state].push(x0, x1 - x0); };
    for (let i = 0; i < n; i++) {
      const px = this.pixels(c.start[i], c.end[i]);
      if (!px) continue;
      const s = c.state[i];
      if (s === state && px[0] <= x1) {
        x1 = Math.max(x1, px[0] + px[1]);
        continue;
      }
      flush();
      state = s;
      x0 = px[0];
      x1 = px[0] + px[1];
    }
    flush();
    for (let s = 0; s < runs.length; s++) {
      const r = runs[s];
      if (!r.length) continue;
      ctx.fillStyle = stateFill(ctx, this.states[s]);
      for (let j = 0; j < r.length; j += 2) ctx.fillRect(r[j], y, r[j + 1], h);
    }
  }

  drawLoop(c, y, h) {
    const ctx = this.ctx;
    const n = c.start ? c.start.length : 0;
    for (let i = 0; i < n; i++) {
      const px = this.pixels(c.start[i], c.end[i]);
      if (!px) continue;
      const [x0, w] = px, x1 = x0 + w;
      const what = Math.min(2, Math.max(0, c.what[i] | 0));
      const color = LOOP_COLORS[what];
      ctx.fillStyle = color;
      ctx.fillRect(x0, y, w, h);
      if (w > 40 && what !== 2 && c.label[i]) {
        ctx.save();
        ctx.beginPath();
        ctx.rect(x0, y, x1 - x0, h);
        ctx.clip();
        ctx.fillStyle = textOn(color);
        ctx.fillText(c.label[i], x0 + 3, y + h / 2 + 0.5);
        ctx.restore();
      }
    }
  }

  drawOverlays() {
    const ctx = this.ctx;
    const top = RULER_H;
    if (this.range) {
      const [x0, x1] = this.clipX(this.range.start, this.range.end);
      if (x1 > x0) {
        ctx.fillStyle = UI.selection;
        ctx.fillRect(x0, top, x1 - x0, this.cssH - top);
        ctx.fillStyle = UI.selectionEdge;
        ctx.fillRect(x0, 0, 1, this.cssH);
        ctx.fillRect(x1 - 1, 0, 1, this.cssH);
        ctx.fillRect(x0, 0, x1 - x0, 4);
      }
    }
    if (this.selected) {
      const y = this.laneY(this.selected.key);
      if (y !== null) {
        const [x0, x1] = this.clipX(this.selected.start, this.selected.end);
        if (x1 >= x0 - 1) {
          ctx.strokeStyle = UI.highlight;
          ctx.lineWidth = 2;
          ctx.strokeRect(x0 - 1, y.top + 0.5, Math.max(2, x1 - x0) + 2, y.h - 1);
          ctx.lineWidth = 1;
        }
      }
    }
    if (this.arrow) this.drawArrow(this.arrow);
  }

  // {top, h} of a lane in canvas coordinates (pinned or scrolled), or null when not visible.
  laneY(key) {
    if (key === "gc") return { top: RULER_H, h: GC_H };
    const t = this.rowTop(key);
    if (t === null || t < this.pinnedH - ROW_H || t > this.cssH) return null;
    return { top: t, h: ROW_H };
  }

  drawArrow(a) {
    const ctx = this.ctx;
    const edge = (key) => {
      const y = this.laneY(key);
      if (y) return y.top + y.h / 2;
      const t = this.rowTop(key);
      if (t === null) return null;
      return t < this.pinnedH ? this.pinnedH + 2 : this.cssH - 2;
    };
    const y0 = edge(a.fromKey), y1 = edge(a.toKey);
    if (y0 === null || y1 === null) return;
    const x0 = this.xOf(a.fromT), x1 = this.xOf(a.toT);
    if (Math.max(x0, x1) < LABEL_W || Math.min(x0, x1) > this.cssW) return;
    ctx.save();
    ctx.beginPath();
    ctx.rect(LABEL_W, RULER_H, this.cssW - LABEL_W, this.cssH - RULER_H);
    ctx.clip();
    ctx.strokeStyle = UI.arrow;
    ctx.fillStyle = UI.arrow;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    ctx.stroke();
    const ang = Math.atan2(y1 - y0, x1 - x0);
    ctx.beginPath();
    ctx.moveTo(x1, y1);
    ctx.lineTo(x1 - 9 * Math.cos(ang - 0.4), y1 - 9 * Math.sin(ang - 0.4));
    ctx.lineTo(x1 - 9 * Math.cos(ang + 0.4), y1 - 9 * Math.sin(ang + 0.4));
    ctx.closePath();
    ctx.fill();
    ctx.beginPath();
    ctx.arc(x0, y0, 3, 0, 2 * Math.PI);
    ctx.fill();
    ctx.restore();
  }
}

export const GEOMETRY = { LABEL_W, RULER_H, GC_H, HEAP_H, ROW_H, HEADER_H };
