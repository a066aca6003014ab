// #/logs?q=TEXT&offset=N: the exectracer.log records, searchable, paged, each linked to the timeline.

import { api } from "../api.js";
import { el, clear, errorBox } from "../dom.js";
import { fmtCount, fmtTime } from "../format.js";
import { href, timelineHref } from "../router.js";

const LIMIT = 200;

export async function mount(root, route) {
  const q = el("input", { type: "search", class: "search", placeholder: "search category or message", "aria-label": "search the log", value: route.params.get("q") || "" });
  const out = el("div", { class: "log-results" });
  root.append(el("h1", null, "Log"), el("p", { class: "note" }, "Records of exectracer.log(category, message)."), el("div", { class: "toolbar" }, q), out);
  let offset = Math.max(0, Math.floor(Number(route.params.get("offset")) || 0));
  let timer = null, token = 0;

  async function load() {
    const t = ++token;
    let d;
    try {
      d = await api.logs(q.value, offset, LIMIT);
    } catch (err) {
      if (t === token) clear(out).append(errorBox(err));
      return;
    }
    if (t !== token) return;
    history.replaceState(null, "", href("logs", { q: q.value || null, offset: offset || null }));
    clear(out);
    const records = d.records || [];
    out.append(el("p", { class: "note count" }, d.total ? `${fmtCount(offset + 1)}–${fmtCount(offset + records.length)} of ${fmtCount(d.total)} records` : "no records"));
    if (!records.length) return;
    out.append(el("table", { class: "data log" },
      el("thead", null, el("tr", null, ["time", "goroutine", "category", "message", "user task"].map((h) => el("th", null, h)))),
      el("tbody", null, records.map((r) => el("tr", null,
        el("td", null, el("a", { href: timelineHref(r.ts - 500_000, r.ts + 500_000, { margin: 0, sel: r.g !== null && r.g !== undefined ? `${r.g}@${r.ts}` : null }) }, fmtTime(r.ts))),
        el("td", null, r.g !== null && r.g !== undefined ? `g${r.g}` : "–"),
        el("td", { class: "category" }, r.category || ""),
        el("td", { class: "message" }, r.message || ""),
        el("td", null, r.task ? `${r.task_name ?? ""} #${r.task}` : "–"))))));
    const pager = el("p", { class: "pager" });
    if (offset > 0) pager.append(el("button", { onclick: () => { offset = Math.max(0, offset - LIMIT); load(); } }, "← previous"), " ");
    if (offset + records.length < d.total) pager.append(el("button", { onclick: () => { offset += LIMIT; load(); } }, "next →"));
    out.append(pager);
  }

  q.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { offset = 0; load(); }, 200);
  });
  await load();
  return { unmount: () => clearTimeout(timer) };
}
