// #/mmu?w=INDEX: minimum mutator utilization by window length (log scale); the worst windows of the chosen
// length are listed and link to the timeline.

import { api } from "../api.js";
import { STATE_COLORS } from "../colors.js";
import { el, clear } from "../dom.js";
import { fmtDur, fmtPct, fmtTime } from "../format.js";
import { svg, logTicks } from "../chart.js";
import { timelineHref } from "../router.js";

const W = 760, H = 320, M = { left: 56, right: 16, top: 14, bottom: 44 };

export async function mount(root, route) {
  const data = await api.mmu();
  const curve = (data.curve || []).filter((p) => p.window_ns > 0);
  root.append(
    el("h1", null, "Minimum mutator utilization"),
    el("p", { class: "note" }, "For each window length: the smallest share of any window of that length in which no garbage collection ran. 1 = collections never got in the way; 0 = some window was all collection. Click a point for its worst windows."),
  );
  if (!curve.length) {
    root.append(el("p", { class: "empty" }, "No MMU curve: the trace is empty."));
    return {};
  }
  const lo = curve[0].window_ns, hi = curve[curve.length - 1].window_ns;
  const lx = (w) => M.left + ((Math.log10(w) - Math.log10(lo)) / Math.max(1e-9, Math.log10(hi) - Math.log10(lo))) * (W - M.left - M.right);
  const ly = (u) => M.top + (1 - u) * (H - M.top - M.bottom);
  const chart = svg("svg", { class: "chart mmu-chart", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": "MMU curve" });
  for (const u of [0, 0.25, 0.5, 0.75, 1]) {
    chart.append(svg("line", { x1: M.left, x2: W - M.right, y1: ly(u), y2: ly(u), class: "gridline" }));
    chart.append(svg("text", { x: M.left - 6, y: ly(u) + 4, "text-anchor": "end" }, `${u * 100}%`));
  }
  for (const t of logTicks(lo, hi)) {
    chart.append(svg("line", { x1: lx(t), x2: lx(t), y1: M.top, y2: H - M.bottom, class: "gridline" }));
    chart.append(svg("text", { x: lx(t), y: H - M.bottom + 16, "text-anchor": "middle" }, fmtDur(t)));
  }
  chart.append(svg("text", { x: (M.left + W - M.right) / 2, y: H - 6, "text-anchor": "middle", class: "axis-title" }, "window length (log scale)"));
  chart.append(svg("polyline", { points: curve.map((p) => `${lx(p.window_ns)},${ly(p.utilization)}`).join(" "), class: "mmu-line", stroke: STATE_COLORS.running }));
  const worst = el("div", { class: "mmu-worst" });
  const dots = curve.map((p, i) => {
    const dot = svg("circle", {
      cx: lx(p.window_ns), cy: ly(p.utilization), r: 4, class: "mmu-point", tabindex: 0, "data-index": i,
      onclick: () => choose(i), onkeydown: (e) => { if (e.key === "Enter") choose(i); },
    }, svg("title", null, `${fmtDur(p.window_ns)}: ${fmtPct(p.utilization)}`));
    chart.append(dot);
    return dot;
  });
  root.append(el("div", { class: "chart-holder" }, chart), worst);

  function choose(i) {
    dots.forEach((d, j) => d.classList.toggle("on", i === j));
    const p = curve[i];
    clear(worst).append(el("h2", null, `Worst windows of ${fmtDur(p.window_ns)}: utilization ${fmtPct(p.utilization)}`));
    const list = p.worst || [];
    if (!list.length) {
      worst.append(el("p", { class: "note" }, "No collection falls in any window this long."));
      return;
    }
    worst.append(el("table", { class: "data worst" },
      el("thead", null, el("tr", null, el("th", null, "window"), el("th", { class: "num" }, "utilization"), el("th", null, ""))),
      el("tbody", null, list.map((w) => {
        const s = w.start ?? w.start_ns, e = w.end ?? w.end_ns;
        return el("tr", null,
          el("td", null, `${fmtTime(s)} – ${fmtTime(e)}`),
          el("td", { class: "num" }, fmtPct(w.utilization)),
          el("td", null, el("a", { href: timelineHref(s, e, { margin: 0.1 }), class: "to-timeline" }, "show in timeline")));
      }))));
  }
  // Start with the window nearest to 10 ms, or the one in the URL.
  let start = Number(route.params.get("w"));
  if (!(start >= 0 && start < curve.length)) {
    start = 0;
    curve.forEach((p, i) => { if (Math.abs(Math.log10(p.window_ns / 1e7)) < Math.abs(Math.log10(curve[start].window_ns / 1e7))) start = i; });
  }
  choose(start);
  return {};
}

