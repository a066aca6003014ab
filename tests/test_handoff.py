"""Handing the GIL to the tracer's threads: the hand-over itself, and a busy loop that no longer starves them."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Callable

import numpy as np
import pytest

import exectracer
from exectracer.format.events import CATEGORY_SHIFT, Kind, ThreadState
from exectracer.record import handoff as handoff_module
from exectracer.record import native, recorder
from exectracer.record import sampler as sampler_module
from exectracer.record.handoff import COLLECTOR, NEVER, SAMPLER, WRITER, GilHandoff

from support.recorded import Recorded

pytestmark = pytest.mark.recorder


def test_due_is_the_earliest_plan_and_finishing_clears_it() -> None:
    h = GilHandoff()
    assert h.due == NEVER
    h.plan(SAMPLER, 500)
    h.plan(COLLECTOR, 300)
    assert h.due == 300
    h.finished(COLLECTOR)
    assert h.due == 500
    h.finished(SAMPLER)
    assert h.due == NEVER


def test_a_busy_thread_waits_until_the_tracer_thread_is_done() -> None:
    h = GilHandoff()
    h.plan(SAMPLER, time.perf_counter_ns())
    done_at: list[int] = []

    def tracer_thread() -> None:
        time.sleep(0.0005)
        done_at.append(time.perf_counter_ns())
        h.finished(SAMPLER)

    worker = threading.Thread(target=tracer_thread)
    worker.start()
    h.give_way()
    resumed = time.perf_counter_ns()
    worker.join()
    assert done_at and resumed >= done_at[0]
    assert h.due == NEVER


def test_a_thread_that_does_not_come_is_waited_for_briefly_then_less_often() -> None:
    h = GilHandoff()
    h.plan(COLLECTOR, time.perf_counter_ns())  # say it is still compressing
    waits = []
    for _ in range(3):
        t0 = time.perf_counter_ns()
        h.give_way()
        waits.append(time.perf_counter_ns() - t0)
        assert h.due - time.perf_counter_ns() > handoff_module.BACKOFF_NS // 2, "no giving way again right away"
        h.plan(COLLECTOR, 0)
    assert min(waits) >= handoff_module.MAX_WAIT_S * 1e9 * 0.9
    # each wait that timed out doubles the back-off, up to a limit
    assert h.due >= time.perf_counter_ns() + 3 * handoff_module.BACKOFF_NS


def test_without_a_gil_nothing_is_ever_due(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handoff_module, "gil_enabled", lambda: False)
    h = GilHandoff()
    h.plan(SAMPLER, 0)
    assert h.due == NEVER


async def _ping_pong(seconds: float) -> None:
    """Tasks passing a token through queues as fast as they can: the loop never blocks in select."""
    deadline = time.perf_counter() + seconds

    async def player(inbox: asyncio.Queue, outbox: asyncio.Queue) -> None:
        while time.perf_counter() < deadline:
            await outbox.put(await inbox.get())
        await outbox.put(None)

    players = []
    for _ in range(10):
        a, b = asyncio.Queue(), asyncio.Queue()
        players += [asyncio.create_task(player(a, b)), asyncio.create_task(player(b, a))]
        await a.put(1)
    await asyncio.wait(players)


def test_a_busy_event_loop_does_not_starve_the_sampler(record: Callable[..., Recorded]) -> None:
    seconds = 1.0
    rec = record(lambda: asyncio.run(_ping_pong(seconds)), sample_interval=0.01)
    loop_thread = int(rec.arg[rec.of(Kind.LOOP_START)[0]])
    samples = rec.ts[rec.of(Kind.THREAD_SAMPLE, loop_thread)]
    loop_steps = rec.of(Kind.TASK_STEP)
    assert len(loop_steps) > 1000, "the loop was busy"
    busy = samples[(samples >= rec.ts[loop_steps[0]]) & (samples <= rec.ts[loop_steps[-1]])]
    # 100 Hz for about a second: without the hand-over the sampler got about a fifth of its ticks
    assert len(busy) >= 50, f"{len(busy)} samples of the busy loop's thread"
    gaps = np.diff(busy)
    assert np.median(gaps) < 20_000_000


def _one_long_step(seconds: float) -> None:
    """Run Python for ``seconds`` without giving the loop back: no select at all."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass


def _loop_samples(rec: Recorded) -> tuple[int, np.ndarray]:
    """The event loop thread's goroutine and the indices of its THREAD_SAMPLEs."""
    loop_thread = int(rec.arg[rec.of(Kind.LOOP_START)[0]])
    return loop_thread, rec.of(Kind.THREAD_SAMPLE, loop_thread)


@pytest.mark.parametrize("thread_waits", [False, True], ids=["give-way", "wait-hook"])
def test_a_busy_loop_takes_the_samples_itself_then_hands_them_back(
    record: Callable[..., Recorded], monkeypatch: pytest.MonkeyPatch, thread_waits: bool
) -> None:
    """Busy, the loop samples at its select(0) (as it gives way, or in the select's wait hook where thread
    waits are recorded); idle or stuck in one long step, the sampler's thread samples again."""
    takers: list[tuple[int, int]] = []  # (when, the thread that took the sample)
    take = sampler_module.Sampler._sample

    def logged(self: sampler_module.Sampler, *args: object) -> None:
        takers.append((time.perf_counter_ns(), threading.get_ident()))
        take(self, *args)

    monkeypatch.setattr(sampler_module.Sampler, "_sample", logged)
    marks: dict[str, int] = {}

    async def program() -> None:
        marks["loop_thread"] = threading.get_ident()
        await _ping_pong(0.6)
        marks["busy_end"] = time.perf_counter_ns()
        await asyncio.sleep(0.3)  # idle in select
        marks["idle_end"] = time.perf_counter_ns()
        _one_long_step(0.3)
        marks["stuck_end"] = time.perf_counter_ns()

    rec = record(lambda: asyncio.run(program()), sample_interval=0.01, thread_waits=thread_waits)
    busy_takers = [ident for when, ident in takers if when <= marks["busy_end"]]
    on_loop = busy_takers.count(marks["loop_thread"])
    assert on_loop > 0.5 * len(busy_takers), f"while busy, the loop took {on_loop} of {len(busy_takers)} samples"
    _, indices = _loop_samples(rec)
    ts = rec.ts[indices]
    busy = indices[ts <= marks["busy_end"]]
    if os.path.isdir("/proc/self/task"):  # taken on the loop's thread, the sample says running
        running = np.count_nonzero((rec.arg[busy] & ((1 << CATEGORY_SHIFT) - 1)) == ThreadState.RUNNING)
        assert running > 0.5 * len(busy), f"{running} of {len(busy)} samples of the busy loop say running"
    idle = ts[(ts > marks["busy_end"]) & (ts <= marks["idle_end"])]
    stuck = ts[(ts > marks["idle_end"]) & (ts <= marks["stuck_end"])]
    # 100 Hz: about 30 samples in each phase; the one long step loses the first few to the watchdog
    assert len(idle) >= 15, f"{len(idle)} samples while the loop was idle"
    assert len(stuck) >= 10, f"{len(stuck)} samples while the loop ran one long step"
    for i in indices:  # a sample the loop took of itself shows the loop, not the sampler
        frames = rec.trace.stacks.get(int(rec.arg[i]) >> CATEGORY_SHIFT, [])
        assert not any(f.function.endswith(("sample_inline", "_walk", "_sample")) for f in frames)


def test_taking_the_ticks_back_from_a_stuck_loop_is_no_gil_wait(record: Callable[..., Recorded]) -> None:
    """A busy loop that goes straight into one long step: the sampler's thread sees the samples stop and
    takes the ticks back; that its sleep ended ticks after the due sample is no GIL wait of its own."""
    marks: dict[str, int] = {}
    interval = 0.04  # long, so that a wait counted from the due sample stands far above any real GIL wait

    async def program() -> None:
        await _ping_pong(0.4)
        marks["busy_end"] = time.perf_counter_ns()
        _one_long_step(0.6)
        marks["stuck_end"] = time.perf_counter_ns()

    rec = record(lambda: asyncio.run(program()), sample_interval=interval)
    _, indices = _loop_samples(rec)
    ts = rec.ts[indices]
    assert np.count_nonzero((ts > marks["busy_end"]) & (ts <= marks["stuck_end"])) >= 6, "the stuck loop was sampled again"
    probe = rec.of(Kind.GIL_WAIT, 0)
    stuck = rec.arg[probe][(rec.ts[probe] > marks["busy_end"]) & (rec.ts[probe] <= marks["stuck_end"])]
    # the GIL comes within a few switch intervals (5 ms each, the writer's threads asking too);
    # a wait counted from the due sample would be two ticks (80 ms) or more
    assert len(stuck) > 0 and stuck.max() < 50_000_000, f"GIL wait estimates while the loop was stuck: {sorted(stuck)[-3:]}"


@pytest.mark.skipif(native.speedups() is None, reason="the C event store wakes the collector by its count")
def test_a_busy_event_loop_does_not_starve_the_collector(tmp_path) -> None:
    """The store's count wakes the collector and tells the handoff, so the busy loop gives way: what is stored stays within a few chunks."""
    chunk = 8192
    most = 0

    async def busy(seconds: float) -> None:
        nonlocal most
        rows = recorder.current().events
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            await asyncio.gather(*[asyncio.sleep(0) for _ in range(50)])
            most = max(most, len(rows))

    exectracer.start(tmp_path / "t.xtrace", sample_interval=0, chunk_events=chunk)
    try:
        asyncio.run(busy(0.5))  # about a million events: a hundred chunks' worth
    finally:
        totals = exectracer.stop()
    assert totals["events"] > 50 * chunk
    # without telling the handoff, the collector waited for its planned time (the flush interval)
    # while the events piled up: over a hundred chunks' worth; now a few (under CPU load, up to 8 seen)
    assert most <= 16 * chunk, f"{most} events stored at once ({most / chunk:.1f} chunks' worth)"
