"""Helpers of the viewer's browser tests: a traced program, the viewer server, headless Chromium.

Chromium is Debian's (``.ci/system-packages`` installs it); Playwright drives it
and never downloads a browser. Run as a script to take the README's screenshot
of the demo trace's timeline::

    python tests/support/viewer_browser.py --screenshot docs/images/timeline.png
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
URL = re.compile(r"(http://127\.0\.0\.1:\d+/)")

XSS_TASK = "<img src=x onerror=alert(1)>"
XSS_THREAD = "<b>bold</b><script>alert(2)</script>"
XSS_LOG = "<script>alert(3)</script><img src=x onerror=alert(4)>"

# A program whose trace holds known facts: a task `waiter` blocked on an asyncio.Event that the task `setter`
# sets (so the wait's stack ends on WAIT_LINE and its waker is `setter`), a thread that waits on a lock, a
# garbage collection, hostile names, and the demo service for everything else (network, executors, user tasks).
PROGRAM = f"""
import asyncio, gc, sys, threading, time
import exectracer
from exectracer.examples import service

XSS_TASK = {XSS_TASK!r}
XSS_THREAD = {XSS_THREAD!r}
XSS_LOG = {XSS_LOG!r}


async def waiter(ev):
    await ev.wait()  # WAIT_LINE


async def setter(ev):
    await asyncio.sleep(0.05)
    ev.set()


async def hostile():
    with exectracer.task(XSS_TASK), exectracer.region(XSS_TASK):
        exectracer.log(XSS_TASK, XSS_LOG)
        await asyncio.sleep(0.01)


def worker(lock):
    with lock:
        time.sleep(0.005)


async def main():
    ev = asyncio.Event()
    lock = threading.Lock()
    lock.acquire()
    thread = threading.Thread(target=worker, args=(lock,), name=XSS_THREAD)
    thread.start()
    tasks = [asyncio.create_task(waiter(ev), name="waiter"), asyncio.create_task(setter(ev), name="setter"),
             asyncio.create_task(hostile(), name=XSS_TASK)]
    await asyncio.sleep(0.02)
    lock.release()
    await asyncio.gather(*tasks)
    await asyncio.to_thread(thread.join)
    gc.collect()


with exectracer.trace(sys.argv[1]):
    asyncio.run(main())
    service.main(0.5)
"""
WAIT_LINE = next(i for i, line in enumerate(PROGRAM.splitlines(), 1) if "# WAIT_LINE" in line)


def chromium_path() -> str:
    """Debian's Chromium (or $EXECTRACER_CHROMIUM)."""
    path = os.environ.get("EXECTRACER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        raise RuntimeError(f"no Chromium at {path}: run .ci/system-packages (Debian's chromium package)")
    return path


def launch(playwright):
    """Headless Chromium, as the tests and benchmarks use it."""
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)


def record_program(directory: Path) -> tuple[Path, Path]:
    """Trace PROGRAM; returns (trace, the program's file)."""
    script = directory / "traced_program.py"
    script.write_text(PROGRAM)
    trace = directory / "program.xtrace"
    subprocess.run([sys.executable, str(script), str(trace)], check=True, timeout=120, capture_output=True)
    return trace, script


class Viewer:
    """``exectracer view TRACE --no-browser --port 0`` in a subprocess, until :meth:`stop`."""

    def __init__(self, trace: Path, timeout: float = 120.0, cwd: Path | None = None) -> None:
        self.began = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "exectracer", "view", str(trace), "--no-browser", "--port", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        self.output: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"the viewer printed no URL in {timeout} s: {''.join(self.output)}") from None
            if line is None:
                self.stop()
                raise RuntimeError(f"the viewer exited: {''.join(self.output)}")
            self.output.append(line)
            m = URL.search(line)
            if m:
                self.url = m.group(1)
                self.ready = time.perf_counter()  # when the server reported ready
                self.ready_wall = time.time()
                return

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_until(page, expression: str, arg=None, timeout: float = 60.0):
    """Poll a JavaScript expression (a function of `arg`) until it is truthy; returns its value.

    Not ``page.wait_for_function``: that evaluates a string inside the page, which the viewer's
    Content-Security-Policy (no 'unsafe-eval') forbids; ``page.evaluate`` goes through the debugger.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout} s: {expression}")
        time.sleep(0.01)


def wait_settled(page, at_least: int = 1, timeout: float = 60.0) -> int:
    """Wait until the timeline has drawn every visible lane from fresh server answers `at_least` times."""
    return wait_until(
        page,
        "n => { const p = window.exectracer && window.exectracer.page;"
        " const s = p && p.timeline && p.timeline.stats.settled; return s >= n ? s : 0; }",
        at_least,
        timeout,
    )


def screenshot(out: Path, seconds: float = 1.0) -> None:
    """Record the demo, open its timeline by goroutine in headless Chromium, click a handler's wait for the
    metrics lock (the panel shows its stack and waker) and save a screenshot."""
    import json
    import urllib.parse
    import urllib.request

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "demo.xtrace"
        subprocess.run(
            [sys.executable, "-m", "exectracer", "demo", "--no-view", "--seconds", str(seconds), "-o", str(trace)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        viewer = Viewer(Path(trace.name), cwd=trace.parent)

        def api(path: str, **params) -> dict:
            with urllib.request.urlopen(f"{viewer.url}api/{path}?{urllib.parse.urlencode(params)}", timeout=30) as r:
                return json.load(r)

        try:
            info, lanes = api("info"), api("lanes")
            handlers = [
                g
                for g, f in zip(lanes["goroutines"]["id"], lanes["goroutines"]["function"], strict=True)
                if f >= 0 and lanes["functions"][f].endswith("Server.handle")
            ]
            lane = api("spans", lanes=f"g:{handlers[0]}", start=0, end=info["duration_ns"], width=10000)["lanes"][
                f"g:{handlers[0]}"
            ]
            sync = info["states"].index("sync")
            waits = [
                (s, e)
                for s, e, st, n in zip(lane["start"], lane["end"], lane["state"], lane["count"], strict=True)
                if st == sync and n == 1
            ]
            start, end = max(waits, key=lambda w: w[1] - w[0])
            with sync_playwright() as p:
                browser = launch(p)
                page = browser.new_page(viewport={"width": 1400, "height": 820})
                page.goto(
                    viewer.url + f"#/timeline?view=goroutines&start={max(0, start - 12 * (end - start))}"
                    f"&end={end + 8 * (end - start)}"
                )
                wait_settled(page)
                point = page.evaluate(
                    f"window.exectracer.page.timeline.pointFor('g:{handlers[0]}', {(start + end) // 2})"
                )
                page.mouse.click(point["x"], point["y"])
                page.locator("aside.panel .waker").wait_for()
                settled = page.evaluate("window.exectracer.page.timeline.stats.settled")
                wait_settled(page, settled)
                page.mouse.move(5, 5)  # no tooltip in the picture
                time.sleep(0.3)  # the panel's width settles the canvas size; let the last frame draw
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out))
                browser.close()
        finally:
            viewer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--seconds", type=float, default=1.0, help="how long the demo runs")
    args = parser.parse_args()
    screenshot(args.screenshot, args.seconds)
    print(f"wrote {args.screenshot}")


if __name__ == "__main__":
    main()
