"""GIL wait estimates: threads that want the GIL while a busy thread holds it."""

from __future__ import annotations

import threading
import time

import pytest

from exectracer.format.events import Kind
from exectracer.record.gil import gil_enabled

pytestmark = [
    pytest.mark.recorder,
    pytest.mark.skipif(not gil_enabled(), reason="this interpreter has no GIL"),
]


def spin(seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        sum(range(100))


def test_a_busy_thread_shows_as_gil_waits_of_others(record):
    def run():  # the sampler gets the GIL only some 20 times a second from two spinning threads
        busy = [threading.Thread(target=spin, args=(1.5,)) for _ in range(2)]
        for t in busy:
            t.start()
        for t in busy:
            t.join()

    rec = record(run)
    waits = rec.arg[rec.of(Kind.GIL_WAIT)]
    assert len(waits) >= 5
    assert waits.max() > 1_000_000  # milliseconds: the switch interval is 5 ms
    assert "GIL waits (GIL_WAIT)" in rec.trace.metadata["estimated"]


def test_an_idle_process_has_almost_no_gil_waits(record):
    rec = record(lambda: time.sleep(0.6))
    waits = rec.arg[rec.of(Kind.GIL_WAIT)]
    assert (waits > 1_000_000).sum() <= 2
