"""The viewer shows a wait no hook saw as estimated from samples: hatched and said so on every page that shows it.

Real headless Chromium on ``exectracer view`` of a real program's trace: a
``multiprocessing.Pool`` whose task handler thread waits in C
(``programs/cpu_time.py pool``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from support.viewer_browser import Viewer, launch, wait_settled, wait_until

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")

PROGRAM = Path(__file__).parent / "programs" / "cpu_time.py"
BROWN = "141,110,99"  # js/colors.js: other, and the stripes of what is estimated
WHITE = "255,255,255"
ESTIMATED_FRAME = "[estimated from samples: a wait in a call no hook covers]"
# the colours of a 12 x 4 pixel patch of a canvas at page coordinates (x, y)
PIXELS = """([selector, x, y]) => {
    const c = document.querySelector(selector), r = c.getBoundingClientRect(), d = window.devicePixelRatio;
    const px = c.getContext("2d").getImageData(Math.round((x - r.left) * d), Math.round((y - r.top) * d), 12, 4);
    const out = [];
    for (let i = 0; i < px.data.length; i += 4) out.push(px.data.slice(i, i + 3).join(","));
    return out;
}"""


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("estimated") / "pool.xtrace"
    done = subprocess.run(
        [sys.executable, str(PROGRAM), "pool", str(path)], capture_output=True, text=True, timeout=100, check=False
    )
    assert done.returncode == 0, done.stderr
    v = Viewer(path)
    yield v, json.loads(done.stdout.splitlines()[-1])
    v.stop()


@pytest.fixture
def page(viewer):
    """A page on the viewer; the test fails on any console or page error."""
    with sync_playwright() as p:
        browser = launch(p)
        try:
            pg = browser.new_page(viewport={"width": 1400, "height": 900})
            pg.set_default_timeout(60_000)
            problems: list[str] = []
            pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            pg.on("pageerror", lambda e: problems.append(str(e)))
            yield pg
            assert problems == []
        finally:
            browser.close()


def api(url: str, path: str, **params) -> dict:
    with urllib.request.urlopen(f"{url}api/{path}?{urllib.parse.urlencode(params)}", timeout=30) as r:
        return json.load(r)


def open_page(page, url: str) -> None:
    page.goto("about:blank")
    page.goto(url)
    wait_until(page, "() => window.exectracer && window.exectracer.ready")
    assert page.evaluate("window.exectracer.error || null") is None


def test_estimated_wait_is_hatched_and_explained(viewer, page) -> None:
    v, measured = viewer
    lanes = api(v.url, "lanes")["goroutines"]
    g = next(i for i, name in zip(lanes["id"], lanes["name"], strict=True) if name == measured["handler"])
    info = api(v.url, "info")
    lane = api(v.url, "spans", lanes=f"g:{g}", start=0, end=info["duration_ns"], width=10000)["lanes"][f"g:{g}"]
    want = info["states"].index("other_estimated")
    start, end = max(
        ((s, e) for s, e, st in zip(lane["start"], lane["end"], lane["state"], strict=True) if st == want),
        key=lambda se: se[1] - se[0],
    )

    open_page(page, f"{v.url}#/timeline?view=goroutines&start={start}&end={end}")
    wait_settled(page)
    assert "blocked: other (estimated from samples)" in page.locator(".legend").inner_text()
    point = page.evaluate(f"window.exectracer.page.timeline.pointFor('g:{g}', {(start + end) / 2})")
    assert point is not None
    colours = set(page.evaluate(PIXELS, ["canvas.timeline-canvas", point["x"], point["y"]]))
    assert {BROWN, WHITE} <= colours  # stripes, not a solid fill
    page.mouse.click(point["x"], point["y"])
    panel = page.locator("aside.panel")
    panel.locator(".estimated").wait_for()
    assert "from samples" in panel.locator(".estimated").inner_text()
    assert "multiprocessing.pool" in panel.locator("ol.stack").inner_text()
    assert "_handle_tasks" in panel.locator("ol.stack").inner_text()


def test_goroutines_and_profile_pages_mark_the_estimate(viewer, page) -> None:
    v, _ = viewer
    open_page(page, f"{v.url}#/goroutines")
    table = page.locator("table.groups")
    assert "other (est.)" in table.locator("thead").inner_text()
    row = table.locator("tbody tr", has=page.locator("a.group-link", has_text="_handle_tasks"))
    assert row.count() == 1
    assert row.locator("td .estimated").count() == 1  # the handler's estimated wait, marked
    assert "blocked: other (estimated from samples)" in page.locator(".legend").inner_text()

    open_page(page, f"{v.url}#/profile/other")
    assert "estimated from samples" in page.locator(".totals-line .estimated").inner_text()
    assert "estimated from samples" in page.locator(".legend").inner_text()
    top = page.locator("table.top tbody tr a.fn.estimated")
    assert top.count() == 1 and top.inner_text() == ESTIMATED_FRAME
    # the flame graph draws the estimated frame hatched in the profile's colour
    box = page.evaluate(
        """() => { const b = window.exectracer.page.flame.boxes.find((b) => b.node.estimated);
                   return b && { x: b.x, y: b.y, w: b.w }; }"""
    )
    assert box is not None and box["w"] > 30
    canvas = page.locator(".flamegraph canvas").bounding_box()
    x, y = canvas["x"] + box["x"] + box["w"] / 2, canvas["y"] + box["y"] + 4
    assert {BROWN, WHITE} <= set(page.evaluate(PIXELS, [".flamegraph canvas", x, y]))
    page.mouse.move(x, y)
    assert "estimated from samples" in page.locator(".flamegraph .tooltip .estimated").inner_text()
