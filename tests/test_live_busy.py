"""A capture of a busy threaded server: it completes, and the server answers every request while it runs.

The Flask example under waitress (4 threads) in its own process, with
``exectracer.wsgi.TraceMiddleware``, asked by more client threads than it has
threads, on keep-alive connections, from before a capture begins until after
it ends: the capture's thread is one of waitress's, taken from the requests.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse

import exectracer

from support.live import Reply, get, running_example
from support.waiting import wait_for

CLIENTS = 8  # twice waitress's threads: requests queue, the server is busy
MOST_REQUESTS = 20_000  # per client: the load is bounded even if the capture never ends


class Client(threading.Thread):
    """Asks ``url`` on one keep-alive connection until ``stop`` is set; every request is counted, answered or not."""

    def __init__(self, url: str, stop: threading.Event) -> None:
        super().__init__(name="client", daemon=True)
        self.url = urllib.parse.urlsplit(url)
        self.stop = stop
        self.sent = 0
        self.answered: list[float] = []  # when each 200 arrived (perf_counter)
        self.asked: list[float] = []  # when each of those was sent
        self.failures: list[str] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=120)
        try:
            while not self.stop.is_set() and self.sent < MOST_REQUESTS:
                self.sent += 1
                asked = time.perf_counter()
                try:
                    conn.request("GET", self.url.path)
                    response = conn.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException) as exc:  # a reset, a closed connection, a timeout
                    self.failures.append(repr(exc))
                    return
                if response.status != 200 or not body.startswith(b'{"count"'):
                    self.failures.append(f"status {response.status}: {body[:80]!r}")
                    return
                self.answered.append(time.perf_counter())
                self.asked.append(asked)
        finally:
            conn.close()


def test_a_capture_of_a_busy_waitress_server_completes_and_every_request_is_answered():
    for url in running_example("flask", "--threads", "4"):
        clients, reply = capture_under_load(url, seconds=1)
        answered = sum(len(c.answered) for c in clients)
        assert not any(c.is_alive() for c in clients), "a client still waits for an answer"
        assert [f for c in clients for f in c.failures] == []
        assert sum(c.sent for c in clients) == answered  # every request sent was answered with 200
        assert get(url + "/").status == 200  # and the server still answers

    assert reply.status == 200, reply.text
    trace = exectracer.load(reply.body, strict=True)  # a whole, valid trace (END chunk included)
    assert trace.duration_ns >= 1e9
    handlers = {t.id for t in trace.threads if (t.name or "").startswith("waitress-")}
    assert len(handlers) == 4  # waitress's threads, the capture's among them
    is_view = trace.regions.name == "view"
    views = trace.regions.g[is_view]
    assert set(views.tolist()) <= handlers  # each request's view, on the thread that handled it
    if len(views):  # (a starved server may have answered none while the capture ran)
        # none lost: each request asked after the first view began and answered before the last one ended (the
        # same clock: perf_counter is the system's monotonic clock) ran its view in the trace
        first, last = trace.regions.begin_ns[is_view].min() / 1e9, trace.regions.end_ns[is_view].max() / 1e9
        inside = sum(first < a and b < last for c in clients for a, b in zip(c.asked, c.answered, strict=True))
        assert len(views) >= inside


def capture_under_load(url: str, seconds: float) -> tuple[list[Client], Reply]:
    """A capture of ``seconds`` asked while CLIENTS ask ``/work``, until each has had an answer after it:
    (the clients, stopped; the capture's reply)."""
    stop = threading.Event()
    clients = [Client(url + "/work", stop) for _ in range(CLIENTS)]
    for client in clients:
        client.start()
    try:
        wait_for(lambda: all(c.answered or c.failures for c in clients), "a first answer to every client")
        reply = get(f"{url}/debug/pprof/trace?seconds={seconds}", timeout=300)
        ended = time.perf_counter()
        wait_for(
            lambda: all(c.failures or (c.answered and c.answered[-1] > ended) for c in clients),
            "an answer to every client after the capture",
            timeout=120,
        )
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=300)
    return clients, reply
