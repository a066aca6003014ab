"""The integrations under real servers on loopback: Starlette under uvicorn (ASGI), Flask under waitress (WSGI), aiohttp.

Each server is the example of ``exectracer.examples.web``, in its own
process, with the token ``tok`` and captures capped at one second.
"""

from __future__ import annotations

import threading
import time

import pytest

import exectracer

from support.live import Load, get, running_example

TRACE = "/debug/pprof/trace"
FLIGHT = "/debug/pprof/flight"
TOKEN = "tok"
# what handles a request: an asyncio task started in the server's package, or a thread of the server
HANDLERS = {"starlette": ("task", "uvicorn."), "flask": ("thread", "waitress-"), "aiohttp": ("task", "aiohttp.")}


@pytest.fixture(scope="module", params=sorted(HANDLERS))
def server(request):
    """(framework, URL) of a running example server."""
    for url in running_example(request.param, "--token", TOKEN, "--max-seconds", "1", "--threads", "4"):
        yield request.param, url


def test_capture_during_requests_holds_the_request_handlers(server):
    framework, url = server
    with Load(url + "/work", concurrency=4) as load:
        time.sleep(0.2)
        began = time.perf_counter()
        reply = get(f"{url}{TRACE}?seconds=1e9", token=TOKEN)  # capped to the server's one second
        ended = time.perf_counter()

    assert reply.status == 200, reply.text
    assert reply.headers["x-exectracer-seconds"] == "1.0" and "x-exectracer-capped" in reply.headers
    assert not load.failures
    served = load.between(began + 0.1, ended - 0.1)
    assert served > 20  # the service kept serving while it was traced
    trace = exectracer.load(reply.body, strict=True)
    assert 1e9 <= trace.duration_ns < 3e9
    kind, prefix = HANDLERS[framework]
    handlers = {t.id for t in (trace.tasks if kind == "task" else trace.threads)
                if (t.start_function if kind == "task" else t.name or "").startswith(prefix)}
    views = trace.regions.g[trace.regions.name == "view"]
    assert len(views) >= served  # every request served inside the capture ran its view in the trace
    assert set(views.tolist()) <= handlers


def test_a_second_capture_gets_409(server):
    framework, url = server
    first = {}
    capture = threading.Thread(target=lambda: first.update(reply=get(f"{url}{TRACE}?seconds=0.6", token=TOKEN)))
    capture.start()
    time.sleep(0.3)
    second = get(f"{url}{TRACE}?seconds=0.1", token=TOKEN)
    capture.join()

    assert second.status == 409 and "a trace capture is already running" in second.text
    assert first["reply"].status == 200
    exectracer.load(first["reply"].body, strict=True)


def test_refusals(server):
    framework, url = server
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
            time.sleep(1.0)
            asked = time.perf_counter()
            snapshot = get(url + FLIGHT)
            capture = get(f"{url}{TRACE}?seconds=0.1")

    assert snapshot.status == 200, snapshot.text
    assert capture.status == 409 and "flight recorder" in capture.text
    trace = exectracer.load(snapshot.body, strict=True)
    assert len(trace.regions.g[trace.regions.name == "view"]) >= load.between(0, asked) > 20
    assert trace.duration_ns >= 1e9
