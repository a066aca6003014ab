// The single-page app: hash routes (#/timeline?start=..&end=..&g=.., #/goroutines, #/profile/net?.., #/mmu,
// #/latency, #/logs, #/query, #/info), the header and the warning banner. A Parquet dataset's viewer has the Query
// page only.

import { api } from "./api.js";
import { el, clear, errorBox } from "./dom.js";
import { fmtCount } from "./format.js";
import { parseHash } from "./router.js";

const PAGES = {
  timeline: () => import("./pages/timeline-page.js"),
  goroutines: () => import("./pages/goroutines.js"),
  profile: () => import("./pages/profile.js"),
  mmu: () => import("./pages/mmu.js"),
  latency: () => import("./pages/latency.js"),
  logs: () => import("./pages/logs.js"),
  query: () => import("./pages/query.js"),
  info: () => import("./pages/info.js"),
};

const state = { page: null, name: null, token: 0, only: null }; // only: the pages a dataset's viewer has
window.exectracer = { ready: false, page: null, route: null };

async function route() {
  const r = parseHash(location.hash, Object.keys(PAGES));
  if (state.only && !state.only.includes(r.name)) {
    location.replace(`#/${state.only[0]}`); // a hash change: routes again
    return;
  }
  window.exectracer.route = r.name;
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.route === r.name);
  }
  if (state.page && state.name === r.name && state.page.update) {
    state.page.update(r);
    return;
  }
  const token = ++state.token;
  if (state.page && state.page.unmount) state.page.unmount();
  state.page = null;
  window.exectracer.page = null;
  window.exectracer.ready = false;
  const root = document.getElementById("page");
  clear(root);
  root.className = `page-${r.name}`;
  try {
    const mod = await PAGES[r.name]();
    if (token !== state.token) return;
    const page = await mod.mount(root, r);
    if (token !== state.token) {
      if (page && page.unmount) page.unmount();
      return;
    }
    state.page = page;
    state.name = r.name;
    window.exectracer.page = page;
    window.exectracer.ready = true;
  } catch (err) {
    if (token !== state.token) return;
    clear(root).appendChild(errorBox(err));
    window.exectracer.ready = true;
    window.exectracer.error = String(err && err.message ? err.message : err);
  }
}

async function header() {
  try {
    const info = await api.info();
    const name = document.getElementById("trace-name");
    name.textContent = info.name || "";
    name.title = info.name || "";
    document.title = `${info.name || "trace"} – exectracer`;
    if (info.dataset) datasetOnly();
    const lost = info.lost || {};
    const problems = [...(info.warnings || [])];
    if (!problems.length && lost.events) problems.push(`${fmtCount(lost.events)} events were lost while recording.`);
    if (problems.length) {
      const banner = document.getElementById("banner");
      clear(banner).append(
        el("strong", null, "Warning: "),
        problems[0],
        problems.length > 1 ? ` (and ${problems.length - 1} more)` : "",
        " ",
        el("a", { href: "#/info" }, "details"),
      );
      banner.hidden = false;
    }
  } catch (err) {
    const banner = document.getElementById("banner");
    clear(banner).append(errorBox(err));
    banner.hidden = false;
  }
}

// A Parquet dataset has tables, not a trace: its viewer is the Query page alone.
function datasetOnly() {
  state.only = ["query"];
  for (const a of document.querySelectorAll("#nav a")) a.hidden = !state.only.includes(a.dataset.route);
  document.querySelector("#top .brand").setAttribute("href", "#/query");
}

window.addEventListener("hashchange", route);
header().then(route);
