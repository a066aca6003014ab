// The timeline's side panel: what a clicked span is (state, stack, waker, user task) and totals of a selected range.

import { api } from "./api.js";
import { ESTIMATED_STATES, GC_COLORS, LOOP_COLORS, LOOP_LABELS, STATE_LABELS, stateBackground } from "./colors.js";
import { el, clear, swatch, errorBox, loading } from "./dom.js";
import { fmtCount, fmtDur, fmtPct, fmtTime } from "./format.js";
import { href } from "./router.js";

const PROFILE_TYPES = ["net", "sync", "syscall", "sleep", "other", "sched", "gil", "cpu"];
const BLOCKED = new Set(["network", "sync", "sleep", "syscall", "other", "other_estimated"]);

function row(name, ...value) {
  return el("tr", null, el("th", null, name), el("td", null, ...value));
}

function frameNode(f) {
  const where = f.file ? `${f.file}:${f.line}` : "";
  return el("li", { class: "frame" }, el("div", { class: "fn" }, f.function || "?"), where ? el("div", { class: "file" }, where) : null);
}

export class Panel {
  // actions: {jump(g, t), focus(g), zoomTo(start, end), showProcess(proc), close()}
  constructor(container, actions) {
    this.actions = actions;
    this.root = el("aside", { class: "panel", hidden: true, "aria-label": "details" });
    container.appendChild(this.root);
    this.token = 0;
  }

  hide() {
    this.token++;
    this.root.hidden = true;
    clear(this.root);
  }

  frame(title) {
    const t = ++this.token;
    clear(this.root);
    this.root.hidden = false;
    const body = el("div", { class: "panel-body" });
    this.root.append(
      el("div", { class: "panel-head" }, el("h2", null, title), el("button", { class: "close", title: "close (Esc)", onclick: () => this.actions.close() }, "×")),
      body,
    );
    return { body, live: () => t === this.token };
  }

  // Opens the panel and fetches what it shows: {d, body}, or null when the fetch failed,
  // another selection replaced this one, or there was nothing (the panel says so).
  async fetchInto(title, fetch, nothing) {
    const { body, live } = this.frame(title);
    body.append(loading());
    let d;
    try {
      d = await fetch();
    } catch (err) {
      if (live()) clear(body).append(errorBox(err));
      return null;
    }
    if (!live()) return null;
    clear(body);
    if (d === null) {
      body.append(el("p", null, nothing));
      return null;
    }
    return { d, body };
  }

  async showGoroutineSpan(sel, model) {
    const got = await this.fetchInto("Span", () => api.span(sel.g, sel.t), "This goroutine did not exist at that time.");
    if (got === null) return null;
    const { d, body } = got;
    const state = d.state;
    const g = model ? model.goroutine(d.g) : null;
    const proc = model && model.several ? model.processes[d.proc] : null;
    const table = el("table", { class: "kv" },
      row("goroutine", el("span", { class: "gname" }, d.name || ""), ` · g${d.g} · ${d.kind}`),
      proc ? row("process", this.processLink(proc, model)) : null,
      row("start function", el("code", null, d.function || "(none)")),
      row("state", swatch(stateBackground(state)), " ", BLOCKED.has(state) ? "blocked" : state),
      BLOCKED.has(state) ? row("category", ESTIMATED_STATES.has(state) ? "other" : state) : null,
      ESTIMATED_STATES.has(state) ? row("estimated", el("span", { class: "estimated" },
        "from samples: the OS showed the thread asleep, using no CPU, in a call no hook covers")) : null,
      row("start", fmtTime(d.start)),
      row("duration", fmtDur(d.end - d.start)),
      row("end", fmtTime(d.end)),
      row("user task", d.user_task ? el("span", { class: "utask" }, `${d.user_task.name} (#${d.user_task.id})`) : "–"),
      row("regions", d.regions && d.regions.length ? el("span", { class: "regions" }, d.regions.join(" › ")) : "–"),
    );
    body.append(table);
    if (d.waits_on) body.append(this.childWait(d.waits_on, model));
    if (sel.merged > 1) body.append(el("p", { class: "note" }, `This pixel merged ${fmtCount(sel.merged)} spans; this is the one at ${fmtTime(sel.t)}. Zoom in to see them all.`));

    const stackTitle = BLOCKED.has(state) ? "Stack where it blocked" : state === "runnable" ? "Stack where it resumes" : "Stack";
    body.append(el("h3", null, stackTitle));
    if (d.stack && d.stack.length) body.append(el("ol", { class: "stack" }, d.stack.map(frameNode)));
    else body.append(el("p", { class: "note" }, "no stack recorded"));

    body.append(el("h3", null, "Made ready by"));
    const w = d.waker;
    if (!w) {
      body.append(el("p", { class: "note" }, BLOCKED.has(state) || state === "runnable" ? "unknown" : "– (not a wait)"));
    } else {
      const what = w.g !== null && w.g !== undefined ? `${w.name || ""} · g${w.g}` : w.name || w.kind;
      const waker = el("div", { class: "waker" }, el("span", { class: "badge" }, w.kind), " ", el("span", { class: "wname" }, what));
      if (w.at !== null && w.at !== undefined) waker.append(el("div", { class: "note" }, `at ${fmtTime(w.at)}`));
      const links = el("div", { class: "links" });
      if (w.at !== null && w.at !== undefined) {
        links.append(el("a", {
          href: "#", class: "jump-waker",
          onclick: (e) => { e.preventDefault(); this.actions.jump(w.g, w.at); },
        }, w.g !== null && w.g !== undefined ? "jump to the waker" : "jump to the wake-up"));
      }
      if (w.g !== null && w.g !== undefined) {
        links.append(" · ", el("a", { href: "#", onclick: (e) => { e.preventDefault(); this.actions.focus(w.g); } }, "focus on the waker"));
      }
      waker.append(links);
      body.append(waker);
    }

    body.append(el("div", { class: "links actions" },
      el("a", { href: "#", onclick: (e) => { e.preventDefault(); this.actions.focus(d.g); } }, "focus on this goroutine"),
      " · ",
      el("a", { href: "#", onclick: (e) => { e.preventDefault(); this.actions.zoomTo(d.start, d.end); } }, "zoom to span"),
      g && g.function ? [" · ", el("a", { href: href("goroutines", { function: g.function, kind: g.kind }) }, "its group")] : null,
    ));
    return d;
  }

  // A link that shows process p (an entry of the lane model's processes): scrolls to its lanes, opening them.
  processLink(p, model) {
    return el("a", { href: "#", class: "process-link", dataset: { proc: String(p.index) },
      onclick: (e) => { e.preventDefault(); this.actions.showProcess(p.index); } }, model.processLabel(p));
  }

  // "Waiting on process N" (or a pool's workers), each linked to its lanes.
  childWait(w, model) {
    const box = el("div", { class: "child-wait" });
    const several = w.processes.length !== 1;
    const title = w.kind === "pool"
      ? `Waiting on the ${w.pool}'s workers`
      : several ? "Waiting on processes" : `Waiting on process ${w.processes[0].pid}`;
    box.append(el("h3", null, title));
    if (w.kind === "pool") {
      box.append(el("p", { class: "note" }, "the child processes of this process that ran during the wait"
        + " (the trace does not say which worker computed the result)"));
    }
    if (!w.processes.length) box.append(el("p", { class: "note" }, "none of them left a recording"));
    const list = el("ul", { class: "children" });
    for (const c of w.processes) {
      const p = c.proc !== null && c.proc !== undefined && model ? model.processes[c.proc] : null;
      list.append(el("li", null, p ? this.processLink(p, model)
        : `pid ${c.pid}: not traced (not a Python program, or not followed)`));
    }
    box.append(list);
    return box;
  }

  async showLoopSpan(sel, model) {
    const got = await this.fetchInto("Event loop", () => api.loopSpan(sel.loop, sel.t), "The loop ran nothing at that time.");
    if (got === null) return null;
    const { d, body } = got;
    const what = Math.min(2, Math.max(0, d.what | 0));
    const task = model && d.g !== null && d.g !== undefined && d.g >= 0 ? model.goroutine(d.g) : null;
    body.append(el("table", { class: "kv" },
      row("loop", String(d.loop)),
      row("what", swatch(LOOP_COLORS[what]), " ", LOOP_LABELS[what]),
      what === 2 ? null : row(what === 0 ? "task" : "callback", el("span", { class: "gname" }, d.label || (task ? task.name : "") || "?")),
      row("start", fmtTime(d.start)),
      row("duration", fmtDur(d.end - d.start)),
    ));
    if (d.g !== null && d.g !== undefined && d.g >= 0) {
      body.append(el("div", { class: "links actions" },
        el("a", { href: "#", onclick: (e) => { e.preventDefault(); this.actions.jump(d.g, d.start); } }, `show task g${d.g}`),
        " · ",
        el("a", { href: "#", onclick: (e) => { e.preventDefault(); this.actions.focus(d.g); } }, "focus on it"),
      ));
    }
    return d;
  }

  showMerged(sel, zoomIn) {
    const { body } = this.frame("Event loop");
    body.append(el("p", null, `${sel.label}: each narrower than a pixel, drawn as one.`),
      el("table", { class: "kv" }, row("from", fmtTime(sel.start)), row("to", fmtTime(sel.end))),
      el("div", { class: "links actions" }, el("button", { onclick: zoomIn }, "Zoom in")));
  }

  showGC(sel, model) {
    const { body } = this.frame("Garbage collection");
    const gen = Math.min(2, Math.max(0, sel.generation | 0));
    const proc = model && sel.proc !== null && sel.proc !== undefined ? model.processes[sel.proc] : null;
    body.append(el("table", { class: "kv" },
      proc ? row("process", this.processLink(proc, model)) : null,
      row("generation", swatch(GC_COLORS[gen]), ` ${sel.generation}`),
      row("start", fmtTime(sel.start)),
      row("duration", fmtDur(sel.end - sel.start)),
    ));
    const where = model && model.several ? "in its process" : "anywhere";
    body.append(el("p", { class: "note" }, `No Python code runs ${where} while a collection runs. `, el("a", { href: href("mmu") }, "MMU")));
  }

  async showRange(range, states) {
    const { body, live } = this.frame("Selected range");
    const params = { start: Math.floor(range.start), end: Math.ceil(range.end) };
    body.append(el("table", { class: "kv" },
      row("start", fmtTime(range.start)),
      row("end", fmtTime(range.end)),
      row("duration", fmtDur(range.end - range.start)),
    ));
    body.append(el("div", { class: "links actions" },
      el("button", { class: "zoom-range", onclick: () => this.actions.zoomTo(range.start, range.end) }, "Zoom to range"),
    ));
    const totals = el("div", { class: "range-totals" }, loading());
    body.append(el("h3", null, "Time per state, all goroutines"), totals);
    body.append(el("h3", null, "Profiles of this range"));
    body.append(el("ul", { class: "profile-links" }, PROFILE_TYPES.map((t) => el("li", null, el("a", { href: href(`profile/${t}`, params) }, t)))));
    let d;
    try {
      d = await api.range(params.start, params.end);
    } catch (err) {
      if (live()) clear(totals).append(errorBox(err));
      return;
    }
    if (!live()) return;
    clear(totals);
    const entries = states.map((s) => [s, (d.totals && d.totals[s]) || 0]);
    const sum = entries.reduce((a, [, v]) => a + v, 0);
    if (sum > 0) {
      totals.append(el("div", { class: "state-bar" }, entries.filter(([, v]) => v > 0).map(([s, v]) =>
        el("span", { style: { background: stateBackground(s), flexGrow: String(v) }, title: `${s}: ${fmtDur(v)}` }))));
    }
    totals.append(el("table", { class: "totals" },
      el("tbody", null, entries.map(([s, v]) => el("tr", { dataset: { state: s } },
        el("td", null, swatch(stateBackground(s)), " ", STATE_LABELS[s] || s),
        el("td", { class: "num" }, fmtDur(v)),
        el("td", { class: "num" }, sum ? fmtPct(v / sum) : "–"))))));
    totals.append(el("p", { class: "note" }, `${fmtCount(d.goroutines)} goroutines in the range`));
  }
}
