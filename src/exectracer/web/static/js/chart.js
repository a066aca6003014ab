// Small SVG charts (no innerHTML: text goes in as text nodes).

const NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs, ...children) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k.startsWith("on") && typeof v === "function") n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    n.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return n;
}

// Ticks at powers of ten between lo and hi (both > 0).
export function logTicks(lo, hi) {
  const out = [];
  for (let p = Math.floor(Math.log10(lo)); p <= Math.ceil(Math.log10(hi)); p++) {
    const v = Math.pow(10, p);
    if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
  }
  return out;
}
