// An interactive flame graph on a canvas: the outermost frame on top, width by value.
// Click a frame to zoom into it (click the root or a frame above to zoom out); hover for details;
// highlight(text) marks the frames whose function or file holds the text.

import { UI, hatched, shade } from "./colors.js";
import { el } from "./dom.js";
import { fmtPct, fmtValue } from "./format.js";

const ROW = 18;
const FONT = "11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";

export class FlameGraph {
  constructor(container, tree, { color, unit, onSelect } = {}) {
    this.tree = tree;
    this.color = color || "#888";
    this.unit = unit;
    this.onSelect = onSelect || (() => {});
    this.focus = tree;
    this.query = "";
    this.depth = depthOf(tree);
    this.root = el("div", { class: "flamegraph" });
    this.canvas = el("canvas");
    this.tooltip = el("div", { class: "tooltip", hidden: true });
    this.root.append(this.canvas, this.tooltip);
    container.appendChild(this.root);
    this.ctx = this.canvas.getContext("2d");
    this.boxes = [];
    markParents(tree, null);
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => { this.tooltip.hidden = true; });
    this.canvas.addEventListener("click", (e) => this.click(e));
    this.resizeObserver = new ResizeObserver(() => this.draw());
    this.resizeObserver.observe(this.root);
  }

  destroy() {
    this.resizeObserver.disconnect();
  }

  highlight(query) {
    this.query = (query || "").toLowerCase();
    this.draw();
  }

  zoom(node) {
    this.focus = node || this.tree;
    this.draw();
    this.onSelect(this.focus);
  }

  draw() {
    const W = Math.max(200, this.root.clientWidth);
    const H = Math.max(ROW * 3, (this.depth + 1) * ROW + 4);
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(W * dpr);
    this.canvas.height = Math.round(H * dpr);
    this.canvas.style.width = `${W}px`;
    this.canvas.style.height = `${H}px`;
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    ctx.font = FONT;
    ctx.textBaseline = "middle";
    this.W = W;
    this.boxes = [];
    // ancestors of the focus, full width
    const chain = [];
    for (let n = this.focus; n; n = n._parent) chain.unshift(n);
    chain.forEach((n, d) => this.box(n, 0, W, d, n !== this.focus));
    const total = this.focus.value || 1;
    this.drawChildren(this.focus, 0, W, chain.length, total);
  }

  drawChildren(node, x, w, depth, total) {
    let cx = x;
    for (const c of node.children || []) {
      const cw = (c.value / total) * this.W;
      if (cw >= 0.5) {
        this.box(c, cx, cw, depth, false);
        this.drawChildren(c, cx, cw, depth + 1, total);
      }
      cx += cw;
    }
  }

  box(node, x, w, depth, ancestor) {
    const ctx = this.ctx;
    const y = depth * ROW;
    const name = node.name || "?";
    const match = this.query && (name.toLowerCase().includes(this.query) || String(node.file || "").toLowerCase().includes(this.query));
    const fill = node.estimated ? hatched(ctx, this.color) : shade(this.color, name); // an estimate: hatched
    ctx.fillStyle = match ? "#e040fb" : ancestor ? "#d7dbe0" : depth === 0 ? "#c9ced6" : fill;
    ctx.fillRect(x, y, Math.max(0.5, w - 1), ROW - 1);
    if (w > 30) {
      ctx.save();
      ctx.beginPath();
      ctx.rect(x, y, w - 1, ROW - 1);
      ctx.clip();
      ctx.fillStyle = UI.text;
      ctx.fillText(depth === 0 ? `all · ${fmtValue(node.value, this.unit)}` : name, x + 3, y + ROW / 2);
      ctx.restore();
    }
    this.boxes.push({ node, x, w, y });
  }

  at(e) {
    const r = this.canvas.getBoundingClientRect();
    const x = e.clientX - r.left, y = e.clientY - r.top;
    for (let i = this.boxes.length - 1; i >= 0; i--) {
      const b = this.boxes[i];
      if (x >= b.x && x < b.x + b.w && y >= b.y && y < b.y + ROW) return { b, x, y };
    }
    return null;
  }

  hover(e) {
    const hit = this.at(e);
    if (!hit) {
      this.tooltip.hidden = true;
      return;
    }
    const n = hit.b.node;
    const lines = [
      el("div", { class: "tt-title" }, n.name || "?"),
      n.estimated ? el("div", { class: "estimated" }, "estimated from samples: the thread slept in the OS, in a call no hook covers") : null,
      n.file ? el("div", { class: "file" }, `${n.file}:${n.line}`) : null,
      el("div", null, `${fmtValue(n.value, this.unit)} (${fmtPct(n.value / (this.tree.value || 1))} of all)`),
      n.self ? el("div", null, `self ${fmtValue(n.self, this.unit)}`) : null,
    ].filter(Boolean);
    this.tooltip.replaceChildren(...lines);
    this.tooltip.hidden = false;
    this.tooltip.style.left = `${Math.min(hit.x + 12, this.W - 320)}px`;
    this.tooltip.style.top = `${hit.y + 20}px`;
  }

  click(e) {
    const hit = this.at(e);
    if (!hit) return;
    this.zoom(hit.b.node === this.focus ? this.focus._parent || this.tree : hit.b.node);
  }
}

function depthOf(n) {
  let d = 0;
  for (const c of n.children || []) d = Math.max(d, depthOf(c) + 1);
  return d;
}

function markParents(n, parent) {
  Object.defineProperty(n, "_parent", { value: parent, enumerable: false, writable: true });
  for (const c of n.children || []) markParents(c, n);
}
