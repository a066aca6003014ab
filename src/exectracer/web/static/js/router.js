// Hash routes: "#/profile/net?start=1" <-> {name: "profile", rest: ["net"], params}.

// "#/profile/net?start=1" -> {name: "profile", rest: ["net"], params: URLSearchParams}; unknown names -> `fallback`
export function parseHash(hash, names, fallback = "timeline") {
  const h = (hash || "").replace(/^#\/?/, "");
  const q = h.indexOf("?");
  const path = q < 0 ? h : h.slice(0, q);
  const params = new URLSearchParams(q < 0 ? "" : h.slice(q + 1));
  const parts = path.split("/").filter(Boolean);
  const name = parts[0] && names.includes(parts[0]) ? parts[0] : fallback;
  return { name, rest: parts.slice(1).map(decodeURIComponent), params };
}

// ("timeline", {start: 1, g: null}) -> "#/timeline?start=1" (null, undefined and "" left out)
export function href(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return `#/${path}${s ? "?" + s : ""}`;
}

// A link to the timeline around [start, end] (with a margin), optionally opening goroutine g's span at t.
export function timelineHref(start, end, { g, sel, margin = 0.25 } = {}) {
  const span = Math.max(1000, end - start);
  return href("timeline", {
    start: Math.max(0, Math.floor(start - span * margin)),
    end: Math.ceil(end + span * margin),
    g,
    sel,
  });
}
