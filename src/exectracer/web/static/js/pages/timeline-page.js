// #/timeline?start=NS&end=NS&view=threads|goroutines&g=FOCUS&sel=G@T
// The toolbar (arrangement, search, jump to time, zoom), the legend, the timeline canvas and the side panel.

import { api } from "../api.js";
import { el, clear } from "../dom.js";
import { parseTime } from "../format.js";
import { LaneModel } from "../lanes.js";
import { timelineLegend } from "../legend.js";
import { Panel } from "../panel.js";
import { href } from "../router.js";
import { Timeline } from "../timeline.js";

export async function mount(root, route) {
  const [info, meta] = await Promise.all([api.info(), api.lanes()]);
  const page = new TimelinePage(root, info, meta);
  page.apply(route.params, true);
  return page;
}

class TimelinePage {
  constructor(root, info, meta) {
    this.info = info;
    this.states = info.states || ["running", "runnable", "network", "sync", "sleep", "syscall", "other"];
    this.model = new LaneModel(meta);
    this.arrangement = "threads";
    this.collapsed = new Set();
    this.closedProcesses = new Set(); // process indices whose lanes are collapsed
    this.focus = null; // {g, woken_by, woke}
    this.hashTimer = null;

    this.search = el("input", { type: "search", class: "search", placeholder: "Search goroutines by name or function", "aria-label": "search goroutines" });
    this.results = el("ul", { class: "search-results", hidden: true });
    this.jump = el("input", { type: "text", class: "jump", placeholder: "Jump to time (1.5s, 250ms)", "aria-label": "jump to time" });
    this.byThread = el("button", { class: "seg", "data-arr": "threads", onclick: () => this.setArrangement("threads") }, "By thread");
    this.byGoroutine = el("button", { class: "seg", "data-arr": "goroutines", onclick: () => this.setArrangement("goroutines") }, "By goroutine");
    this.focusBar = el("div", { class: "focus-bar", hidden: true });
    const toolbar = el("div", { class: "toolbar" },
      el("span", { class: "segmented" }, this.byThread, this.byGoroutine),
      el("span", { class: "search-box" }, this.search, this.results),
      el("form", { class: "jump-form", onsubmit: (e) => { e.preventDefault(); this.jumpToTime(); } }, this.jump),
      el("button", { title: "zoom in (W)", onclick: () => this.timeline.zoomAround(1.5) }, "+"),
      el("button", { title: "zoom out (S)", onclick: () => this.timeline.zoomAround(1 / 1.5) }, "−"),
      el("button", { title: "the whole trace (0)", onclick: () => this.timeline.setView(0, this.timeline.duration) }, "Whole trace"),
      el("span", { class: "hint" }, "wheel/W/S zoom · drag/A/D pan · shift-drag or drag the ruler: select a range · click a span"),
    );
    const body = el("div", { class: "timeline-body" });
    root.append(toolbar, this.focusBar, timelineLegend(this.states, !!meta.heap, (meta.loops || []).length > 0), body);
    const main = el("div", { class: "timeline-main" });
    body.append(main);
    this.panel = new Panel(body, {
      jump: (g, t) => this.jumpTo(g, t, true),
      focus: (g) => this.setFocus(g),
      showProcess: (proc) => this.showProcess(proc),
      zoomTo: (s, e) => this.timeline.setView(s, e),
      close: () => this.closePanel(),
    });
    this.timeline = new Timeline(main, {
      info,
      model: this.model,
      states: this.states,
      onSpan: (sel) => this.select(sel),
      onRange: (range) => this.selectRange(range),
      onView: () => this.queueHash(),
      onToggleGroup: (i) => this.toggleGroup(i),
      onToggleProcess: (i) => this.toggleProcess(i),
    });

    this.search.addEventListener("input", () => this.showResults());
    this.search.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        const first = this.results.querySelector("a");
        if (first) first.click();
      } else if (e.key === "Escape") {
        this.results.hidden = true;
      }
    });
    this.onDocClick = (e) => { if (!this.results.contains(e.target) && e.target !== this.search) this.results.hidden = true; };
    document.addEventListener("click", this.onDocClick);
  }

  unmount() {
    document.removeEventListener("click", this.onDocClick);
    clearTimeout(this.hashTimer);
    this.timeline.destroy();
  }

  // Another #/timeline link was followed while this page is open.
  update(route) {
    this.apply(route.params, false);
  }

  async apply(params, first) {
    const view = params.get("view");
    const g = params.has("g") ? Number(params.get("g")) : null;
    const sel = /^(-?\d+)@(-?\d+)$/.exec(params.get("sel") || "");
    if (view === "threads" || view === "goroutines") this.arrangement = view;
    else if (first && sel && this.model.goroutine(Number(sel[1]))?.kind === "task") this.arrangement = "goroutines";
    const number = (name, fallback) => {
      const v = params.has(name) ? Number(params.get(name)) : NaN;
      return Number.isFinite(v) ? v : fallback;
    };
    let start = number("start", 0), end = number("end", this.timeline.duration);
    if (!(end > start)) [start, end] = [0, this.timeline.duration];
    if (g !== null && Number.isFinite(g) && this.model.has(g)) await this.setFocus(g, { hash: false });
    else {
      this.focus = null;
      this.relayout();
    }
    this.timeline.setView(start, end, { silent: true });
    if (sel) this.jumpTo(Number(sel[1]), Number(sel[2]), false);
    this.writeHash();
  }

  relayout() {
    const focusing = !!this.focus;
    this.byThread.classList.toggle("on", !focusing && this.arrangement === "threads");
    this.byGoroutine.classList.toggle("on", !focusing && this.arrangement === "goroutines");
    this.timeline.setLayout(this.model.rows(this.arrangement, this.collapsed, this.focus, this.closedProcesses));
    clear(this.focusBar);
    this.focusBar.hidden = !focusing;
    if (focusing) {
      this.focusBar.append(
        "Focused on ", el("b", { class: "gname" }, this.model.label(this.focus.g)),
        ` and the ${this.focus.woken_by.length} goroutines that woke it and the ${this.focus.woke.length} it woke. `,
        el("a", { href: "#", onclick: (e) => { e.preventDefault(); this.setFocus(null); } }, "show all"),
      );
    }
  }

  setArrangement(a) {
    this.arrangement = a;
    this.focus = null;
    this.relayout();
    this.writeHash();
  }

  toggleGroup(i) {
    if (this.collapsed.has(i)) this.collapsed.delete(i);
    else this.collapsed.add(i);
    this.relayout();
  }

  toggleProcess(i) {
    if (this.closedProcesses.has(i)) this.closedProcesses.delete(i);
    else this.closedProcesses.add(i);
    this.relayout();
  }

  // Show process `proc`'s lanes: leave a focus, open its header, scroll it to the top and mark it.
  showProcess(proc) {
    const key = `process:${proc}`;
    this.focus = null;
    this.closedProcesses.delete(proc);
    this.relayout();
    const i = this.timeline.rowIndex.get(key);
    if (i === undefined) return;
    this.timeline.scroller.scrollTop = this.timeline.layout.offsets[i];
    this.timeline.setHighlight(key);
    this.timeline.requestDraw();
    this.timeline.scheduleFetch();
    this.writeHash();
  }

  async setFocus(g, { hash = true } = {}) {
    if (g === null || g === undefined) {
      this.focus = null;
    } else {
      let rel = { woken_by: [], woke: [] };
      try {
        rel = await api.related(g);
      } catch (err) {
        this.timeline.error = `Could not load related goroutines: ${err.message}`;
      }
      this.focus = { g, woken_by: rel.woken_by || [], woke: rel.woke || [] };
    }
    this.relayout();
    this.timeline.scroller.scrollTop = 0;
    if (hash) this.writeHash();
  }

  // Show goroutine g's lane (switching arrangement or opening its group if needed) and, with t, its span at t.
  async jumpTo(g, t, center) {
    if (t !== null && t !== undefined && (center || t < this.timeline.start || t > this.timeline.end)) this.timeline.centerOn(t);
    if (g === null || g === undefined || !this.model.has(g)) {
      this.timeline.setHighlight(null);
      return;
    }
    const key = `g:${g}`;
    if (!this.timeline.rowIndex.has(key)) {
      if (this.focus) this.focus = null;
      const info = this.model.goroutine(g);
      if (info) this.closedProcesses.delete(info.proc);
      const inThreads = this.model.threads.includes(g);
      if (!(this.arrangement === "threads" && inThreads)) {
        this.arrangement = "goroutines";
        const grp = this.model.groupOf.get(g);
        if (grp !== undefined) this.collapsed.delete(grp);
      }
      this.relayout();
    }
    this.timeline.scrollToRow(key);
    this.timeline.setHighlight(key);
    const info = this.model.goroutine(g);
    const alive = t !== null && t !== undefined && (info.created_ns === null || t >= info.created_ns) && (info.ended_ns === null || t < info.ended_ns);
    if (alive) await this.select({ kind: "g", key, g, t: Math.round(t), start: t, end: t });
    this.writeHash();
  }

  async select(sel) {
    if (sel && sel.kind === "g") {
      // a merged pixel may reach past the goroutine's life; ask about a time it was alive
      const g = this.model.goroutine(sel.g);
      if (g && g.ended_ns !== null && sel.t >= g.ended_ns) sel.t = g.ended_ns - 1;
      if (g && g.created_ns !== null && sel.t < g.created_ns) sel.t = g.created_ns;
    }
    this.selection = sel;
    this.timeline.setArrow(null);
    if (!sel) {
      this.closePanel();
      return;
    }
    this.timeline.setSelected(sel);
    if (sel.kind === "gc") {
      this.panel.showGC(sel, this.model);
    } else if (sel.kind === "loop" && sel.merged) {
      this.panel.showMerged(sel, () => this.timeline.setView(sel.start - (sel.end - sel.start) * 2, sel.end + (sel.end - sel.start) * 2));
    } else if (sel.kind === "loop") {
      const d = await this.panel.showLoopSpan(sel, this.model);
      if (d && this.selection === sel) this.timeline.setSelected({ key: sel.key, start: d.start, end: d.end });
    } else {
      const d = await this.panel.showGoroutineSpan(sel, this.model);
      if (d && this.selection === sel) {
        this.timeline.setSelected({ key: sel.key, start: d.start, end: d.end });
        const w = d.waker;
        if (w && w.g !== null && w.g !== undefined && w.at !== null && w.at !== undefined) {
          this.timeline.setArrow({ fromKey: `g:${w.g}`, fromT: w.at, toKey: sel.key, toT: d.end });
        }
      }
    }
  }

  selectRange(range) {
    this.selection = null;
    this.timeline.setSelected(null);
    this.timeline.setArrow(null);
    this.timeline.setRange(range);
    if (range) this.panel.showRange(range, this.states);
    else this.closePanel();
  }

  closePanel() {
    this.selection = null;
    this.panel.hide();
    this.timeline.setSelected(null);
    this.timeline.setArrow(null);
    this.timeline.setRange(null);
  }

  jumpToTime() {
    const t = parseTime(this.jump.value);
    this.jump.classList.toggle("invalid", t === null);
    if (t === null) return;
    this.timeline.centerOn(t);
    this.timeline.setRange({ start: t, end: t + Math.max(1, (this.timeline.end - this.timeline.start) / this.timeline.plotW) });
  }

  showResults() {
    const found = this.model.search(this.search.value, 50);
    clear(this.results);
    if (!this.search.value.trim()) {
      this.results.hidden = true;
      return;
    }
    if (!found.length) this.results.append(el("li", { class: "note" }, "no goroutine matches"));
    for (const g of found) {
      this.results.append(el("li", null,
        el("a", { href: "#", onclick: (e) => { e.preventDefault(); this.results.hidden = true; this.jumpTo(g.id, null, false); } },
          el("span", { class: "gname" }, g.name || g.kind), ` · g${g.id}`,
          this.model.several ? el("span", { class: "pid" }, ` · pid ${g.pid}`) : null,
          el("div", { class: "file" }, g.function || "(no start function)")),
        el("a", { href: "#", class: "focus-link", title: "focus on it", onclick: (e) => { e.preventDefault(); this.results.hidden = true; this.setFocus(g.id); } }, "focus"),
      ));
    }
    this.results.hidden = false;
  }

  queueHash() {
    clearTimeout(this.hashTimer);
    this.hashTimer = setTimeout(() => this.writeHash(), 200);
  }

  writeHash() {
    const t = this.timeline;
    const whole = t.start <= 0 && t.end >= t.duration;
    const h = href("timeline", {
      start: whole ? null : Math.floor(t.start),
      end: whole ? null : Math.ceil(t.end),
      view: this.arrangement,
      g: this.focus ? this.focus.g : null,
    });
    if (location.hash !== h) history.replaceState(null, "", h);
  }
}

