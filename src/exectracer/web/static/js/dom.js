// Building DOM nodes without innerHTML: every string becomes a text node, so trace strings stay text.

// el("a", {href: "#/x", class: "c", onclick: fn}, "text", childNode, [more])
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
      else if (k === "class") node.className = v;
      else if (k === "style" && typeof v === "object") Object.assign(node.style, v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else if (c instanceof Node) node.appendChild(c);
    else node.appendChild(document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// A coloured square, for legends and tables.
export function swatch(color, title) {
  return el("span", { class: "swatch", style: { background: color }, title });
}

export function errorBox(err) {
  return el("div", { class: "error-box", role: "alert" }, `Could not load: ${err && err.message ? err.message : err}`);
}

export function loading(text = "Loading…") {
  return el("div", { class: "loading" }, text);
}
