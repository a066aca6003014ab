// #/goroutines: the groups table (same start function and kind), sortable.
// #/goroutines?function=F&kind=K: the goroutines of that group, each linked into the timeline.

import { api } from "../api.js";
import { el } from "../dom.js";
import { fmtCount, fmtDur, fmtTime } from "../format.js";
import { stateLegend } from "../legend.js";
import { href } from "../router.js";
import { sortableTable } from "../table.js";
import { ESTIMATED_STATES, STATE_LABELS, stateBackground } from "../colors.js";

const BLOCKED = ["network", "sync", "sleep", "syscall", "other", "other_estimated"];
const PROFILES = ["net", "sync", "syscall", "sleep", "other", "sched", "gil", "cpu"];

function total(t) {
  return (t.running || 0) + (t.runnable || 0) + BLOCKED.reduce((a, k) => a + ((t.blocked || {})[k] || 0), 0);
}

function part(t, s) {
  if (s === "running" || s === "runnable" || s === "gc") return t[s] || 0;
  return (t.blocked || {})[s] || 0;
}

// A bar of the shares of each state.
export function stateBar(t, states) {
  const sum = total(t);
  return el("div", { class: "state-bar", title: states.map((s) => `${s}: ${fmtDur(part(t, s))}`).join("\n") },
    sum > 0 ? states.filter((s) => part(t, s) > 0).map((s) => el("span", { style: { background: stateBackground(s), flexGrow: String(part(t, s)) } })) : null);
}

function timeColumns(states) {
  return [
    { key: "total", label: "total", numeric: true, value: (r) => total(r.time_ns), render: (r) => fmtDur(total(r.time_ns)) },
    { key: "bar", label: "breakdown", value: (r) => total(r.time_ns), render: (r) => stateBar(r.time_ns, states), numeric: true },
    ...states.map((s) => ({
      key: s, label: ESTIMATED_STATES.has(s) ? "other (est.)" : s, numeric: true, value: (r) => part(r.time_ns, s),
      render: (r) => ESTIMATED_STATES.has(s) && part(r.time_ns, s) ? el("span", { class: "estimated" }, fmtDur(part(r.time_ns, s))) : fmtDur(part(r.time_ns, s)),
      title: ESTIMATED_STATES.has(s) ? `${STATE_LABELS[s]}: waits in calls no hook covers; sort`
        : `time ${s === "running" || s === "runnable" ? s : "blocked on " + s}; sort`,
    })),
    { key: "gc", label: "gc", numeric: true, value: (r) => part(r.time_ns, "gc"), render: (r) => fmtDur(part(r.time_ns, "gc")),
      title: "running or runnable time during which a collection ran; sort" },
  ];
}

export async function mount(root, route) {
  const info = await api.info();
  const states = info.states || ["running", "runnable", ...BLOCKED];
  if (route.params.has("function") || route.params.has("kind")) return group(root, route.params, states);
  const summary = await api.summary();
  root.append(
    el("h1", null, "Goroutines"),
    el("p", { class: "note" }, "Threads and asyncio tasks grouped by start function and kind, the largest total first. Click a group for its goroutines."),
    stateLegend(states),
  );
  const groups = summary.groups || [];
  const several = (summary.processes || []).length > 1;
  root.append(sortableTable([
    { key: "function", label: "start function", value: (r) => r.label || r.start_function || "", render: (r) =>
      el("a", { href: href("goroutines", { function: r.start_function ?? "", kind: r.kind, role: r.role ?? null, label: r.start_function ? null : r.label }), class: "group-link" }, r.label || r.start_function || "(none)") },
    several ? { key: "pid", label: "pid", numeric: true, title: "its process; sort" } : null,
    { key: "kind", label: "kind" },
    { key: "count", label: "count", numeric: true, render: (r) => fmtCount(r.count) },
    ...timeColumns(states),
  ], groups, { sort: "total", className: "groups" }));
  return {};
}

async function group(root, params, states) {
  const fn = params.get("function") || "";
  const kind = params.get("kind") || "task";
  const role = params.get("role") || null;
  const rows = await api.goroutines(fn, kind, role);
  root.append(
    el("p", null, el("a", { href: href("goroutines") }, "← all groups")),
    el("h1", null, el("code", { class: "fn" }, fn || params.get("label") || "(no start function)"), ` · ${kind}s`),
    el("p", { class: "links" }, "Profiles of this group: ",
      PROFILES.map((t, i) => [i ? " · " : "", el("a", { href: href(`profile/${t}`, { group: fn || null }) }, t)])),
    stateLegend(states),
  );
  if (!rows.length) {
    root.append(el("p", { class: "empty" }, "No goroutine of this trace has that start function and kind."));
    return {};
  }
  root.append(sortableTable([
    { key: "id", label: "g", numeric: true, render: (r) => el("a", { href: href("timeline", { g: r.id }), title: "focus on it in the timeline" }, `g${r.id}`) },
    { key: "name", label: "name", render: (r) => el("span", { class: "gname" }, r.name || "") },
    new Set(rows.map((r) => r.pid)).size > 1 ? { key: "pid", label: "pid", numeric: true, title: "its process; sort" } : null,
    { key: "created_ns", label: "created", numeric: true, value: (r) => r.created_ns ?? -1, render: (r) => r.created_ns === null || r.created_ns === undefined ? "before" : fmtTime(r.created_ns) },
    { key: "ended_ns", label: "ended", numeric: true, value: (r) => r.ended_ns ?? Infinity, render: (r) => r.ended_ns === null || r.ended_ns === undefined ? "after" : fmtTime(r.ended_ns) },
    ...timeColumns(states),
  ], rows, { sort: "total", className: "goroutines", limit: 1000 }));
  return {};
}

