// #/latency?what=tasks|regions: latency of user tasks and regions, a histogram per name whose buckets list
// their instances (the slowest first) with links to the timeline.

import { api } from "../api.js";
import { UI } from "../colors.js";
import { el, clear } from "../dom.js";
import { fmtCount, fmtDur, fmtTime } from "../format.js";
import { svg } from "../chart.js";
import { href, timelineHref } from "../router.js";

const BW = 560, BH = 120, M = { left: 8, right: 8, top: 8, bottom: 30 };

export async function mount(root, route) {
  const what = route.params.get("what") === "regions" ? "regions" : "tasks";
  root.append(el("nav", { class: "tabs" },
    el("a", { href: href("latency", { what: "tasks" }), class: what === "tasks" ? "on" : "" }, "User tasks"),
    el("a", { href: href("latency", { what: "regions" }), class: what === "regions" ? "on" : "" }, "User regions")));
  root.append(el("h1", null, what === "tasks" ? "User tasks" : "User regions"),
    el("p", { class: "note" }, "Durations of those that ended in the trace. Click a bar for its instances."));
  const rows = await api.latency(what);
  if (!rows.length) {
    root.append(el("p", { class: "empty" }, `No user ${what} in this trace (exectracer.${what === "tasks" ? "task" : "region"}).`));
    return {};
  }
  for (const r of rows) root.append(card(r, what));
  return {};
}

function card(r, what) {
  const list = el("div", { class: "instances" });
  const buckets = r.buckets || [];
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const bw = (BW - M.left - M.right) / Math.max(1, buckets.length);
  const chart = svg("svg", { class: "chart histogram", viewBox: `0 0 ${BW} ${BH}`, width: BW, height: BH, role: "img", "aria-label": `latency histogram of ${r.name}` });
  const bars = [];
  buckets.forEach((b, i) => {
    const h = (b.count / max) * (BH - M.top - M.bottom);
    const x = M.left + i * bw;
    const bar = svg("rect", {
      x: x + 1, y: BH - M.bottom - h, width: Math.max(1, bw - 2), height: Math.max(b.count ? 1 : 0, h),
      fill: UI.bar, class: "bucket", tabindex: 0, "data-index": i,
      onclick: () => choose(i), onkeydown: (e) => { if (e.key === "Enter") choose(i); },
    }, svg("title", null, `${fmtDur(b.lo_ns)} – ${fmtDur(b.hi_ns)}: ${fmtCount(b.count)}`));
    // a full-height hit area so short bars are easy to click
    chart.append(svg("rect", { x, y: M.top, width: bw, height: BH - M.top - M.bottom, fill: "transparent", onclick: () => choose(i) }), bar);
    bars.push(bar);
    if (i % Math.ceil(buckets.length / 6) === 0) chart.append(svg("text", { x: x + bw / 2, y: BH - M.bottom + 14, "text-anchor": "middle" }, fmtDur(b.lo_ns)));
  });

  function choose(i) {
    bars.forEach((b, j) => b.classList.toggle("on", i === j));
    const b = buckets[i];
    clear(list).append(el("h3", null, `${fmtDur(b.lo_ns)} – ${fmtDur(b.hi_ns)}: ${fmtCount(b.count)} ${what}`));
    const inst = b.instances || [];
    if (!inst.length) {
      list.append(el("p", { class: "note" }, "none"));
      return;
    }
    list.append(el("table", { class: "data instances-table" },
      el("thead", null, el("tr", null, el("th", null, "goroutine"), el("th", null, "start"), el("th", { class: "num" }, "duration"), el("th", null, ""))),
      el("tbody", null, inst.map((x) => el("tr", null,
        el("td", null, `g${x.g}`),
        el("td", null, fmtTime(x.start)),
        el("td", { class: "num" }, fmtDur(x.end - x.start)),
        el("td", null, el("a", { href: timelineHref(x.start, x.end, { sel: `${x.g}@${x.start}` }), class: "to-timeline" }, "show in timeline")))))));
    if (b.count > inst.length) list.append(el("p", { class: "note" }, `the ${inst.length} slowest of ${fmtCount(b.count)}`));
  }

  return el("section", { class: "latency-card" },
    el("h2", null, el("span", { class: "uname" }, r.name)),
    el("p", { class: "stats" },
      `${fmtCount(r.count)} · p50 ${fmtDur(r.p50_ns)} · p90 ${fmtDur(r.p90_ns)} · p99 ${fmtDur(r.p99_ns)} · max ${fmtDur(r.max_ns)}`,
      what === "regions" ? [" · ", el("a", { href: href("profile/net", { region: r.name }) }, "profiles of this region")] : null),
    el("div", { class: "chart-holder" }, chart),
    list);
}
