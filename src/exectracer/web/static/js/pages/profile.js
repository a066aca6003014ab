// #/profile/TYPE?start=NS&end=NS&group=F&region=R: a profile as a flame graph and a top table, with its pprof file.

import { api } from "../api.js";
import { PROFILE_COLORS, hatchedBackground } from "../colors.js";
import { el, swatch } from "../dom.js";
import { fmtCount, fmtPct, fmtTime, fmtValue } from "../format.js";
import { FlameGraph } from "../flamegraph.js";
import { href, timelineHref } from "../router.js";
import { sortableTable } from "../table.js";

export const TYPES = {
  net: "network waits",
  sync: "sync waits (locks, events, queues, other tasks)",
  syscall: "syscall waits (subprocesses, executors, OS calls)",
  sleep: "sleeps",
  other: "other waits (the trace cannot tell what for; waits no hook saw, estimated from samples, marked so)",
  sched: "scheduler latency (runnable time)",
  gil: "estimated GIL waits (not on a CPU: not in cpu)",
  cpu: "CPU time the OS counted, by sampled stack",
};

// The unit of a profile's value (its last sample type), e.g. "nanoseconds".
function unitOf(sampleTypes) {
  const last = (sampleTypes || [])[sampleTypes.length - 1];
  if (!last) return "";
  if (Array.isArray(last)) return String(last[last.length - 1]);
  if (typeof last === "object") return String(last.unit || "");
  const s = String(last);
  return s.includes("/") ? s.split("/").pop() : s;
}

export async function mount(root, route) {
  const type = TYPES[route.rest[0]] ? route.rest[0] : "net";
  const p = route.params;
  const params = {
    type,
    start: p.get("start") || undefined,
    end: p.get("end") || undefined,
    group: p.has("group") ? p.get("group") : undefined,
    region: p.get("region") || undefined,
  };
  const filters = { start: params.start, end: params.end, group: params.group, region: params.region };

  root.append(el("nav", { class: "tabs" }, Object.keys(TYPES).map((t) =>
    el("a", { href: href(`profile/${t}`, filters), class: t === type ? "on" : "", style: { borderBottomColor: PROFILE_COLORS[t] } }, t))));
  root.append(el("h1", null, `Profile: ${TYPES[type]}`));

  const scope = el("p", { class: "scope" });
  const parts = [];
  if (params.start || params.end) {
    const s = Number(params.start || 0), e = params.end !== undefined ? Number(params.end) : null;
    parts.push(["time ", `${fmtTime(s)} – ${e === null ? "end" : fmtTime(e)}`, " (", el("a", { href: timelineHref(s, e === null ? s : e, { margin: 0 }) }, "timeline"), ")"]);
  }
  if (params.group !== undefined) parts.push(["group ", el("code", null, params.group || "(none)")]);
  if (params.region) parts.push(["region ", el("code", null, params.region)]);
  if (parts.length) {
    scope.append("Limited to ", parts.map((x, i) => [i ? "; " : "", x]), ". ", el("a", { href: href(`profile/${type}`) }, "whole trace"));
  } else {
    scope.append("The whole trace. Select a range on the timeline for the profile of that range.");
  }
  const download = el("a", { class: "button download", href: api.pprofURL(params), download: `${type}.pb.gz` }, "Download pprof");
  root.append(scope, el("p", null, download, " ", el("span", { class: "note" }, "for go tool pprof")));

  const prof = await api.profile(params);
  const unit = unitOf(prof.sample_types);
  const fmt = (v) => fmtValue(v, unit);
  root.append(el("p", { class: "totals-line" },
    `total ${fmt(prof.total)}`, prof.count !== undefined ? ` in ${fmtCount(prof.count)} samples` : "",
    prof.estimated ? el("span", { class: "estimated" }, `, of which ${fmt(prof.estimated)} estimated from samples (waits no hook saw)`) : ""));

  if (!prof.tree || !prof.tree.value) {
    root.append(el("p", { class: "empty" }, "Nothing in this profile."));
    return {};
  }
  const search = el("input", { type: "search", placeholder: "highlight function or file", class: "search", "aria-label": "highlight frames" });
  const crumbs = el("span", { class: "note crumbs" });
  root.append(el("h2", null, "Flame graph"), el("div", { class: "toolbar" }, search, crumbs, el("span", { class: "hint" }, "click a frame to zoom into it, click it again to zoom out")));
  root.append(el("div", { class: "legend" },
    el("span", { class: "legend-item" }, swatch(PROFILE_COLORS[type]), `frames: shades of the ${type} colour (as on the timeline); width: share of the total; outermost frame on top`),
    el("span", { class: "legend-item" }, swatch("#e040fb"), "highlighted"),
    prof.estimated ? el("span", { class: "legend-item" }, swatch(hatchedBackground(PROFILE_COLORS[type])),
      "estimated from samples: a wait in a call no hook covers, seen by the OS's thread states") : null));
  const holder = el("div", { class: "flame-holder" });
  root.append(holder);
  const flame = new FlameGraph(holder, prof.tree, {
    color: PROFILE_COLORS[type], unit,
    onSelect: (n) => { crumbs.textContent = n === prof.tree ? "" : `zoomed into ${n.name} (${fmt(n.value)})`; },
  });
  flame.draw();
  search.addEventListener("input", () => flame.highlight(search.value));

  root.append(el("h2", null, "Top"));
  const total = prof.total || 1;
  root.append(sortableTable([
    { key: "function", label: "function", render: (r) => el("a", { href: "#", class: r.estimated ? "fn estimated" : "fn", onclick: (e) => { e.preventDefault(); search.value = r.function; flame.highlight(r.function); holder.scrollIntoView({ block: "nearest" }); } }, r.function || "?") },
    { key: "file", label: "file:line", value: (r) => `${r.file}:${r.line}`, render: (r) => el("span", { class: "file" }, r.file ? `${r.file}:${r.line}` : "") },
    { key: "flat", label: "flat", numeric: true, render: (r) => fmt(r.flat) },
    { key: "flatp", label: "flat %", numeric: true, value: (r) => r.flat, render: (r) => fmtPct(r.flat / total) },
    { key: "cum", label: "cum", numeric: true, render: (r) => fmt(r.cum) },
    { key: "cump", label: "cum %", numeric: true, value: (r) => r.cum, render: (r) => fmtPct(r.cum / total) },
  ], prof.top || [], { sort: "flat", className: "top" }));
  return { unmount: () => flame.destroy(), flame };
}

