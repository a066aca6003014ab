// The viewer server's HTTP API (docs/viewer-api.md). Every answer may hold strings from the traced program.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// "api/spans" + {lanes: "g:1", start: 0} -> "api/spans?lanes=g%3A1&start=0" (null and undefined left out)
export function url(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null) continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export async function getJSON(path, params, options) {
  const res = await fetch(url(path, params), options);
  let body;
  try {
    body = await res.json();
  } catch (e) {
    throw new ApiError(res.status, `${path}: answer is not JSON (HTTP ${res.status})`);
  }
  if (!res.ok) throw new ApiError(res.status, (body && body.error) || `HTTP ${res.status}`);
  return body;
}

const cache = new Map();

// Answers that do not change while the page is open are fetched once.
function once(key, fn) {
  if (!cache.has(key)) {
    const p = fn();
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return cache.get(key);
}

export const api = {
  info: () => once("info", () => getJSON("api/info")),
  lanes: () => once("lanes", () => getJSON("api/lanes")),
  summary: () => once("summary", () => getJSON("api/summary")),
  mmu: (points) => once(`mmu:${points || ""}`, () => getJSON("api/mmu", { points })),
  latency: (what) => once(`latency:${what}`, () => getJSON("api/latency", { what })),
  spans: (lanes, start, end, width, options) =>
    getJSON("api/spans", { lanes: lanes.join(","), start: Math.floor(start), end: Math.ceil(end), width }, options),
  span: (g, t) => getJSON("api/span", { g, t: Math.round(t) }),
  loopSpan: (loop, t) => getJSON("api/span", { loop, t: Math.round(t) }),
  related: (g) => once(`related:${g}`, () => getJSON("api/related", { g })),
  range: (start, end) => getJSON("api/range", { start: Math.floor(start), end: Math.ceil(end) }),
  goroutines: (fn, kind, role) => getJSON("api/goroutines", { function: fn === null ? "" : fn, kind, ...(role ? { role } : {}) }),
  profile: (params) => getJSON("api/profile", params),
  pprofURL: (params) => url("api/pprof", params),
  logs: (q, offset, limit) => getJSON("api/logs", { q: q || undefined, offset, limit }),
};
