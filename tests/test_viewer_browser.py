"""The viewer end to end: real headless Chromium (Debian's, driven by Playwright) on `exectracer view` of a
recorded trace. Every test fails on any JavaScript console error, page error or dialog."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from support.viewer_browser import (
    WAIT_LINE,
    XSS_LOG,
    XSS_TASK,
    XSS_THREAD,
    Viewer,
    launch,
    record_program,
    wait_settled,
    wait_until,
)

PROFILES = ["net", "sync", "syscall", "sleep", "other", "sched", "gil", "cpu"]
RGB = {  # js/colors.js
    "running": (0x2E, 0x9E, 0x44),
    "network": (0x3B, 0x7D, 0xD8),
    "sync": (0xD9, 0x48, 0x7D),
    "sleep": (0x9A, 0x9A, 0x9A),
    "gc0": (0xF9, 0xB4, 0x6B),
    "gc1": (0xF0, 0x7C, 0x1A),
    "gc2": (0xB8, 0x55, 0x09),
}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return record_program(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def viewer(recorded):
    v = Viewer(recorded[0])
    yield v
    v.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


class Api:
    """The viewer's JSON API, read from the test to know where to click."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, path: str, **params) -> object:
        with urllib.request.urlopen(f"{self.url}api/{path}?{urllib.parse.urlencode(params)}", timeout=30) as r:
            return json.load(r)

    def goroutine(self, name: str) -> int:
        g = self("lanes")["goroutines"]
        return next(i for i, n in zip(g["id"], g["name"], strict=True) if n == name)


@pytest.fixture(scope="module")
def api(viewer) -> Api:
    return Api(viewer.url)


def open_context(browser, viewer, **options):
    """A browser page on the viewer that records console errors, page errors and dialogs in `page.problems`."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, **options)
    context.set_default_timeout(60_000)  # for locators' waits: generous, on a busy machine too
    pg = context.new_page()
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("dialog", lambda d: (problems.append(f"dialog {d.type}: {d.message}"), d.dismiss()))
    pg.problems = problems
    pg.base = viewer.url
    return context, pg


@pytest.fixture
def page(browser, viewer):
    """A page under the server's Content-Security-Policy, as a user gets it."""
    context, pg = open_context(browser, viewer)
    yield pg
    context.close()
    assert pg.problems == [], pg.problems


@pytest.fixture
def page_without_csp(browser, viewer):
    """A page that ignores the server's Content-Security-Policy: escaping must stand on its own."""
    context, pg = open_context(browser, viewer, bypass_csp=True)
    yield pg
    context.close()
    assert pg.problems == [], pg.problems


def open_page(page, route: str) -> None:
    """Load the viewer afresh at `route` (a new document, not just a new hash) and wait until the page is up."""
    if page.url.startswith(page.base):
        page.goto("about:blank")
    page.goto(page.base + route)
    wait_until(page, "() => window.exectracer && window.exectracer.ready")
    assert page.evaluate("window.exectracer.error || null") is None


def timeline(page, expr: str):
    return page.evaluate(f"(() => {{ const t = window.exectracer.page.timeline; return {expr}; }})()")


def view(page) -> tuple[float, float]:
    return tuple(timeline(page, "[t.start, t.end]"))


def pixel(page, x: float, y: float) -> tuple[int, int, int]:
    """The colour the canvas drew at page point (x, y)."""
    return tuple(
        timeline(
            page,
            f"(() => {{ const r = t.canvas.getBoundingClientRect(); const d = window.devicePixelRatio;"
            f" return Array.from(t.ctx.getImageData(Math.round(({x} - r.left) * d), Math.round(({y} - r.top) * d),"
            " 1, 1).data.slice(0, 3)); })()",
        )
    )


def colour_counts(page) -> dict[str, int]:
    """How many canvas pixels have each colour of RGB (counted in the page: the image is megabytes)."""
    return page.evaluate(
        """colours => {
            const t = window.exectracer.page.timeline;
            const d = t.ctx.getImageData(0, 0, t.canvas.width, t.canvas.height).data;
            const counts = Object.fromEntries(Object.keys(colours).map(k => [k, 0]));
            const index = new Map(Object.entries(colours).map(([k, [r, g, b]]) => [(r << 16) | (g << 8) | b, k]));
            for (let i = 0; i < d.length; i += 4) {
                const k = index.get((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
                if (k) counts[k]++;
            }
            return counts;
        }""",
        RGB,
    )


def longest(api: Api, g: int, state: str) -> tuple[int, int]:
    """The longest exact interval of goroutine g in `state`."""
    info = api("info")
    lane = api("spans", lanes=f"g:{g}", start=0, end=info["duration_ns"], width=10000)["lanes"][f"g:{g}"]
    want = info["states"].index(state)
    spans = [
        (s, e)
        for s, e, st, n in zip(lane["start"], lane["end"], lane["state"], lane["count"], strict=True)
        if st == want and n == 1
    ]
    assert spans, f"g{g} has no {state} interval"
    return max(spans, key=lambda se: se[1] - se[0])


def click_lane(page, key: str, t: float) -> tuple[float, float]:
    point = timeline(page, f"t.pointFor({json.dumps(key)}, {t})")
    assert point is not None, f"no lane {key}"
    page.mouse.click(point["x"], point["y"])
    return point["x"], point["y"]


def test_timeline_draws_lanes_with_the_palette(page) -> None:
    open_page(page, "#/timeline")
    wait_settled(page)
    counts = colour_counts(page)
    # the whole trace by thread: the main thread's loop idles in its selector (network), threads run, the
    # program's gc.collect() is a generation-2 collection in the GC strip
    assert counts["network"] > 500 and counts["running"] > 50 and counts["gc2"] > 0, counts
    legend = page.locator(".legend").inner_text()
    for words in (
        "running",
        "runnable",
        "blocked: network",
        "blocked: sync",
        "blocked: sleep",
        "blocked: syscall",
        "blocked: other (estimated from samples)",
        "task step",
        "gen 2",
    ):
        assert words in legend
    keys = timeline(page, "t.layout.rows.map(r => r.key)")
    assert any(k.startswith("loop:") for k in keys) and sum(k.startswith("g:") for k in keys) >= 3
    # the other arrangement: groups of goroutines by start function
    settled = timeline(page, "t.stats.settled")
    page.click("button[data-arr=goroutines]")
    wait_settled(page, settled + 1)
    labels = timeline(page, "t.layout.rows.filter(r => r.type === 'group').map(r => r.label)")
    assert any("waiter" in label for label in labels) and any("Server.handle" in label for label in labels), labels
    assert "MainThread (main program) · threads" in labels  # not "(no start function)"
    assert "view=goroutines" in page.evaluate("location.hash")


def test_zoom_and_pan(page) -> None:
    open_page(page, "#/timeline")
    wait_settled(page)
    box = page.locator("canvas.timeline-canvas").bounding_box()
    x, y = box["x"] + box["width"] * 0.7, box["y"] + 200
    s0, e0 = view(page)
    t_under = timeline(page, f"t.tOf({x - box['x']})")
    requests = timeline(page, "t.stats.requests")

    settled = timeline(page, "t.stats.settled")
    page.mouse.move(x, y)
    page.mouse.wheel(0, -300)  # zoom in around the pointer
    wait_settled(page, settled + 1)
    s1, e1 = view(page)
    assert (e1 - s1) < (e0 - s0) / 1.5
    assert (
        abs(timeline(page, f"t.tOf({x - box['x']})") - t_under) < (e1 - s1) * 0.01
    )  # the time under the pointer stays
    assert timeline(page, "t.stats.requests") > requests  # asked the server for the new window

    settled = timeline(page, "t.stats.settled")
    page.keyboard.press("w")
    wait_settled(page, settled + 1)
    s2, e2 = view(page)
    assert (e2 - s2) == pytest.approx((e1 - s1) / 1.25, rel=1e-6)

    settled = timeline(page, "t.stats.settled")
    page.keyboard.press("d")
    wait_settled(page, settled + 1)
    s3, e3 = view(page)
    assert s3 > s2 and (e3 - s3) == pytest.approx(e2 - s2, rel=1e-6)

    settled = timeline(page, "t.stats.settled")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 200, y, steps=5)  # drag right: earlier times come into view
    page.mouse.up()
    wait_settled(page, settled + 1)
    s4, e4 = view(page)
    assert s4 < s3 and (e4 - s4) == pytest.approx(e3 - s3, rel=1e-6)

    settled = timeline(page, "t.stats.settled")
    page.keyboard.press("s")
    wait_settled(page, settled + 1)
    assert view(page)[1] - view(page)[0] == pytest.approx((e4 - s4) * 1.25, rel=1e-6)
    wait_until(page, "() => location.hash.includes('start=')")  # the view is in the URL, to share or reload


def test_click_a_blocked_span_shows_its_stack_and_waker(page, api, recorded) -> None:
    waiter, setter = api.goroutine("waiter"), api.goroutine("setter")
    start, end = longest(api, waiter, "sync")
    d = end - start
    open_page(page, f"#/timeline?view=goroutines&start={start - d // 2}&end={end + d // 2}")
    wait_settled(page)
    key = f"g:{waiter}"
    point = timeline(page, f"t.pointFor('{key}', {start + d / 2})")
    assert pixel(page, point["x"], point["y"]) == RGB["sync"]  # the lane draws the wait in the sync colour
    page.mouse.click(point["x"], point["y"])
    panel = page.locator("aside.panel")
    panel.locator("ol.stack").wait_for()
    text = panel.inner_text()
    assert "waiter" in text and "blocked" in text and "sync" in text
    frames = panel.locator("ol.stack li").all_inner_texts()
    assert any("waiter" in f and f"{recorded[1].name}:{WAIT_LINE}" in f for f in frames), frames
    waker = panel.locator(".waker").inner_text()
    assert "task" in waker and f"setter · g{setter}" in waker
    assert timeline(page, "t.arrow && t.arrow.fromKey") == f"g:{setter}"  # an arrow from waker to woken

    panel.locator("a.jump-waker").click()  # the link jumps to the waker, at the wake-up
    wait_until(page, f"() => window.exectracer.page.timeline.highlightKey === 'g:{setter}'")
    wait_until(
        page,
        "() => document.querySelector('aside.panel .gname')"
        " && document.querySelector('aside.panel .gname').textContent === 'setter'",
    )
    s, e = view(page)
    assert s <= end <= e


def test_click_an_event_loop_step_and_a_collection(page, api) -> None:
    info, lanes = api("info"), api("lanes")
    loop = lanes["loops"][0]["id"]
    waiter = api.goroutine("waiter")
    # the waiter task's step once the event is set: exact on the loop lane at 100 ns per pixel
    woken = longest(api, waiter, "sync")[1]
    lane = api("spans", lanes=f"loop:{loop}", start=woken, end=woken + 1_000_000, width=10000)["lanes"][f"loop:{loop}"]
    steps = [
        (s, e)
        for s, e, w, g in zip(lane["start"], lane["end"], lane["what"], lane["g"], strict=True)
        if w == 0 and g == waiter
    ]
    assert steps, "no step of the waiter task on the loop"
    start, end = steps[0]
    open_page(page, f"#/timeline?view=threads&start={start - (end - start)}&end={end + (end - start)}")
    wait_settled(page)
    click_lane(page, f"loop:{loop}", (start + end) / 2)
    panel = page.locator("aside.panel")
    panel.locator(".gname").wait_for()
    assert "task step" in panel.inner_text() and panel.locator(".gname").inner_text() == "waiter"
    panel.locator("a", has_text=f"show task g{waiter}").click()  # its lane, in the goroutine arrangement
    wait_until(page, f"() => window.exectracer.page.timeline.highlightKey === 'g:{waiter}'")
    assert timeline(page, "t.layout.rows.some(r => r.type === 'group')")

    gc = api("spans", lanes="gc", start=0, end=info["duration_ns"], width=10000)["lanes"]["gc"]
    i = max(range(len(gc["start"])), key=lambda i: gc["end"][i] - gc["start"][i])
    s, e = gc["start"][i], gc["end"][i]
    open_page(page, f"#/timeline?start={s - (e - s)}&end={e + (e - s)}")
    wait_settled(page)
    point = timeline(page, f"t.pointFor('gc', {(s + e) / 2})")
    assert pixel(page, point["x"], point["y"]) == RGB[f"gc{gc['generation'][i]}"]
    page.mouse.click(point["x"], point["y"])
    panel.locator("h2", has_text="Garbage collection").wait_for()
    assert panel.locator("table.kv tr").first.inner_text().split() == ["generation", str(gc["generation"][i])]


def test_select_a_range(page) -> None:
    open_page(page, "#/timeline")
    wait_settled(page)
    box = page.locator("canvas.timeline-canvas").bounding_box()
    y = box["y"] + 150
    x0, x1 = box["x"] + 400, box["x"] + 900
    page.keyboard.down("Shift")
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move(x1, y, steps=8)
    page.mouse.up()
    page.keyboard.up("Shift")
    panel = page.locator("aside.panel")
    panel.locator("table.totals").wait_for()
    rng = timeline(page, "t.range")
    assert rng["end"] > rng["start"]
    running = panel.locator("tr[data-state=running] td.num").first.inner_text()
    assert running not in ("0", "–")
    links = panel.locator(".profile-links a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert len(links) == len(PROFILES)
    assert all(f"start={int(rng['start'])}" in h and "end=" in h for h in links), links
    settled = timeline(page, "t.stats.settled")
    panel.locator("button.zoom-range").click()
    wait_settled(page, settled + 1)
    s, e = view(page)
    assert s == pytest.approx(rng["start"], abs=1) and e == pytest.approx(rng["end"], abs=1)
    page.locator(".profile-links a", has_text="sync").click()
    wait_until(page, "() => window.exectracer.route === 'profile' && window.exectracer.ready")
    assert "Limited to" in page.locator(".scope").inner_text()


def test_search_jump_to_time_and_focus(page, api) -> None:
    waiter, setter = api.goroutine("waiter"), api.goroutine("setter")
    open_page(page, "#/timeline")
    wait_settled(page)
    page.fill("input.search", "waiter")
    result = page.locator(".search-results li").filter(has_text="waiter").first
    result.locator("a").first.click()
    wait_until(page, f"() => window.exectracer.page.timeline.highlightKey === 'g:{waiter}'")
    assert timeline(page, f"t.rowTop('g:{waiter}') !== null") and timeline(
        page, "t.layout.rows.some(r => r.type === 'group')"
    )

    for _ in range(10):
        page.keyboard.press("w")
    page.fill("input.jump", "0.25s")
    page.press("input.jump", "Enter")
    s, e = view(page)
    assert s < 250e6 < e and abs((s + e) / 2 - 250e6) < (e - s) * 0.01

    page.fill("input.search", "waiter")
    page.locator(".search-results li").filter(has_text="waiter").first.locator("a.focus-link").click()
    page.locator(".focus-bar").wait_for()
    keys = timeline(page, "t.layout.rows.filter(r => r.type === 'g').map(r => r.key)")
    assert keys[0] == f"g:{waiter}" and f"g:{setter}" in keys  # setter woke waiter
    assert f"g={waiter}" in page.evaluate("location.hash")
    page.locator(".focus-bar a").click()
    wait_until(page, "() => document.querySelector('.focus-bar').hidden")


def test_every_analysis_page(page) -> None:
    open_page(page, "#/goroutines")
    rows = page.locator("table.groups tbody tr")
    assert rows.count() >= 5
    page.locator("table.groups th[data-key=count]").click()  # sort by count, largest first
    counts = [int(c.replace(",", "")) for c in page.locator("table.groups tbody tr td:nth-child(3)").all_inner_texts()]
    assert counts == sorted(counts, reverse=True)
    assert page.locator("table.groups a.group-link", has_text="MainThread (main program)").count() == 1
    page.locator("table.groups a.group-link", has_text="Server.handle").click()
    wait_until(page, "() => window.exectracer.ready && document.querySelector('table.goroutines')")
    assert page.locator("table.goroutines tbody tr").count() == 4  # the service's four connections
    page.locator("table.goroutines tbody tr a").first.click()  # -> the timeline, focused on it
    wait_until(page, "() => window.exectracer.route === 'timeline' && window.exectracer.ready")
    page.locator(".focus-bar").wait_for()

    for kind in PROFILES:
        open_page(page, f"#/profile/{kind}")
        assert page.locator("nav.tabs a.on").inner_text() == kind
        href = page.locator("a.download").get_attribute("href")
        assert href.startswith("api/pprof?") and f"type={kind}" in href
        if page.locator(".flamegraph canvas").count():
            assert page.locator("table.top tbody tr").count() > 0
        else:
            assert page.locator(".empty").count() == 1
    open_page(page, "#/profile/net")
    canvas = page.locator(".flamegraph canvas")
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + 5, box["y"] + 18 + 9)  # the first frame under "all": zoom into it
    page.locator(".crumbs", has_text="zoomed into").wait_for()
    with page.expect_download() as download:
        page.locator("a.download").click()
    path = download.value.path()
    assert Path(path).read_bytes()[:2] == b"\x1f\x8b"  # a gzipped pprof file

    open_page(page, "#/mmu")
    assert page.locator("circle.mmu-point").count() >= 10
    page.locator("circle.mmu-point.on").wait_for()  # the window nearest 10 ms is chosen
    page.locator("circle.mmu-point").first.click()
    page.locator(".mmu-worst h2", has_text="10.0 µs").wait_for()
    page.locator("circle.mmu-point").nth(page.locator("circle.mmu-point").count() // 2).click()
    link = page.locator(".mmu-worst a.to-timeline").first
    link.click()
    wait_until(page, "() => window.exectracer.route === 'timeline' && window.exectracer.ready")
    wait_settled(page)
    assert view(page)[1] - view(page)[0] < timeline(page, "t.duration")

    open_page(page, "#/latency?what=tasks")
    cards = page.locator(".latency-card")
    assert cards.count() >= 2
    names = cards.locator("h2").all_inner_texts()
    assert "request" in names and "serve" in names
    card = cards.filter(has_text="request").first
    card.locator("rect.bucket").filter(has=page.locator("title")).last.click(force=True)
    card.locator("table.instances-table").wait_for()
    card.locator("a.to-timeline").first.click()
    wait_until(page, "() => window.exectracer.route === 'timeline' && window.exectracer.ready")
    page.locator("aside.panel ol.stack, aside.panel .note").first.wait_for()
    open_page(page, "#/latency?what=regions")
    assert "wait for reply" in page.locator(".latency-card h2").all_inner_texts()

    open_page(page, "#/logs")
    page.locator("table.log tbody tr").first.wait_for()
    total = page.locator(".count").inner_text()
    page.fill("input.search", "reply")
    wait_until(
        page, "t => document.querySelector('.count') && document.querySelector('.count').textContent !== t", total
    )
    categories = set(page.locator("table.log td.category").all_inner_texts())
    assert categories == {"reply"}, categories

    open_page(page, "#/info")
    text = page.locator("#page").inner_text()
    assert "Nothing was lost" in text and "duration" in text


def test_strings_from_the_trace_stay_text(page_without_csp, api) -> None:
    """A task, a region, a log record and a thread named with HTML: shown literally, nothing runs
    (even without the server's Content-Security-Policy, which would block inline scripts)."""
    page = page_without_csp
    open_page(page, "#/timeline")
    wait_settled(page)
    page.fill("input.search", "onerror")
    result = page.locator(".search-results li .gname").first
    result.wait_for()
    assert result.inner_text() == XSS_TASK

    hostile = api.goroutine(XSS_TASK)
    start, end = longest(api, hostile, "sleep")
    open_page(page, f"#/timeline?view=goroutines&start={start}&end={end}")
    wait_settled(page)
    click_lane(page, f"g:{hostile}", (start + end) / 2)
    panel = page.locator("aside.panel")
    panel.locator(".utask").wait_for()
    assert panel.locator(".gname").first.inner_text() == XSS_TASK
    assert XSS_TASK in panel.locator(".utask").inner_text() and panel.locator(".regions").inner_text() == XSS_TASK

    thread = api.goroutine(XSS_THREAD)
    open_page(page, "#/goroutines?function=__main__.worker&kind=thread")
    assert page.locator("table.goroutines .gname").all_inner_texts() == [XSS_THREAD]
    assert page.locator("table.goroutines a").first.inner_text() == f"g{thread}"

    open_page(page, "#/logs?q=alert")
    page.locator("table.log tbody tr").first.wait_for()
    assert page.locator("table.log td.message").all_inner_texts() == [XSS_LOG]
    assert page.locator("table.log td.category").all_inner_texts() == [XSS_TASK]
    open_page(page, "#/latency?what=regions")
    assert XSS_TASK in page.locator(".latency-card h2").all_inner_texts()

    # nothing the trace said became markup
    assert page.evaluate("document.querySelectorAll('img, script:not([type=module]), b').length") == 0


def test_a_damaged_trace_shows_a_warning(browser, recorded, tmp_path) -> None:
    """A trace cut short: the viewer still opens it, and says what was lost on every page and on the info page."""
    cut = tmp_path / "cut.xtrace"
    data = recorded[0].read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    damaged = Viewer(cut)
    try:
        context, page = open_context(browser, damaged)
        open_page(page, "#/timeline")
        wait_settled(page)
        banner = page.locator("#banner")
        assert banner.is_visible() and "truncated" in banner.inner_text()
        banner.locator("a").click()
        wait_until(page, "() => window.exectracer.route === 'info' && window.exectracer.ready")
        warning = page.locator(".warning-box")
        assert warning.is_visible()
        assert "truncated" in warning.inner_text() and "did not stop cleanly" in warning.inner_text()
        assert "no: the recording stopped abruptly" in page.locator("#page").inner_text()
        context.close()
        assert page.problems == [], page.problems
    finally:
        damaged.stop()


def test_times_are_shown_with_units(page) -> None:
    """The page's formatting of durations, ruler ticks and typed times (js/format.js), run in the browser."""
    open_page(page, "#/info")
    got = page.evaluate("""async () => {
        const f = await import(new URL("static/js/format.js", location.href).href);
        return {
            durations: [0, 999, 1500, 25_300_000, 2_000_000_000].map(f.fmtDur),
            ticks: [
                [1_200_000_000, 100_000_000, 1_500_000_000],
                [350_000, 50_000, 400_000],
                [1_002_500_000, 500_000, 1_010_000_000]
            ]
                .map(([t, step, extent]) => f.fmtTick(t, step, extent)),
            steps: [0.7, 3, 120, 4_000].map(f.niceStep),
            parsed: ["1.5s", "250ms", "40us", "40µs", "100ns", "2", "soon"].map(f.parseTime),
        };
    }""")
    assert got["durations"] == ["0", "999 ns", "1.50 µs", "25.3 ms", "2.00 s"]
    assert got["ticks"] == ["1.2 s", "350 µs", "1.0025 s"]
    assert got["steps"] == [1, 5, 200, 5000]
    assert got["parsed"] == [1_500_000_000, 250_000_000, 40_000, 40_000, 100, 2_000_000_000, None]


def test_query_page(page, api) -> None:
    """SQL in, a table out; a row with a goroutine and a time links to its span on the timeline; bad SQL, and
    SQL that reaches for a file, show DuckDB's one-line error."""
    open_page(page, "#/query")
    page.locator("button.run").click()  # the example query: time by state
    page.locator("table.query tbody tr").first.wait_for()
    assert page.locator("table.query th").first.inner_text() == "state"
    assert "running" in page.locator("table.query tbody td").all_inner_texts()

    waiter = api.goroutine("waiter")
    page.fill(
        "textarea.sql",
        "SELECT s.goroutine_id, s.state, s.start_ns, s.end_ns FROM states s JOIN goroutines g ON g.id = s.goroutine_id"
        " WHERE g.name = 'waiter' AND s.state = 'sync'",
    )
    page.press("textarea.sql", "Control+Enter")
    link = page.locator("table.query a.timeline-link").first
    link.wait_for()
    assert page.locator("table.query tbody tr").count() == 1
    link.click()
    wait_until(page, "() => window.exectracer.route === 'timeline' && window.exectracer.ready")
    wait_until(
        page,
        "() => document.querySelector('aside.panel .gname')"
        " && document.querySelector('aside.panel .gname').textContent === 'waiter'",
    )
    assert f"g={waiter}" in page.url or f"sel={waiter}" in page.url

    for query, error in (
        ("SELEC 1", "Parser Error: syntax error at or near"),
        ("SELECT * FROM read_text('/etc/hostname')", "Permission Error"),
        ("SELECT * FROM read_csv('/etc/passwd')", "Permission Error"),
        ("DROP VIEW states", "Permission Error"),
    ):
        open_page(page, "#/query")
        assert_refused(page, query, error)
    # the browser logs each refused query's HTTP 400 as a console error: those, and only those, are expected
    assert page.problems.count(REFUSED) == 4
    page.problems[:] = [p for p in page.problems if p != REFUSED]


REFUSED = "console error: Failed to load resource: the server responded with a status of 400 (Bad Request)"


def assert_refused(page, query: str, error: str) -> None:
    """Running ``query`` on the Query page shows the database's one-line error, starting with ``error``."""
    page.fill("textarea.sql", query)
    page.locator("button.run").click()
    box = page.locator(".query-error")
    box.wait_for()
    text = box.inner_text()
    assert text.startswith(error) and "\n" not in text, text


def test_query_results_stay_text(page_without_csp) -> None:
    page = page_without_csp
    query = f"SELECT {XSS_TASK!r} AS x, name FROM goroutines WHERE name = {XSS_TASK!r}"
    open_page(page, f"#/query?q={urllib.parse.quote(query)}")
    page.locator("table.query tbody tr").first.wait_for()
    assert page.locator("table.query tbody td").all_inner_texts()[:2] == [XSS_TASK, XSS_TASK]
    assert page.locator("table.query img").count() == 0


@pytest.fixture(scope="module")
def dataset_viewer(recorded, tmp_path_factory: pytest.TempPathFactory):
    """``exectracer view`` of the recorded trace's Parquet dataset."""
    target = tmp_path_factory.mktemp("browser-dataset") / "ds"
    subprocess.run(
        [sys.executable, "-m", "exectracer", "export", "--format", "parquet", str(recorded[0]), "-o", str(target)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    v = Viewer(target)
    yield v
    v.stop()


def test_a_dataset_has_the_query_page_only(browser, dataset_viewer) -> None:
    """A Parquet dataset opens on its Query page, the only one in the header; its rows link to no timeline (there
    is none); a file outside the dataset cannot be read, and bad SQL shows DuckDB's one-line error."""
    context, page = open_context(browser, dataset_viewer)
    try:
        open_page(page, "#/timeline")
        wait_until(page, "() => window.exectracer.route === 'query' && window.exectracer.ready")
        visible = page.evaluate(
            "[...document.querySelectorAll('#nav a')].filter(a => !a.hidden).map(a => a.dataset.route)"
        )
        assert visible == ["query"]
        page.fill(
            "textarea.sql", "SELECT goroutine_id, state, start_ns, end_ns FROM states WHERE state = 'sync' LIMIT 3"
        )
        page.locator("button.run").click()
        page.locator("table.query tbody tr").first.wait_for()
        assert page.locator("table.query th").first.inner_text() == "goroutine_id"
        assert page.locator("table.query a.timeline-link").count() == 0
        assert_refused(page, "SELEC 1", "Parser Error: syntax error at or near")
        assert_refused(page, "SELECT * FROM read_csv('/etc/passwd')", "Permission Error")
    finally:
        context.close()
    assert [p for p in page.problems if p != REFUSED] == [] and page.problems.count(REFUSED) == 2, page.problems
