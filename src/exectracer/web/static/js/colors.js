// The one palette of the viewer: every page takes its colours from here.

export const STATE_COLORS = {
  running: "#2e9e44",   // green
  runnable: "#e0a526",  // amber
  network: "#3b7dd8",   // blue
  sync: "#d9487d",      // red/pink
  sleep: "#9a9a9a",     // grey
  syscall: "#8e5cc7",   // purple
  other: "#8d6e63",     // brown
  other_estimated: "#8d6e63", // brown, hatched (stateBackground, stateFill): estimated from samples
  gc: "#f07c1a",        // orange (overlaps running/runnable)
};

export const STATE_LABELS = {
  running: "running",
  runnable: "runnable (ready queue, GIL)",
  network: "blocked: network",
  sync: "blocked: sync",
  sleep: "blocked: sleep",
  syscall: "blocked: syscall",
  other: "blocked: other",
  other_estimated: "blocked: other (estimated from samples)",
  gc: "garbage collection",
};

// GC collections by generation: darker is older.
export const GC_COLORS = ["#f9b46b", "#f07c1a", "#b85509"];

// What an event loop does: a task step, a plain callback, idle in its selector.
export const LOOP_COLORS = ["#2e9e44", "#1f8a8a", "#e4e8ee"];
export const LOOP_LABELS = ["task step", "callback", "idle in selector"];

export const HEAP_COLORS = { blocks: "#5c6bc0", rss: "#00897b" };

// Profile types take the colour of the state they measure.
export const PROFILE_COLORS = {
  net: STATE_COLORS.network,
  sync: STATE_COLORS.sync,
  syscall: STATE_COLORS.syscall,
  sleep: STATE_COLORS.sleep,
  other: STATE_COLORS.other,
  sched: STATE_COLORS.runnable,
  gil: "#c98b0a",
  cpu: STATE_COLORS.running,
};

export const UI = {
  selection: "rgba(40, 90, 200, 0.15)",
  selectionEdge: "rgba(40, 90, 200, 0.8)",
  highlight: "#111",
  arrow: "#d32f2f",
  grid: "#e6e8eb",
  text: "#1d2329",
  mutedText: "#5f6b76",
  laneAlt: "#f7f8fa",
  bar: "#5f7d95", // histograms: a neutral colour, not a state's
  groupHeader: "#eef1f5",
  processHeader: "#dfe6f0",
};

export function stateColor(name) {
  return STATE_COLORS[name] || STATE_COLORS.other;
}

// States the trace estimates rather than records are drawn hatched: their colour in stripes on white.
export const ESTIMATED_STATES = new Set(["other_estimated"]);

// A CSS background for a state: its colour, or hatched stripes of it for an estimated state.
export function stateBackground(name) {
  const c = stateColor(name);
  return ESTIMATED_STATES.has(name) ? hatchedBackground(c) : c;
}

// A CSS background of stripes of `color` on white: what the viewer draws an estimate with.
export function hatchedBackground(color) {
  return `repeating-linear-gradient(135deg, ${color} 0 3px, #fff 3px 5px)`;
}

// A canvas fill for a state: its colour, or a pattern of hatched stripes for an estimated state.
export function stateFill(ctx, name) {
  const c = stateColor(name);
  return ESTIMATED_STATES.has(name) ? hatched(ctx, c) : c;
}

// A canvas pattern of stripes of `color` on white: what the viewer draws an estimate with.
const patterns = new Map();
export function hatched(ctx, color) {
  let p = patterns.get(color);
  if (!p) {
    const tile = document.createElement("canvas");
    tile.width = tile.height = 6;
    const t = tile.getContext("2d");
    t.fillStyle = "#fff";
    t.fillRect(0, 0, 6, 6);
    t.strokeStyle = color;
    t.lineWidth = 2.5;
    t.beginPath();
    for (const k of [-6, 0, 6]) { t.moveTo(k, 6); t.lineTo(k + 6, 0); }
    t.stroke();
    p = ctx.createPattern(tile, "repeat");
    patterns.set(color, p);
  }
  return p;
}

function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

// Black or white, whichever reads better on the colour.
export function textOn(hex) {
  const [r, g, b] = hexToRgb(hex);
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#111" : "#fff";
}

// A shade of `hex` picked by a string's hash, for flame graph frames: the hue stays, the lightness varies.
export function shade(hex, key) {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  const t = ((h >>> 0) % 1000) / 1000; // 0..1
  const [r, g, b] = hexToRgb(hex);
  const mix = 0.15 + 0.45 * t; // towards white
  const c = (v) => Math.round(v + (255 - v) * mix);
  return `rgb(${c(r)}, ${c(g)}, ${c(b)})`;
}
