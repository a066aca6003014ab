// Formatting and parsing of times (integer nanoseconds), sizes and counts.

const UNITS = [
  [1e9, "s"],
  [1e6, "ms"],
  [1e3, "µs"],
  [1, "ns"],
];

// A duration with a unit and about three significant digits: "12.3 ms".
export function fmtDur(ns) {
  if (ns === null || ns === undefined || Number.isNaN(ns)) return "–";
  const a = Math.abs(ns);
  if (a === 0) return "0";
  for (const [scale, unit] of UNITS) {
    if (a >= scale || scale === 1) {
      const v = ns / scale;
      const digits = Math.abs(v) >= 100 || scale === 1 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
      return `${v.toFixed(digits)} ${unit}`;
    }
  }
  return `${ns} ns`;
}

// A time since the trace's start, precise to the microsecond: "1.234567 s", "12.345 ms".
export function fmtTime(ns) {
  if (ns === null || ns === undefined) return "–";
  const a = Math.abs(ns);
  if (a >= 1e9) return `${(ns / 1e9).toFixed(6)} s`;
  if (a >= 1e6) return `${(ns / 1e6).toFixed(3)} ms`;
  if (a >= 1e3) return `${(ns / 1e3).toFixed(3)} µs`;
  return `${Math.round(ns)} ns`;
}

// A ruler label for time `ns` on ticks `step` ns apart, in the unit that suits `extent` (the largest
// time shown), with just enough decimals to tell ticks apart: "1.25 s", "350 µs".
export function fmtTick(ns, step, extent = ns) {
  const big = Math.max(Math.abs(extent), step);
  let scale = 1, unit = "ns";
  for (const [s, u] of UNITS) {
    if (big >= s || s === 1) { scale = s; unit = u; break; }
  }
  const decimals = Math.min(9, Math.max(0, Math.ceil(-Math.log10(step / scale) - 1e-9)));
  return `${(ns / scale).toFixed(decimals)} ${unit}`;
}

// A "nice" step (1, 2 or 5 times a power of ten) of at least `raw`.
export function niceStep(raw) {
  if (!(raw > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) {
    if (m * p >= raw) return m * p;
  }
  return 10 * p;
}

// "1.5s", "250ms", "40us", "40µs", "100ns", "2m" or a bare number of seconds; null when unreadable.
export function parseTime(text) {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(ns|us|µs|μs|ms|s|m|min)?\s*$/i.exec(String(text));
  if (!m) return null;
  const v = parseFloat(m[1]);
  const unit = (m[2] || "s").toLowerCase();
  const scale = { ns: 1, us: 1e3, "µs": 1e3, "μs": 1e3, ms: 1e6, s: 1e9, m: 60e9, min: 60e9 }[unit];
  return Math.round(v * scale);
}

export function fmtCount(n) {
  if (n === null || n === undefined) return "–";
  return Number(n).toLocaleString("en-US");
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

export function fmtPct(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  return `${(100 * x).toFixed(x < 0.001 && x > 0 ? 3 : 1)} %`;
}

// A value of a profile in its unit: nanoseconds read as a duration, else a count.
export function fmtValue(v, unit) {
  if (unit === "nanoseconds") return fmtDur(v);
  if (unit === "bytes") return fmtBytes(v);
  return fmtCount(v);
}
