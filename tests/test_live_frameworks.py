"""The integrations under real servers on loopback: Starlette under uvicorn (ASGI), Flask under waitress (WSGI),
aiohttp.

Each server is the example of ``exectracer.examples.web``, in its own
process, with the token ``tok`` and captures capped at one second.
"""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

import exectracer
from exectracer.format.events import Kind

from support.live import Load, get, running_example
from support.waiting import wait_for

TRACE = "/debug/pprof/trace"
FLIGHT = "/debug/pprof/flight"
TOKEN = "tok"
# what handles a request: an asyncio task started in the server's package, or a thread of the server
HANDLERS = {
    "starlette": ("task", "uvicorn."),
    "starlette-standard": ("task", "uvicorn."),  # uvicorn's defaults: uvloop and httptools
    "flask": ("thread", "waitress-"),
    "aiohttp": ("task", "aiohttp."),
}


@pytest.fixture(scope="module", params=sorted(HANDLERS))
def server(request):
    """(framework, URL) of a running example server."""
    for url in running_example(request.param, "--token", TOKEN, "--max-seconds", "1", "--threads", "4"):
        yield request.param, url


def test_capture_during_requests_holds_the_request_handlers(server):
    framework, url = server
    with Load(url + "/work", concurrency=4) as load:
        wait_for(lambda: load.done, "a first response")
        began = time.perf_counter()
        reply = get(f"{url}{TRACE}?seconds=1e9", token=TOKEN)  # capped to the server's one second
        ended = time.perf_counter()
        wait_for(lambda: load.between(ended, time.perf_counter()), "a response after the capture")

    assert reply.status == 200, reply.text
    assert reply.headers["x-exectracer-seconds"] == "1.0" and "x-exectracer-capped" in reply.headers
    assert not load.failures
    served = load.between(began + 0.1, ended - 0.1)
    # the service kept serving while it was traced: responses all through the capture, never a pause as long as it
    # (a server that stopped for the capture would answer nothing in it, then all at once)
    during = [began] + sorted(t for t in load.done if began <= t <= ended) + [min(t for t in load.done if t > ended)]
    assert served > 0 and max(b - a for a, b in itertools.pairwise(during)) < 1.0, during
    trace = exectracer.load(reply.body, strict=True)
    assert 1e9 <= trace.duration_ns <= (ended - began) * 1e9
    kind, prefix = HANDLERS[framework]
    handlers = {
        t.id
        for t in (trace.tasks if kind == "task" else trace.threads)
        if (t.start_function if kind == "task" else t.name or "").startswith(prefix)
    }
    views = trace.regions.g[trace.regions.name == "view"]
    assert len(views) >= served  # every request served inside the capture ran its view in the trace
    outside = ~np.isin(views, list(handlers))
    if trace.loops and trace.loops[0].class_name == "uvloop.Loop":
        # but for steps uvloop had queued before the capture began: they run unseen (recording.md), on the loop's
        # thread, before any seen step
        first_step = trace.events.ts[trace.events.kind == Kind.TASK_STEP].min()
        assert set(views[outside].tolist()) <= {t.id for t in trace.threads}
        assert (trace.regions.begin_ns[trace.regions.name == "view"][outside] < first_step).all()
    else:
        assert not outside.any()


def test_a_second_capture_gets_409(server):
    _framework, url = server
    replies = []

    # two captures asked at once, from two threads: whichever the server begins first runs (up to the server's
    # one second, the other's request arriving meanwhile), the other is refused
    def capture() -> None:
        replies.append(get(f"{url}{TRACE}?seconds=1", token=TOKEN))

    captures = [threading.Thread(target=capture) for _ in range(2)]
    for capture in captures:
        capture.start()
    for capture in captures:
        capture.join()

    refused, taken = sorted(replies, key=lambda reply: reply.status, reverse=True)
    assert refused.status == 409 and "a trace capture is already running" in refused.text
    assert taken.status == 200
    exectracer.load(taken.body, strict=True)


def test_refusals(server):
    _framework, url = server
    assert get(f"{url}{TRACE}?seconds=0.1").status == 401
    assert get(f"{url}{TRACE}?seconds=0.1", token="wrong").status == 401
    for query in ("seconds=-1", "seconds=abc"):
        reply = get(f"{url}{TRACE}?{query}", token=TOKEN)
        assert reply.status == 400 and reply.text.startswith("400 Bad Request: seconds must be")
    assert get(f"{url}{TRACE}", token=TOKEN, method="POST").status == 405
    off = get(url + FLIGHT, token=TOKEN)
    assert off.status == 404 and "no flight recorder" in off.text
    assert get(url + "/").text == "hello\n"  # the application still answers its own paths


@pytest.mark.parametrize("framework", sorted(HANDLERS))
def test_flight_recorder_endpoint(framework):
    for url in running_example(framework, "--flight", "--flight-min-age", "5"):
        with Load(url + "/work", concurrency=2) as load:
            second = time.perf_counter() + 1.0
            wait_for(lambda second=second: len(load.done) > 20 and time.perf_counter() >= second, "20 responses, 1 s")
            asked = time.perf_counter()
            snapshot = get(url + FLIGHT)
            capture = get(f"{url}{TRACE}?seconds=0.1")

    assert snapshot.status == 200, snapshot.text
    assert capture.status == 409 and "flight recorder" in capture.text
    trace = exectracer.load(snapshot.body, strict=True)
    assert len(trace.regions.g[trace.regions.name == "view"]) >= load.between(0, asked) > 20
    assert trace.duration_ns >= 1e9
