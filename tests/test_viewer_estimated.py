"""The viewer shows a wait no hook saw, estimated from samples: hatched on the timeline, said so in the panel.

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
BROWN = (0x8D, 0x6E, 0x63)  # js/colors.js: other, and other_estimated's stripes
WHITE = (0xFF, 0xFF, 0xFF)


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


def api(url: str, path: str, **params) -> dict:
    with urllib.request.urlopen(f"{url}api/{path}?{urllib.parse.urlencode(params)}", timeout=30) as r:
        return json.load(r)


def test_estimated_wait_is_hatched_and_explained(viewer) -> None:
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

    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{v.url}#/timeline?view=goroutines&start={start}&end={end}")
            wait_until(page, "() => window.exectracer && window.exectracer.ready")
            wait_settled(page)
            assert "blocked: other (estimated from samples)" in page.locator(".legend").inner_text()
            point = page.evaluate(f"window.exectracer.page.timeline.pointFor('g:{g}', {(start + end) / 2})")
            assert point is not None
            colours = set(
                page.evaluate(
                    """([x, y]) => {
                        const t = window.exectracer.page.timeline;
                        const r = t.canvas.getBoundingClientRect(), d = window.devicePixelRatio;
                        const px = t.ctx.getImageData(Math.round((x - r.left) * d), Math.round((y - r.top) * d), 12, 4);
                        const out = [];
                        for (let i = 0; i < px.data.length; i += 4) out.push(px.data.slice(i, i + 3).join(","));
                        return out;
                    }""",
                    [point["x"], point["y"]],
                )
            )
            assert {",".join(map(str, BROWN)), ",".join(map(str, WHITE))} <= colours  # stripes, not a solid fill
            page.mouse.click(point["x"], point["y"])
            panel = page.locator("aside.panel")
            panel.locator(".estimated").wait_for()
            assert "from samples" in panel.locator(".estimated").inner_text()
            assert "multiprocessing.pool.Pool._handle_tasks" in panel.locator("ol.stack").inner_text()
            assert problems == []
        finally:
            browser.close()
