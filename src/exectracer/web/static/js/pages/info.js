// #/info: the trace's metadata, what was lost while recording (with a visible warning), and the warnings.

import { api } from "../api.js";
import { el } from "../dom.js";
import { fmtCount, fmtDur } from "../format.js";

function kv(rows) {
  return el("table", { class: "kv" }, rows.map(([k, v]) => el("tr", null, el("th", null, k), el("td", null, v))));
}

// A metadata value: lists as lines, objects as "key: value" lines, the rest as text.
function show(v) {
  if (v === null || v === undefined) return "–";
  if (Array.isArray(v)) return el("ul", { class: "plain" }, v.map((x) => el("li", null, typeof x === "object" ? JSON.stringify(x) : String(x))));
  if (typeof v === "object") {
    return el("ul", { class: "plain" }, Object.entries(v).map(([k, x]) => el("li", null, el("span", { class: "note" }, `${k}: `), typeof x === "object" && x !== null ? JSON.stringify(x) : String(x))));
  }
  return String(v);
}

export async function mount(root) {
  const info = await api.info();
  const lost = info.lost || {};
  const warnings = [...(info.warnings || [])];
  const lostAnything = lost.events || lost.chunks_skipped || lost.chunks_missing || lost.truncated_bytes || lost.hook_errors || lost.clean_end === false;
  root.append(el("h1", null, "Trace info"));
  if (warnings.length || lostAnything) {
    root.append(el("div", { class: "warning-box", role: "alert" },
      el("strong", null, "This trace is incomplete or suspect."),
      el("ul", null, warnings.map((w) => el("li", null, w)),
        lostAnything && !warnings.length ? el("li", null, "Some of the recording was lost: see below.") : null)));
  } else {
    root.append(el("p", { class: "ok-box" }, "Nothing was lost: the trace is complete."));
  }
  root.append(kv([
    ["name", info.name || "–"],
    ["duration", fmtDur(info.duration_ns)],
    ["events", fmtCount(info.events)],
  ]));
  root.append(el("h2", null, "Metadata"));
  const meta = info.metadata || {};
  root.append(kv(Object.entries(meta).map(([k, v]) => [k, show(v)])));
  root.append(el("h2", null, "Losses"));
  root.append(kv([
    ["events lost by the recorder", fmtCount(lost.events ?? 0)],
    ["chunks skipped (unreadable)", fmtCount(lost.chunks_skipped ?? 0)],
    ["chunks missing", fmtCount(lost.chunks_missing ?? 0)],
    ["truncated bytes at the end", fmtCount(lost.truncated_bytes ?? 0)],
    ["recording hook errors (their events are missing)", fmtCount(lost.hook_errors ?? 0)],
    ["ended cleanly", lost.clean_end === false ? "no: the recording stopped abruptly" : "yes"],
  ]));
  return {};
}
