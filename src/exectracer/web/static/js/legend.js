// The legend: what each colour means. One for the timeline, the state part for the tables.

import { GC_COLORS, HEAP_COLORS, LOOP_COLORS, LOOP_LABELS, STATE_LABELS, stateBackground } from "./colors.js";
import { el, swatch } from "./dom.js";

function item(color, label) {
  return el("span", { class: "legend-item" }, swatch(color), label);
}

export function stateLegend(states) {
  return el("div", { class: "legend" }, states.map((s) => item(stateBackground(s), STATE_LABELS[s] || s)));
}

export function timelineLegend(states, heap, loops = true) {
  return el("div", { class: "legend", "aria-label": "legend" },
    el("span", { class: "legend-group" }, el("b", null, "Goroutines & threads"), states.map((s) => item(stateBackground(s), STATE_LABELS[s] || s))),
    loops ? el("span", { class: "legend-group" }, el("b", null, "Event loops"), LOOP_LABELS.map((l, i) => item(LOOP_COLORS[i], l))) : null,
    el("span", { class: "legend-group" }, el("b", null, "GC"), GC_COLORS.map((c, i) => item(c, `gen ${i}`))),
    heap ? el("span", { class: "legend-group" }, el("b", null, "Heap"), item(HEAP_COLORS.blocks, "allocated blocks"), item(HEAP_COLORS.rss, "RSS")) : null,
  );
}
