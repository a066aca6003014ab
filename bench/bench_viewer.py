"""The viewer at scale, measured with a real headless browser (Debian's Chromium, driven by Playwright).

Part 1, a large trace: records ``workload_async.py`` (about 10 M events with
``--rounds 12500 --messages 5000``), starts ``exectracer view --no-browser``
and measures

* the first timeline paint: from the moment the server prints its URL (ready)
  to the first frame drawn from the server's answers for every visible lane;
* zoom and pan steps (wheel, W/S, A/D, drag), each from the input event to the
  frame drawn with the new window's spans (request + answer + draw), in the
  "by thread" and "by goroutine" arrangements;
* the server's peak RSS (``VmHWM``) per event.

Part 2, many goroutines: records a program that runs ``--tasks`` short asyncio
tasks and measures scrolling through their lanes (virtualized) in the
"by goroutine" arrangement.

::

    python bench/bench_viewer.py --rounds 12500 --messages 5000 --tasks 100000
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from bench_load import env, workload_trace  # noqa: E402

from support.viewer_browser import Viewer, launch, wait_settled  # noqa: E402

MANY_TASKS = """
import asyncio, sys
import exectracer

async def job(i):
    await asyncio.sleep(0.001 * (i % 7))

async def spawn(n):
    for start in range(0, n, 1000):
        await asyncio.gather(*(asyncio.create_task(job(i)) for i in range(start, min(n, start + 1000))))

with exectracer.trace(sys.argv[1]):
    asyncio.run(spawn(int(sys.argv[2])))
"""


def vm(pid: int, field: str) -> int:
    """A /proc/PID/status size in bytes (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def info(url: str) -> dict:
    with urllib.request.urlopen(url + "api/info", timeout=60) as r:
        return json.load(r)


class Steps:
    """Input steps on the open timeline, each timed in the page from the input event to the settled frame."""

    def __init__(self, page) -> None:
        self.page = page
        self.times: dict[str, list[float]] = {}
        self.walls: list[float] = []
        self.fetches: list[float] = []  # the visible lanes' request: sent to answer parsed
        self.draws: list[float] = []  # the settled frame's drawing
        box = page.locator("canvas.timeline-canvas").bounding_box()
        self.box = box
        self.x = box["x"] + box["width"] * 0.6
        self.y = box["y"] + min(box["height"] - 20, 160)

    def step(self, label: str, action) -> None:
        settled = self.page.evaluate("window.exectracer.page.timeline.stats.settled")
        t0 = time.perf_counter()
        action()
        wait_settled(self.page, settled + 1, timeout=60)
        self.walls.append(time.perf_counter() - t0)
        stats = self.page.evaluate("window.exectracer.page.timeline.stats")
        self.times.setdefault(label, []).append(stats["lastSettleMs"])
        self.fetches.append(stats["lastFetchMs"])
        self.draws.append(stats["lastDrawMs"])

    def wheel(self, dy: float, x: float | None = None) -> None:
        def act() -> None:
            self.page.mouse.move(self.x if x is None else x, self.y)
            self.page.mouse.wheel(0, dy)

        self.step("wheel zoom", act)

    def key(self, k: str, label: str) -> None:
        self.step(label, lambda: self.page.keyboard.press(k))

    def drag(self, dx: float) -> None:
        def act() -> None:
            self.page.mouse.move(self.x, self.y)
            self.page.mouse.down()
            self.page.mouse.move(self.x + dx, self.y, steps=1)
            self.page.mouse.up()

        self.step("drag pan", act)

    def scroll(self, dy: float) -> None:
        self.step(
            "scroll lanes", lambda: self.page.evaluate(f"window.exectracer.page.timeline.scroller.scrollTop += {dy}")
        )

    def all(self) -> list[float]:
        return [t for ts in self.times.values() for t in ts]


def summarize(label: str, values: list[float]) -> str:
    return f"{label}: {len(values)} steps, median {statistics.median(values):.0f} ms, max {max(values):.0f} ms"


def navigate(steps: Steps) -> None:
    """Zoom in from the whole trace to about 1/1000 of it, pan both ways, and zoom back out."""
    for i in range(8):
        steps.wheel(-300, x=steps.box["x"] + steps.box["width"] * (0.3 + 0.05 * i))  # x1.82 each
    for _ in range(4):
        steps.key("w", "W/S zoom")
    for _ in range(5):
        steps.key("d", "A/D pan")
    for _ in range(5):
        steps.key("a", "A/D pan")
    for dx in (300, -300, 200, -200):
        steps.drag(dx)
    for _ in range(4):
        steps.key("s", "W/S zoom")
    for _ in range(8):
        steps.wheel(300)


def large_trace(args: argparse.Namespace, tmp: str, playwright) -> dict:
    path = workload_trace(args, tmp)
    size = path.stat().st_size
    browser = launch(playwright)
    page = browser.new_page(viewport={"width": args.width, "height": args.height})
    page.goto("about:blank")
    viewer = Viewer(path, timeout=600)
    try:
        started = viewer.ready - viewer.began
        rss_ready = vm(viewer.pid, "VmRSS")
        t0 = time.perf_counter()
        page.goto(viewer.url + "#/timeline")
        wait_settled(page, 1, timeout=120)
        first_paint = time.perf_counter() - viewer.ready
        nav_to_paint = time.perf_counter() - t0
        events = info(viewer.url)["events"]
        lanes = page.evaluate("window.exectracer.page.timeline.neededKeys(0).length")
        by_thread = Steps(page)
        navigate(by_thread)
        settled = page.evaluate("window.exectracer.page.timeline.stats.settled")
        page.click("button[data-arr=goroutines]")
        wait_settled(page, settled + 1, timeout=60)
        by_goroutine = Steps(page)
        navigate(by_goroutine)
        for _ in range(5):
            by_goroutine.scroll(600)
        # a fresh page straight into the goroutine arrangement: every visible lane at once
        page.goto("about:blank")
        t0 = time.perf_counter()
        page.goto(viewer.url + "#/timeline?view=goroutines")
        wait_settled(page, 1, timeout=120)
        goroutine_paint = time.perf_counter() - t0
        goroutine_lanes = page.evaluate("window.exectracer.page.timeline.neededKeys(0).length")
        peak = vm(viewer.pid, "VmHWM")
    finally:
        viewer.stop()
        browser.close()
    return {
        "events": events,
        "size": size,
        "startup": started,
        "first_paint": first_paint,
        "nav_to_paint": nav_to_paint,
        "lanes": lanes,
        "goroutine_paint": goroutine_paint,
        "goroutine_lanes": goroutine_lanes,
        "by_thread": by_thread,
        "by_goroutine": by_goroutine,
        "peak": peak,
        "rss_ready": rss_ready,
    }


def many_tasks(args: argparse.Namespace, tmp: str, playwright) -> dict:
    script = Path(tmp) / "many_tasks.py"
    script.write_text(MANY_TASKS)
    path = Path(tmp) / "many.xtrace"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(script), str(path), str(args.tasks)], check=True, env=env(), timeout=1200)
    print(f"recorded {args.tasks} tasks in {time.perf_counter() - t0:.1f} s")
    browser = launch(playwright)
    page = browser.new_page(viewport={"width": args.width, "height": args.height})
    viewer = Viewer(path, timeout=600)
    try:
        t0 = time.perf_counter()
        page.goto(viewer.url + "#/timeline?view=goroutines")
        wait_settled(page, 1, timeout=120)
        first_paint = time.perf_counter() - t0
        rows = page.evaluate("window.exectracer.page.timeline.layout.rows.length")
        steps = Steps(page)
        height = page.evaluate("window.exectracer.page.timeline.layout.height")
        for i in range(10):  # jumps across the whole list, then small scrolls
            steps.step(
                "scroll jump",
                lambda i=i: page.evaluate(
                    f"window.exectracer.page.timeline.scroller.scrollTop = {height * (i * 0.097 + 0.02)}"
                ),
            )
        for _ in range(10):
            steps.scroll(400)
        page.mouse.move(steps.box["x"] + 60, steps.box["y"] + 300)  # over the lane names the wheel scrolls
        for _ in range(5):
            steps.step("wheel scroll", lambda: page.mouse.wheel(0, 800))
        events = info(viewer.url)["events"]
        peak = vm(viewer.pid, "VmHWM")
    finally:
        viewer.stop()
        browser.close()
    return {"rows": rows, "first_paint": first_paint, "steps": steps, "events": events, "peak": peak}


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12500, help="workload ping-pong rounds per pair")
    parser.add_argument("--messages", type=int, default=5000, help="workload echo messages per connection")
    parser.add_argument("--trace", type=Path, help="use this trace instead of recording the workload")
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks of part 2 (0 skips it)")
    parser.add_argument("--skip-large", action="store_true", help="skip part 1")
    parser.add_argument("--width", type=int, default=1600, help="browser viewport width")
    parser.add_argument("--height", type=int, default=1000, help="browser viewport height")
    args = parser.parse_args()
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        big = None if args.skip_large else large_trace(args, tmp, p)
        if big:
            print(f"trace: {big['events']:,} events, {big['size'] / 1e6:.1f} MB")
            print(f"server start-up (load + analysis) until it reports ready: {big['startup']:.2f} s")
            print(
                f"first timeline paint after ready: {big['first_paint']:.2f} s"
                f"  (navigation to paint {big['nav_to_paint']:.2f} s, {big['lanes']} lanes)"
            )
            print(
                f"a new page opened by goroutine: navigation to paint {big['goroutine_paint']:.2f} s"
                f" ({big['goroutine_lanes']} lanes)"
            )
            for name in ("by_thread", "by_goroutine"):
                steps: Steps = big[name]
                print(f"{name.replace('_', ' ')}: " + summarize("all", steps.all()))
                for label, values in steps.times.items():
                    print("   " + summarize(label, values))
                print("   of which " + summarize("request", steps.fetches) + "; " + summarize("draw", steps.draws))
            print(
                f"server peak RSS: {big['peak'] / 1e6:.0f} MB = {big['peak'] / big['events']:.0f} bytes/event "
                f"(at ready: {big['rss_ready'] / 1e6:.0f} MB)"
            )
        if args.tasks:
            many = many_tasks(args, tmp, p)
            print(
                f"many tasks: {many['rows']:,} rows ({many['events']:,} events),"
                f" first paint {many['first_paint']:.2f} s after navigation, "
                f"server peak RSS {many['peak'] / 1e6:.0f} MB"
            )
            print("   " + summarize("all", many["steps"].all()))
            for label, values in many["steps"].times.items():
                print("   " + summarize(label, values))
            print(
                "   of which "
                + summarize("request", many["steps"].fetches)
                + "; "
                + summarize("draw", many["steps"].draws)
            )


if __name__ == "__main__":
    main()
