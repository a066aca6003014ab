// #/query?q=SQL: one reading SQL statement over the trace's tables (docs/sql.md), its rows in a table. A row
// with a goroutine (goroutine_id, or g) and a time (start_ns, ts_ns or created_ns; end_ns) links to the timeline.

import { api, getJSON } from "../api.js";
import { el, clear } from "../dom.js";
import { fmtCount, fmtTime } from "../format.js";
import { href, timelineHref } from "../router.js";

const EXAMPLE = "SELECT state, count(*) AS intervals, sum(end_ns - start_ns) AS total_ns\nFROM states\nGROUP BY state\nORDER BY total_ns DESC";
const GOROUTINE = ["goroutine_id", "g"];
const START = ["start_ns", "ts_ns", "created_ns"];
const TIMES = new Set(["start_ns", "end_ns", "ts_ns", "created_ns", "ended_ns"]);

export async function mount(root, route) {
  const input = el("textarea", { class: "sql", rows: 6, spellcheck: "false", "aria-label": "SQL query" });
  input.value = route.params.get("q") || EXAMPLE;
  const run = el("button", { class: "run", type: "button" }, "Run");
  const out = el("div", { class: "query-results" });
  const info = await api.info().catch(() => ({}));
  const dataset = Boolean(info.dataset); // a Parquet dataset: no timeline to link to
  root.append(
    el("h1", null, "Query"),
    el("p", { class: "note" }, dataset
      ? `One SQL statement that reads (DuckDB's dialect) over the Parquet dataset's tables ${(info.tables || []).join(", ")}; times in ns from the start of each row's trace (join tables on trace_id). Ctrl+Enter runs it.`
      : "One SQL statement that reads (DuckDB's dialect) over the tables processes, goroutines, states, frames, gc, heap, user_tasks, user_regions, logs and events; times in ns from the trace's start. Ctrl+Enter runs it."),
    input,
    el("div", { class: "toolbar" }, run),
    out,
  );
  let token = 0;

  async function execute() {
    const t = ++token;
    const q = input.value;
    history.replaceState(null, "", href("query", { q }));
    clear(out).append(el("div", { class: "loading" }, "Running…"));
    let d;
    try {
      d = await getJSON("api/sql", { q });
    } catch (err) {
      if (t === token) clear(out).append(el("div", { class: "error-box query-error", role: "alert" }, err && err.message ? err.message : String(err)));
      return;
    }
    if (t !== token) return;
    clear(out).append(results(d, !dataset));
  }

  run.addEventListener("click", execute);
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      execute();
    }
  });
  if (route.params.get("q")) await execute();
  return {};
}

function results(d, timeline) {
  const columns = d.columns || [];
  const rows = d.rows || [];
  const g = columns.findIndex((c) => GOROUTINE.includes(c));
  const start = START.map((c) => columns.indexOf(c)).find((i) => i >= 0) ?? -1;
  const end = columns.indexOf("end_ns");
  const linked = timeline && g >= 0 && start >= 0;
  const count = `${fmtCount(rows.length)} row${rows.length === 1 ? "" : "s"}${d.truncated ? " (the first ones only)" : ""}`;
  const head = el("tr", null, linked ? el("th", null, "") : null, columns.map((c, i) => el("th", { class: numeric(d.types[i]) ? "num" : null }, c)));
  const body = rows.map((r) => el("tr", null,
    linked ? el("td", null, link(r[g], r[start], end >= 0 ? r[end] : null)) : null,
    r.map((v, i) => el("td", { class: numeric(d.types[i]) ? "num" : null, title: TIMES.has(columns[i]) && typeof v === "number" ? fmtTime(v) : null }, cell(v)))));
  return el("div", null, el("p", { class: "note count" }, count), el("table", { class: "data query" }, el("thead", null, head), el("tbody", null, body)));
}

function link(g, start, end) {
  if (typeof g !== "number" || typeof start !== "number") return "";
  const stop = typeof end === "number" && end > start ? end : start;
  return el("a", { class: "timeline-link", href: timelineHref(start, stop, { g, sel: `${g}@${Math.round((start + stop) / 2)}` }), title: "show on the timeline" }, "timeline");
}

function numeric(type) {
  return /^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|DOUBLE|FLOAT|DECIMAL)/.test(type || "");
}

function cell(v) {
  if (v === null || v === undefined) return el("span", { class: "null" }, "NULL");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}
