// A sortable table: click a header to sort by it, again to reverse. Cells are built from text or DOM nodes.

import { el, clear } from "./dom.js";

// columns: [{key, label, value: row => sortable, render: row => Node|string (default value), numeric, title}]
// options: {sort: key, desc: bool, limit: rows shown, rowAttrs: row => attrs, className}
export function sortableTable(columns, rows, options = {}) {
  columns = columns.filter(Boolean); // a column left out is null
  let sortKey = options.sort || columns[0].key;
  let desc = options.desc !== undefined ? options.desc : true;
  const limit = options.limit || 2000;
  const table = el("table", { class: `data ${options.className || ""}` });
  const thead = el("thead");
  const tbody = el("tbody");
  const foot = el("caption", { class: "note" });
  table.append(foot, thead, tbody);

  function render() {
    const col = columns.find((c) => c.key === sortKey) || columns[0];
    const value = col.value || ((r) => r[col.key]);
    const sorted = rows.slice().sort((a, b) => {
      const va = value(a), vb = value(b);
      let c;
      if (typeof va === "number" && typeof vb === "number") c = va - vb;
      else c = String(va ?? "").localeCompare(String(vb ?? ""));
      return desc ? -c : c;
    });
    clear(thead).append(el("tr", null, columns.map((c) => el("th", {
      class: `${c.numeric ? "num" : ""} sortable ${c.key === sortKey ? (desc ? "desc" : "asc") : ""}`,
      title: c.title || `sort by ${c.label}`,
      "aria-sort": c.key === sortKey ? (desc ? "descending" : "ascending") : null,
      dataset: { key: c.key },
      onclick: () => {
        if (sortKey === c.key) desc = !desc;
        else { sortKey = c.key; desc = !!c.numeric; }
        render();
      },
    }, c.label))));
    clear(tbody);
    const shown = sorted.slice(0, limit);
    for (const r of shown) {
      tbody.append(el("tr", options.rowAttrs ? options.rowAttrs(r) : null, columns.map((c) => {
        const v = c.render ? c.render(r) : (c.value ? c.value(r) : r[c.key]);
        return el("td", { class: c.numeric ? "num" : null }, v);
      })));
    }
    foot.textContent = sorted.length > limit ? `showing ${limit.toLocaleString("en-US")} of ${sorted.length.toLocaleString("en-US")} rows` : "";
  }
  render();
  return table;
}
