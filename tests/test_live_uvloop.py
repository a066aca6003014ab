"""A live capture of a Starlette service under uvicorn's default settings: uvloop and httptools.

The example server (``exectracer.examples.web starlette-standard``) runs in
its own process with ``TraceMiddleware``; clients keep it busy over loopback
while ``/debug/pprof/trace`` records it. The capture must hold the request
handlers as tasks, with their steps and their waits.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import exectracer
from exectracer.format.events import CATEGORY_SHIFT, WAKER_SHIFT, Category, Kind, Waker

from support.live import Load, get, running_example
from support.waiting import wait_for

pytest.importorskip("uvloop")
pytest.importorskip("httptools")

TOKEN = "tok"
HANDLER = "uvicorn.protocols.http.httptools_impl.RequestResponseCycle.run_asgi"


@pytest.fixture(scope="module")
def url():
    yield from running_example("starlette-standard", "--token", TOKEN, "--max-seconds", "1")


def capture_under_load(url: str) -> exectracer.Trace:
    with Load(url + "/nap", concurrency=4) as load:
        wait_for(lambda: load.done, "a first response")
        reply = get(f"{url}/debug/pprof/trace?seconds=1", token=TOKEN)
        ended = time.perf_counter()
        wait_for(lambda: load.between(ended, time.perf_counter()), "a response after the capture")
    assert reply.status == 200, reply.text
    assert not load.failures
    return exectracer.load(reply.body, strict=True)


def test_capture_holds_request_handler_tasks_with_their_waits(url):
    trace = capture_under_load(url)
    assert [loop.class_name for loop in trace.loops] == ["uvloop.Loop"]  # uvicorn chose uvloop
    handlers = {t.id for t in trace.tasks if t.start_function == HANDLER}
    assert handlers, sorted({t.start_function for t in trace.tasks})
    ev = trace.events
    kind, arg, g = ev.kind, ev.arg.astype(np.int64), ev.g
    # every request served in the capture ran its view inside a handler task, but for steps uvloop had queued before
    # the capture began: those run unseen (recording.md), their regions on the loop's thread, before any seen step
    regions = trace.regions
    views = regions.g[regions.name == "view"]
    unseen = ~np.isin(views, list(handlers))
    thread_gs = {t.id for t in trace.threads}
    first_step = ev.ts[kind == Kind.TASK_STEP].min()
    assert len(views) and set(views[unseen].tolist()) <= thread_gs
    assert (regions.begin_ns[regions.name == "view"][unseen] < first_step).all()
    # the handlers' steps, and their millisecond naps: sleep waits in the view, woken by the timer
    in_handlers = np.isin(g, list(handlers))
    seen = np.count_nonzero(~unseen)
    # (a view's step after its nap may fall after the capture's end: one step each, at least)
    assert np.count_nonzero(in_handlers & (kind == Kind.TASK_STEP)) >= seen
    naps = 0
    for i in np.flatnonzero(in_handlers & (kind == Kind.TASK_SUSPEND)):
        stack = trace.stacks[int(arg[i]) >> CATEGORY_SHIFT]
        if any(frame.function.endswith("nap_view") for frame in stack):
            assert int(arg[i]) & ((1 << CATEGORY_SHIFT) - 1) == Category.SLEEP
            naps += 1
    assert naps >= seen - len(handlers)  # a view that began before the capture has its nap seen or not
    ready = np.flatnonzero(in_handlers & (kind == Kind.TASK_READY))
    wakers = {int(a) & ((1 << WAKER_SHIFT) - 1) for a in arg[ready]}
    assert Waker.TIMER in wakers  # woken from their naps
    assert Waker.IO in wakers  # handler tasks made and woken by httptools' callbacks on a request's bytes
    # what the recorder cannot see on uvloop is said in the capture
    assert any("uvloop" in note for note in trace.lost.unseen)
    assert not trace.lost.hook_errors


def test_capture_command_says_what_was_not_seen(url, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "cap.xtrace"
    done = subprocess.run(
        [sys.executable, "-m", "exectracer", "capture", url, "--seconds", "0.3", "-o", str(out), "--token", TOKEN],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "not seen by the recorder: uvloop" in done.stdout + done.stderr
    assert exectracer.load(out).tasks
