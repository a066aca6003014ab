"""Thread lifecycles and garbage collections, from real threads and real collections."""

from __future__ import annotations

import gc
import threading
import time

import pytest

from exectracer.format.events import KIND_MASK, Kind
from exectracer.record import gc_hooks
from exectracer.record.gc_hooks import HeapProbe
from exectracer.record.recorder import Recorder

from support.waiting import wait_for

pytestmark = pytest.mark.recorder


def test_thread_created_started_renamed_ended(record):
    def work():
        time.sleep(0.01)
        threading.current_thread().name = "renamed-worker"

    def run():
        t = threading.Thread(target=work, name="worker")
        t.start()
        t.join()

    rec = record(run)
    (thread,) = [t for t in rec.trace.threads if t.start_function and t.start_function.endswith("<locals>.work")]
    main = next(t for t in rec.trace.threads if t.name == "MainThread")
    assert thread.parent_id == main.id
    assert thread.name == "renamed-worker"
    assert thread.native_id and thread.native_id != main.native_id
    assert thread.created_ns <= thread.started_ns < thread.ended_ns
    names = [rec.trace.strings[int(a)] for a in rec.arg[rec.of(Kind.THREAD_NAME, thread.id)]]
    assert names == ["worker", "renamed-worker"]


def test_thread_subclass_run_is_its_start_function(record):
    class Worker(threading.Thread):
        def run(self):
            time.sleep(0.001)

    def run():
        w = Worker()
        w.start()
        w.join()

    rec = record(run)
    assert any((t.start_function or "").endswith("Worker.run") for t in rec.trace.threads)


def test_tracer_threads_are_not_in_the_trace(record):
    rec = record(lambda: time.sleep(0.15), flush_interval=0.05)
    names = {t.name for t in rec.trace.threads}
    assert not any(name.startswith("exectracer") for name in names)
    assert "MainThread" in names


def test_gc_collect_is_recorded_with_generation_and_heap(record):
    class Node:
        def __init__(self):
            self.me = self

    def run():
        gc.disable()  # keep the cycles for the explicit collection
        try:
            for _ in range(1000):
                Node()
            gc.collect()
            gc.collect(1)
        finally:
            gc.enable()

    rec = record(run)
    starts, ends = rec.of(Kind.GC_START), rec.of(Kind.GC_END)
    assert len(starts) == len(ends) >= 2
    generations = [int(rec.arg[i]) for i in starts]
    assert 2 in generations and 1 in generations
    full = starts[generations.index(2)]
    end = ends[ends > full][0]
    assert int(rec.arg[end]) >= 1000  # the cycles were collected
    assert rec.ts[end] >= rec.ts[full]
    blocks = rec.arg[rec.of(Kind.HEAP_BLOCKS)]
    rss = rec.arg[rec.of(Kind.HEAP_RSS)]
    assert len(blocks) == len(rss) >= 2 and blocks.min() > 0 and rss.min() > 0  # at least at start and stop


def test_heap_figures_keep_to_their_share_of_the_time():
    probe = HeapProbe()
    try:
        now = time.perf_counter_ns()
        first = probe.events(7, now)
        assert [Kind(code & KIND_MASK) for code in first[0::3]] == [Kind.HEAP_BLOCKS, Kind.HEAP_RSS]
        assert first[1::3] == (now, now) and first[2::3] == (7, 7)
        # the next reading waits for 1 / MAX_HEAP_SHARE times what this one took
        assert probe.next_ns > now
        assert probe.events(7, now + 1) == ()
        assert len(probe.events(7, now + 1, force=True)) == 6
        assert len(probe.events(7, probe.next_ns)) == 6
    finally:
        probe.close()


def test_heap_sampled_at_least_once_a_second(record, monkeypatch: pytest.MonkeyPatch):
    """Every tick (heap_interval, 1 s) reads the heap, with no collection to read it otherwise."""
    # a reading's cost is counted in wall time: on a loaded machine one stretched to 2 ms would rightly keep
    # the next 2 s free of readings (the test above checks that share); here each tick may read
    monkeypatch.setattr(gc_hooks, "MAX_HEAP_SHARE", 1.0)
    ticks = []
    tick = Recorder._tick
    monkeypatch.setattr(Recorder, "_tick", lambda self: (tick(self), ticks.append(time.perf_counter_ns())))
    gc.disable()
    try:
        rec = record(lambda: wait_for(lambda: len(ticks) >= 2, "two ticks", interval=0.05), flush_interval=0.2)
    finally:
        gc.enable()
    times = rec.ts[rec.of(Kind.HEAP_BLOCKS)]
    assert len(times) >= 4  # at the start, at both ticks, at the stop
    # no tick went without its reading: readings are a tick apart, however late each tick came
    assert (times[1:] - times[:-1]).max() < 2e9
