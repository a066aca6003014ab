// The lanes of the timeline: which rows to show, in which order, for an arrangement of /api/lanes.
//
// Arrangements, as in Go's trace viewer:
//   "threads":    one lane per event loop (which task or callback runs, idle time) and one per thread (its states);
//   "goroutines": one lane per task or thread, grouped by start function, groups collapsible.
// A focus (one goroutine and those it woke or was woken by) replaces either arrangement.
// A trace of several processes puts each arrangement under one collapsible header per process (pid, command line,
// host where they differ), with that process's GC and heap lanes first; a trace of one process has no header.

export const ROW_H = 16;      // a lane
export const HEADER_H = 20;   // a group or section header
export const PROCESS_H = 22;  // a process header
export const GC_ROW_H = 14;   // a process's GC lane
export const HEAP_ROW_H = 40; // a process's heap lane

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
    this.processes = meta.processes || [];
    this.several = this.processes.length > 1;
    this.hosts = new Set(this.processes.map((p) => p.host)).size;
    this.idsOf = this.processes.map(() => []); // each process's goroutine ids
    for (let i = 0; i < this.ids.length; i++) {
      const list = this.idsOf[g.proc ? g.proc[i] : 0];
      if (list) list.push(this.ids[i]);
    }
  }

  // The process (an entry of /api/lanes' processes) of goroutine id, or null.
  processOf(id) {
    const i = this.index.get(id);
    const g = this.meta.goroutines;
    if (i === undefined || !g.proc) return null;
    return this.processes[g.proc[i]] || null;
  }

  // "pid 123 · app.py --flag" (and " · on host" when the trace holds several hosts)
  processLabel(p) {
    const argv = (p.argv || []).join(" ");
    const host = this.hosts > 1 && p.host ? ` · on ${p.host}` : "";
    return `pid ${p.pid ?? "?"}${argv ? ` · ${argv}` : ""}${host}`;
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
      pid: g.pid ? g.pid[i] : null,
      proc: g.proc ? g.proc[i] : 0,
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

  // Goroutines whose name or start function holds `query` (case-insensitive), or of process "pid N"; at most `limit`.
  search(query, limit = 50) {
    const q = query.trim().toLowerCase();
    if (!q) return [];
    const g = this.meta.goroutines;
    const fnMatch = this.functions.map((f) => String(f).toLowerCase().includes(q));
    const pid = /^pid\s*(\d+)$/.exec(q); // "pid 123": that process's goroutines
    const out = [];
    for (let i = 0; i < this.ids.length && out.length < limit; i++) {
      const f = g.function ? g.function[i] : -1;
      if (pid ? g.pid && String(g.pid[i]) === pid[1]
        : (f >= 0 && fnMatch[f]) || String(g.name[i]).toLowerCase().includes(q) || `g${this.ids[i]}` === q) {
        out.push(this.goroutine(this.ids[i]));
      }
    }
    return out;
  }

  // The rows to draw: [{type: "process"|"section"|"group"|"loop"|"g"|"gc"|"heap", key, id, label, height, group,
  // proc}], and their offsets. `closed`: the indices of the processes whose header is collapsed.
  rows(arrangement, collapsed, focus, closed = new Set()) {
    const rows = [];
    const section = (label, proc) =>
      rows.push({ type: "section", key: `section:${proc ?? ""}:${label}`, label, height: HEADER_H });
    const focusLabel = (id) => {
      const p = this.several ? this.processOf(id) : null;
      return p ? `${this.label(id)} · pid ${p.pid}` : this.label(id);
    };
    const gRow = (id, indent = 0, label = this.label(id)) => rows.push({ type: "g", key: `g:${id}`, id, label, height: ROW_H, indent });
    if (focus) {
      section("Focus");
      gRow(focus.g, 0, focusLabel(focus.g));
      const by = (focus.woken_by || []).filter((id) => id !== focus.g && this.has(id));
      const woke = (focus.woke || []).filter((id) => id !== focus.g && this.has(id));
      section(`Woken by (${by.length})`);
      for (const id of by) gRow(id, 0, focusLabel(id));
      section(`Woke (${woke.length})`);
      for (const id of woke) gRow(id, 0, focusLabel(id));
    } else if (this.several) {
      const procOf = (id) => { const p = this.processOf(id); return p ? p.index : 0; };
      for (const p of this.processes) {
        const open = !closed.has(p.index);
        rows.push({ type: "process", key: `process:${p.index}`, proc: p.index, open, count: this.idsOf[p.index].length,
                    label: this.processLabel(p), height: PROCESS_H });
        if (!open) continue;
        rows.push({ type: "gc", key: `gc:${p.index}`, proc: p.index, label: "GC", height: GC_ROW_H });
        if (p.heap) rows.push({ type: "heap", key: `heap:${p.index}`, proc: p.index, label: "Heap", height: HEAP_ROW_H });
        this.arrange(rows, arrangement, collapsed, section, gRow, (proc) => proc === p.index, procOf, p.index);
      }
    } else {
      this.arrange(rows, arrangement, collapsed, section, gRow, () => true, () => 0, null);
    }
    const offsets = new Float64Array(rows.length + 1);
    for (let i = 0; i < rows.length; i++) offsets[i + 1] = offsets[i] + rows[i].height;
    return { rows, offsets, height: offsets[rows.length] };
  }

  // One arrangement's rows of the goroutines, loops and groups whose process `mine` accepts.
  arrange(rows, arrangement, collapsed, section, gRow, mine, procOf, proc) {
    if (arrangement === "goroutines") {
      for (const grp of this.groups) {
        if (!mine(grp.proc ?? 0)) continue;
        const open = !collapsed.has(grp.index);
        rows.push({ type: "group", key: `group:${grp.index}`, group: grp.index, open, count: grp.count,
                    label: this.groupLabel(grp), height: HEADER_H });
        if (open) for (const id of grp.ids) gRow(id, 1);
      }
      return;
    }
    const loops = this.loops.filter((l) => mine(l.proc ?? 0));
    if (loops.length) {
      section(`Event loops (${loops.length})`, proc);
      for (const l of loops) rows.push({ type: "loop", key: `loop:${l.id}`, id: l.id, label: this.loopLabel(l), height: ROW_H });
    }
    const threads = this.threads.filter((id) => mine(procOf(id)));
    section(`Threads (${threads.length})`, proc);
    for (const id of threads) gRow(id);
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
