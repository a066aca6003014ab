"""Several processes in the viewer: what the recorder notes about waits on a child, the API's processes and
child-wait links, and the timeline in real headless Chromium (Debian's, driven by Playwright) on a real
``exectracer run`` of tests/programs/process_waits.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

import exectracer
from exectracer.format.events import Kind
from exectracer.web.api import NotFound, ViewerAPI

from support.process_traces import WALL, collecting_parent, process, runnable_child
from support.process_waits import Recorded, record
from support.viewer_browser import Viewer, launch, wait_settled, wait_until

CHILD_ARG = "<img src=x onerror=alert(7)>"  # tests/programs/process_waits.py's


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return record(tmp_path_factory.mktemp("process_waits"))


@pytest.fixture(scope="module")
def api(recorded: Recorded) -> ViewerAPI:
    return ViewerAPI(recorded.trace)


# -- the recorder ---------------------------------------------------------------------------------------------


@pytest.mark.recorder
@pytest.mark.parametrize("pure_python", [False, True], ids=["C hooks", "Python hooks"])
def test_a_wait_on_a_child_names_it(tmp_path: Path, pure_python: bool) -> None:
    """Popen.communicate and Process.join (os.waitpid of the child) are followed by a PROCESS_WAIT naming the
    child's pid, at the time the wait ended, by the goroutine that waited."""
    run = record(tmp_path, pure_python)
    trace = run.trace
    ev = trace.events
    waits = np.flatnonzero((ev.kind == Kind.PROCESS_WAIT) & (trace.proc == 0))
    named = set(ev.arg[waits].tolist())
    assert {run.subprocess, run.process} <= named  # long waits; a pool's worker may have ended before its join
    assert named <= {run.subprocess, run.process, *run.pool}
    unblocks = set(
        zip(ev.g[ev.kind == Kind.THREAD_UNBLOCK].tolist(), ev.ts[ev.kind == Kind.THREAD_UNBLOCK].tolist(), strict=True)
    )
    for i in waits.tolist():
        assert (int(ev.g[i]), int(ev.ts[i])) in unblocks  # the end of one of that goroutine's waits
    assert trace.lost.hook_errors == ()


# -- the API ----------------------------------------------------------------------------------------------------


def test_lanes_list_the_processes_and_each_lane_s_process(recorded: Recorded, api: ViewerAPI) -> None:
    lanes = api.lane_list({})
    procs = lanes["processes"]
    pids = [p["pid"] for p in procs]
    assert set(pids) == {recorded.trace.processes[0].pid, recorded.subprocess, recorded.process, *recorded.pool}
    assert [p["index"] for p in procs] == list(range(len(procs)))
    child = next(p for p in procs if p["pid"] == recorded.subprocess)
    assert child["argv"] == ["-c", CHILD_ARG] and child["ppid"] == pids[0]
    assert all(p["end_ns"] > p["start_ns"] >= 0 and p["clean_end"] for p in procs)
    g = lanes["goroutines"]
    for pid, proc in zip(g["pid"], g["proc"], strict=True):
        assert procs[proc]["pid"] == pid
    assert {pids[p] for p in g["proc"]} == set(pids)  # every process has its goroutines
    for group in lanes["groups"]:
        assert {g["proc"][g["id"].index(i)] for i in group["ids"]} == {group["proc"]}
        assert procs[group["proc"]]["pid"] == group["pid"]


def test_each_process_has_its_gc_and_heap_lanes(api: ViewerAPI, recorded: Recorded) -> None:
    window = api._window({})
    every = api._lane("gc", window)
    per = [api._lane(f"gc:{i}", window) for i in range(len(recorded.trace.processes))]
    for i, p in enumerate(per):  # the collections of that process only
        assert len(p["start"]) <= int((api.lanes.gc_proc == i).sum())
    assert sum(len(p["start"]) for p in per) >= len(every["start"])  # merged across processes: never more
    heaps = [api._lane(f"heap:{i}", window) for i in range(len(recorded.trace.processes))]
    assert all(h["ts"] for h in heaps)  # every process sampled its heap at least at its start and end
    assert heaps[0] == api._lane("heap", window)
    with pytest.raises(NotFound):
        api._lane(f"gc:{len(recorded.trace.processes)}", window)


def _waits(api: ViewerAPI, g: int, state: str) -> list[dict]:
    """The span of each of goroutine g's intervals in ``state``."""
    s = api.lanes.states
    gi = int(api.analysis.goroutines.index_of(np.array([g]))[0])
    rows = api.lanes.rows_of(gi)
    out = []
    for i in range(rows.start, rows.stop):
        span = api.span({"g": str(g), "t": str(int(s.start[i]) - api.trace.start_ns)})
        if span is not None and span["state"] == state:
            out.append(span)
    return out


def test_a_wait_on_a_child_links_to_its_process(recorded: Recorded, api: ViewerAPI) -> None:
    procs = recorded.trace.processes
    index = {p.pid: p.index for p in procs}
    main = next(t.id for t in recorded.trace.threads if t.pid == procs[0].pid and t.name == "MainThread")
    syscalls = [w for w in _waits(api, main, "syscall") if w["waits_on"]]
    on = {w["waits_on"]["processes"][0]["pid"]: w["waits_on"] for w in syscalls}
    assert {recorded.subprocess, recorded.process} <= set(on) <= {recorded.subprocess, recorded.process, *recorded.pool}
    for pid, waits_on in on.items():
        assert waits_on["kind"] == "process" and waits_on["pool"] is None
        assert waits_on["processes"] == [{"pid": pid, "proc": index[pid], "argv": list(procs[index[pid]].argv)}]
    assert all(w["pid"] == procs[0].pid and w["proc"] == 0 for w in syscalls)
    pools = [w for w in _waits(api, main, "sync") if w["waits_on"]]
    assert pools, "the wait for Pool.map's result"
    for w in pools:  # the map's, and the pool's join (of its result thread): the workers running meanwhile
        assert w["waits_on"]["kind"] == "pool" and w["waits_on"]["pool"] == "multiprocessing pool"
        assert {c["pid"] for c in w["waits_on"]["processes"]} <= set(recorded.pool)
        assert all(c["proc"] == index[c["pid"]] for c in w["waits_on"]["processes"])
    mapped = max(pools, key=lambda w: w["end"] - w["start"])["waits_on"]  # the map's: every worker ran
    assert {c["pid"] for c in mapped["processes"]} == set(recorded.pool)


def test_a_child_s_lanes_end_with_its_recording(recorded: Recorded, api: ViewerAPI) -> None:
    child = next(p for p in recorded.trace.processes if p.pid == recorded.subprocess)
    g = next(t.id for t in recorded.trace.threads if t.pid == child.pid)
    lane = api._lane(f"g:{g}", api._window({"width": "10000"}))
    assert lane["end"] and max(lane["end"]) <= child.end_ns - recorded.trace.start_ns
    assert api.span({"g": str(g), "t": str(child.end_ns - recorded.trace.start_ns + 1)}) is None


def test_two_hosts_processes_of_one_pid_stay_apart(tmp_path: Path) -> None:
    """A merged trace of two hosts whose processes have the same pid: lanes name processes by index."""
    collecting_parent(process(10, 1, host="here")).write(tmp_path / "a.xtrace", stop_ns=2000)
    runnable_child(process(10, 1, host="there", wall=WALL + 1000)).write(tmp_path / "b.xtrace", stop_ns=2000)
    api = ViewerAPI(exectracer.load(tmp_path))
    lanes = api.lane_list({})
    assert [(p["pid"], p["host"]) for p in lanes["processes"]] == [(10, "here"), (10, "there")]
    g = lanes["goroutines"]
    assert sorted(set(g["proc"])) == [0, 1]
    assert {grp["proc"] for grp in lanes["groups"]} == {0, 1}
    window = api._window({})
    assert len(api._lane("gc:0", window)["start"]) == 1 and api._lane("gc:1", window)["start"] == []
    task = next(i for i, n, p in zip(g["id"], g["name"], g["proc"], strict=True) if p == 1 and n != "MainThread")
    first = api._lane(f"g:{task}", window)["start"][0]
    assert api.span({"g": str(task), "t": str(first)})["proc"] == 1


# -- the browser -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def viewer(recorded: Recorded):
    v = Viewer(recorded.path)
    yield v
    v.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture(params=[False, True], ids=["CSP", "no CSP"])
def page(request, browser, viewer):
    """A page that fails the test on any console error, page error or dialog; also one that ignores the
    server's Content-Security-Policy (escaping must stand on its own)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=request.param)
    context.set_default_timeout(60_000)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("dialog", lambda d: (problems.append(f"dialog {d.type}: {d.message}"), d.dismiss()))
    pg.goto(viewer.url + "#/timeline")
    wait_until(pg, "() => window.exectracer && window.exectracer.ready")
    wait_settled(pg)
    yield pg
    context.close()
    assert problems == [], problems


def rows(page) -> list[dict]:
    return page.evaluate(
        "window.exectracer.page.timeline.layout.rows.map(r => ({type: r.type, key: r.key, label: r.label,"
        " proc: r.proc ?? null, open: r.open ?? null, id: r.id ?? null}))"
    )


def lanes_meta(page) -> dict:
    return page.evaluate("window.exectracer.page.model.meta")


def nesting(page) -> dict[int, list[dict]]:
    """The rows under each process header, by process index."""
    out: dict[int, list[dict]] = {}
    current = None
    for r in rows(page):
        if r["type"] == "process":
            current = out.setdefault(r["proc"], [])
        else:
            assert current is not None, f"a row before the first process header: {r}"
            current.append(r)
    return out


@pytest.mark.parametrize("arrangement", ["threads", "goroutines"])
def test_processes_are_the_outer_lane_groups(page, recorded: Recorded, arrangement: str) -> None:
    page.evaluate(f"window.exectracer.page.setArrangement({json.dumps(arrangement)})")
    meta = lanes_meta(page)
    procs = meta["processes"]
    headers = [r for r in rows(page) if r["type"] == "process"]
    assert [h["proc"] for h in headers] == list(range(len(procs)))
    for h, p in zip(headers, procs, strict=True):
        assert h["label"].startswith(f"pid {p['pid']} · ") and h["open"]
    child = next(h for h in headers if procs[h["proc"]]["pid"] == recorded.subprocess)
    assert child["label"] == f"pid {recorded.subprocess} · -c {CHILD_ARG}"  # text, drawn on the canvas
    g = meta["goroutines"]
    for proc, under in nesting(page).items():
        assert [r["key"] for r in under[:2]] == [f"gc:{proc}", f"heap:{proc}"]
        ids = [r["id"] for r in under if r["type"] == "g"]
        assert ids and sorted(ids) == sorted(i for i, p in zip(g["id"], g["proc"], strict=True) if p == proc)
    wait_settled(page)
    fetched = page.evaluate("[...window.exectracer.page.timeline.data.keys()]")
    assert "gc:0" in fetched and "heap:0" in fetched


def test_a_process_header_collapses_and_expands(page) -> None:
    before = nesting(page)
    point = page.evaluate(
        "(() => { const t = window.exectracer.page.timeline; t.scrollToRow('process:1');"
        " const r = t.canvas.getBoundingClientRect();"
        " return {x: r.left + 100, y: r.top + t.rowTop('process:1') + 5}; })()"
    )
    page.mouse.click(point["x"], point["y"])
    wait_until(page, "() => window.exectracer.page.closedProcesses.has(1)")
    after = nesting(page)
    assert after[1] == [] and after[0] == before[0]
    assert not next(r for r in rows(page) if r["key"] == "process:1")["open"]
    page.mouse.click(point["x"], point["y"])
    wait_until(page, "() => !window.exectracer.page.closedProcesses.has(1)")
    assert nesting(page) == before


def test_search_shows_the_process(page, recorded: Recorded) -> None:
    page.fill("input.search", f"pid {recorded.subprocess}")
    items = page.locator("ul.search-results li")
    items.first.wait_for()
    assert items.count() >= 1
    assert all(f"pid {recorded.subprocess}" in t for t in items.all_inner_texts())


def test_the_parent_s_wait_links_to_the_child(page, recorded: Recorded, api: ViewerAPI) -> None:
    """Click the parent's wait in subprocess.run: the panel says which process it waited on; its link scrolls to
    that process's lanes, opening them if they were collapsed."""
    procs = recorded.trace.processes
    child = next(p for p in procs if p.pid == recorded.subprocess)
    main = next(t.id for t in recorded.trace.threads if t.pid == procs[0].pid and t.name == "MainThread")
    wait = next(
        w
        for w in _waits(api, main, "syscall")
        if w["waits_on"] and w["waits_on"]["processes"][0]["pid"] == recorded.subprocess
    )
    page.evaluate(f"window.exectracer.page.toggleProcess({child.index})")  # collapsed: the link opens it
    settled = page.evaluate("window.exectracer.page.timeline.stats.settled")
    page.evaluate(f"window.exectracer.page.timeline.setView({wait['start']}, {wait['end']})")
    wait_settled(page, settled + 1)
    point = page.evaluate(f"window.exectracer.page.timeline.pointFor('g:{main}', {(wait['start'] + wait['end']) // 2})")
    page.mouse.click(point["x"], point["y"])
    box = page.locator("aside.panel .child-wait")
    box.wait_for()
    assert box.locator("h3").inner_text() == f"Waiting on process {recorded.subprocess}"
    link = box.locator("a.process-link")
    assert link.inner_text() == f"pid {recorded.subprocess} · -c {CHILD_ARG}"  # the argv stays text
    assert page.locator("aside.panel img").count() == 0
    link.click()
    key = f"process:{child.index}"
    wait_until(page, f"() => window.exectracer.page.timeline.highlightKey === {json.dumps(key)}")
    under = nesting(page)[child.index]
    assert [r["key"] for r in under[:2]] == [f"gc:{child.index}", f"heap:{child.index}"]
    top = page.evaluate(f"window.exectracer.page.timeline.rowTop({json.dumps(key)})")
    height = page.evaluate("window.exectracer.page.timeline.cssH")
    pinned = page.evaluate("window.exectracer.page.timeline.pinnedH")
    assert pinned <= top < height  # the child's header is in view


def test_a_pool_wait_links_to_the_pool_s_workers(page, recorded: Recorded, api: ViewerAPI) -> None:
    procs = recorded.trace.processes
    main = next(t.id for t in recorded.trace.threads if t.pid == procs[0].pid and t.name == "MainThread")
    wait = max(
        (w for w in _waits(api, main, "sync") if w["waits_on"] and w["waits_on"]["kind"] == "pool"),
        key=lambda w: w["end"] - w["start"],
    )
    page.evaluate(f"window.exectracer.page.jumpTo({main}, {(wait['start'] + wait['end']) // 2}, true)")
    box = page.locator("aside.panel .child-wait")
    box.wait_for()
    assert box.locator("h3").inner_text() == "Waiting on the multiprocessing pool's workers"
    links = box.locator("a.process-link")
    assert sorted(int(t.split()[1]) for t in links.all_inner_texts()) == sorted(recorded.pool)
