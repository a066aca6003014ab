// The lanes of the timeline: which rows to show, in which order, for an arrangement of /api/lanes.
//
// Arrangements, as in Go's trace viewer:
//   "threads":    one lane per event loop (which task or callback runs, idle time) and one per thread (its states);
//   "goroutines": one lane per task or thread, grouped by start function, groups collapsible.
// A focus (one goroutine and those it woke or was woken by) replaces either arrangement.

export const ROW_H = 16;      // a lane
export const HEADER_H = 20;   // a group or section header

export class LaneModel {
  constructor(meta) {
    this.meta = meta;
    const g = meta.goroutines || {};
    this.ids = g.id || [];
    this.index = new Map();
    for (let i = 0; i < this.ids.length; i++) this.index.set(this.ids[i], i);
    this.functions = meta.functions || [];
    this.groups = (meta.groups || []).map((grp, i) => ({ ...grp, index: i }));
    this.groupOf = new Map();
    for (const grp of this.groups) for (const id of grp.ids) this.groupOf.set(id, grp.index);
    this.loops = meta.loops || [];
    this.threads = meta.threads || [];
  }

  has(id) {
    return this.index.has(id);
  }

  // {id, kind, name, function, parent, created_ns, ended_ns} of a goroutine, or null
  goroutine(id) {
    const i = this.index.get(id);
    if (i === undefined) return null;
    const g = this.meta.goroutines;
    const f = g.function ? g.function[i] : -1;
    return {
      id,
      kind: g.kind ? g.kind[i] : "task",
      name: g.name ? g.name[i] : "",
      function: f >= 0 ? this.functions[f] : null,
      parent: g.parent ? g.parent[i] : -1,
      created_ns: g.created_ns ? g.created_ns[i] : null,
      ended_ns: g.ended_ns ? g.ended_ns[i] : null,
    };
  }

  label(id) {
    const g = this.goroutine(id);
    if (!g) return `g${id}`;
    return `${g.name || g.kind} · g${id}`;
  }

  groupLabel(grp) {
    const fn = grp.label || (grp.function >= 0 ? this.functions[grp.function] : `(no start function)`);
    return `${fn} · ${grp.kind}s`;
  }

  loop(id) {
    return this.loops.find((l) => l.id === id) || null;
  }

  loopLabel(l) {
    const thread = this.goroutine(l.thread_id);
    return `loop ${l.id} · ${l.class_name}${thread ? ` on ${thread.name}` : ""}`;
  }

  // Goroutines whose name or start function holds `query` (case-insensitive), at most `limit`.
  search(query, limit = 50) {
    const q = query.trim().toLowerCase();
    if (!q) return [];
    const g = this.meta.goroutines;
    const fnMatch = this.functions.map((f) => String(f).toLowerCase().includes(q));
    const out = [];
    for (let i = 0; i < this.ids.length && out.length < limit; i++) {
      const f = g.function ? g.function[i] : -1;
      if ((f >= 0 && fnMatch[f]) || String(g.name[i]).toLowerCase().includes(q) || `g${this.ids[i]}` === q) {
        out.push(this.goroutine(this.ids[i]));
      }
    }
    return out;
  }

  // The rows to draw: [{type: "section"|"group"|"loop"|"g", key, id, label, height, group}], and their offsets.
  rows(arrangement, collapsed, focus) {
    const rows = [];
    const section = (label) => rows.push({ type: "section", key: `section:${label}`, label, height: HEADER_H });
    const gRow = (id, indent = 0) => rows.push({ type: "g", key: `g:${id}`, id, label: this.label(id), height: ROW_H, indent });
    if (focus) {
      section("Focus");
      gRow(focus.g);
      const by = (focus.woken_by || []).filter((id) => id !== focus.g && this.has(id));
      const woke = (focus.woke || []).filter((id) => id !== focus.g && this.has(id));
      section(`Woken by (${by.length})`);
      for (const id of by) gRow(id);
      section(`Woke (${woke.length})`);
      for (const id of woke) gRow(id);
    } else if (arrangement === "goroutines") {
      for (const grp of this.groups) {
        const open = !collapsed.has(grp.index);
        rows.push({ type: "group", key: `group:${grp.index}`, group: grp.index, open, count: grp.count,
                    label: this.groupLabel(grp), height: HEADER_H });
        if (open) for (const id of grp.ids) gRow(id, 1);
      }
    } else {
      if (this.loops.length) {
        section(`Event loops (${this.loops.length})`);
        for (const l of this.loops) rows.push({ type: "loop", key: `loop:${l.id}`, id: l.id, label: this.loopLabel(l), height: ROW_H });
      }
      section(`Threads (${this.threads.length})`);
      for (const id of this.threads) gRow(id);
    }
    const offsets = new Float64Array(rows.length + 1);
    for (let i = 0; i < rows.length; i++) offsets[i + 1] = offsets[i] + rows[i].height;
    return { rows, offsets, height: offsets[rows.length] };
  }
}

// The index of the row that covers content offset y (offsets as rows() gives them).
export function rowAt(offsets, y) {
  let lo = 0, hi = offsets.length - 2;
  if (hi < 0 || y < 0 || y >= offsets[offsets.length - 1]) return -1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (offsets[mid] <= y) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
