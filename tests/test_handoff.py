"""Handing the GIL to the tracer's threads: the hand-over itself, and a busy loop that no longer starves them."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

import exectracer
from exectracer.format.events import CATEGORY_SHIFT, Kind, ThreadState
from exectracer.record import handoff as handoff_module
from exectracer.record import native, recorder
from exectracer.record import sampler as sampler_module
from exectracer.record.handoff import COLLECTOR, NEVER, SAMPLER, GilHandoff

from support.cpu import cpu_waits, waited_for_a_cpu
from support.recorded import Recorded
from support.waiting import DEADLINE, wait_for

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


def test_a_busy_thread_waits_until_the_tracer_thread_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    # the wait's limit (2 ms) is the next test's; here the tracer's thread, however late it runs, is waited for
    monkeypatch.setattr(handoff_module, "MAX_WAIT_S", DEADLINE)
    h = GilHandoff()
    h.plan(SAMPLER, time.perf_counter_ns())
    done_at: list[int] = []

    def tracer_thread() -> None:
        wait_for(lambda: h._waiting, "the busy thread to give way")  # done before it came, it would wait in vain
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
    for i in range(3):
        t0 = time.perf_counter_ns()
        h.give_way()
        t1 = time.perf_counter_ns()
        waits.append(t1 - t0)
        # no giving way again until the back-off has passed, counted from the wait that timed out; each such
        # wait doubles the back-off, up to a limit
        backoff = handoff_module.BACKOFF_NS << i
        late = f"wait {i}: due {h.due - t0} ns after it began, {h.due - t1} ns after it ended"
        assert t0 + backoff <= h.due <= t1 + backoff, late
        h.plan(COLLECTOR, 0)
    assert min(waits) >= handoff_module.MAX_WAIT_S * 1e9 * 0.9


def test_without_a_gil_nothing_is_ever_due(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handoff_module, "gil_enabled", lambda: False)
    h = GilHandoff()
    h.plan(SAMPLER, 0)
    assert h.due == NEVER


async def _ping_pong(seconds: float, passes: int = 0) -> None:
    """Tasks passing a token through queues as fast as they can, for ``seconds`` and ``passes`` passes at least
    (however slow the machine): the loop never blocks in select."""
    deadline = time.perf_counter() + seconds
    made = [0]

    async def player(inbox: asyncio.Queue, outbox: asyncio.Queue) -> None:
        while time.perf_counter() < deadline or made[0] < passes:
            await outbox.put(await inbox.get())
            made[0] += 1
        await outbox.put(None)

    players = []
    for _ in range(10):
        a, b = asyncio.Queue(), asyncio.Queue()
        players += [asyncio.create_task(player(a, b)), asyncio.create_task(player(b, a))]
        await a.put(1)
    await asyncio.wait(players)


def test_a_busy_event_loop_does_not_starve_the_sampler(record: Callable[..., Recorded]) -> None:
    """The busy loop's thread is sampled about as often as the same loop idle in its select.

    Measured against the idle loop of the same recording, not against the clock: on a loaded
    machine both lose ticks to the OS alike, while a starved sampler loses them to the busy loop.
    """
    seconds = 0.6
    marks: dict[str, int] = {}

    async def program() -> None:
        marks["busy"] = time.perf_counter_ns()
        await _ping_pong(seconds, passes=2000)  # each pass is a step or two of a task
        marks["idle"] = time.perf_counter_ns()
        await asyncio.sleep(seconds)  # idle in select: the sampler's thread gets the GIL whenever it asks
        marks["end"] = time.perf_counter_ns()

    rec = record(lambda: asyncio.run(program()), sample_interval=0.01)
    loop_thread = int(rec.arg[rec.of(Kind.LOOP_START)[0]])
    samples = rec.ts[rec.of(Kind.THREAD_SAMPLE, loop_thread)]
    loop_steps = rec.ts[rec.of(Kind.TASK_STEP)]
    assert np.count_nonzero((loop_steps >= marks["busy"]) & (loop_steps < marks["idle"])) > 1000, "the loop was busy"
    busy = samples[(samples >= marks["busy"]) & (samples < marks["idle"])]
    idle = samples[(samples >= marks["idle"]) & (samples < marks["end"])]
    busy_rate, idle_rate = len(busy) / (marks["idle"] - marks["busy"]), len(idle) / (marks["end"] - marks["idle"])
    # without the hand-over the sampler got about a fifth of its ticks while the loop was busy
    assert len(idle) >= 2 and busy_rate >= 0.5 * idle_rate, f"{len(busy)} samples of the busy loop, {len(idle)} idle"
    assert np.median(np.diff(busy)) < 2 * np.median(np.diff(idle))


def _one_long_step(until: Callable[[], bool]) -> None:
    """Run Python until ``until()`` without giving the loop back: no select at all (AssertionError after DEADLINE s)."""
    deadline = time.perf_counter() + DEADLINE
    while not until():
        assert time.perf_counter() < deadline, "the condition never came"


def _logging_samples(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(when it began, the thread that took it) of each sample from now on, appended once it is taken."""
    takers: list[tuple[int, int]] = []
    take = sampler_module.Sampler._sample

    def logged(self: sampler_module.Sampler, *args: object) -> None:
        began = time.perf_counter_ns()
        take(self, *args)
        takers.append((began, threading.get_ident()))

    monkeypatch.setattr(sampler_module.Sampler, "_sample", logged)
    return takers


def _taken_since(takers: list[tuple[int, int]], since: int) -> int:
    return sum(began > since for began, _ in takers)


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
    takers = _logging_samples(monkeypatch)
    marks: dict[str, int] = {}

    async def program() -> None:
        marks["loop_thread"] = threading.get_ident()
        await _ping_pong(0.6)
        marks["busy_end"] = time.perf_counter_ns()
        while _taken_since(takers, marks["busy_end"]) < 15:  # idle in select: the sampler's thread has the ticks
            await asyncio.sleep(0.01)
        marks["idle_end"] = time.perf_counter_ns()
        _one_long_step(lambda: _taken_since(takers, marks["idle_end"]) >= 10)  # its watchdog takes them back
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
    # each phase lasted until that many samples were taken: they are all in the trace
    assert len(idle) >= 15, f"{len(idle)} samples while the loop was idle"
    assert len(stuck) >= 10, f"{len(stuck)} samples while the loop ran one long step"
    for i in indices:  # a sample the loop took of itself shows the loop, not the sampler
        frames = rec.trace.stacks.get(int(rec.arg[i]) >> CATEGORY_SHIFT, [])
        assert not any(f.function.endswith(("sample_inline", "_walk", "_sample")) for f in frames)


@pytest.mark.parametrize("thread_waits", [False, True], ids=["give-way", "wait-hook"])
def test_taking_the_ticks_back_from_a_stuck_loop_is_no_gil_wait(
    record: Callable[..., Recorded], monkeypatch: pytest.MonkeyPatch, thread_waits: bool
) -> None:
    """A busy loop that goes straight into one long step: the sampler's thread sees the samples stop and
    takes the ticks back; that its sleep ended ticks after the due sample is no GIL wait of its own.

    Given way to, the loop holds the ticks and the sampler's thread sleeps on its watchdog, which wakes
    ticks after the due sample; with the select's wait hook, or the C step runner between steps, a hook
    takes the samples while the sampler's thread sleeps each tick until a hook should have taken it.
    """
    takers = _logging_samples(monkeypatch)
    marks: dict[str, object] = {}
    interval = 0.04  # long, so that a wait counted from the due sample stands far above any real GIL wait

    async def stuck_after_busy() -> None:
        """Busy among the players, then stuck in one long step (no select between)."""
        handoff = recorder.current().handoff
        loop_thread = threading.get_ident()
        busy_until = time.perf_counter() + 0.4
        deadline = busy_until + DEADLINE
        while time.perf_counter() < busy_until or not any(ident == loop_thread for _, ident in takers[-3:]):
            assert time.perf_counter() < deadline, "the busy loop never took the ticks"
            await asyncio.sleep(0)
        marks["given_way"] = handoff.inline_sampler is not None  # else the hooks take them (the C step runner)
        marks["cpu"] = cpu_waits()
        marks["busy_end"] = time.perf_counter_ns()
        _one_long_step(lambda: _taken_since(takers, marks["busy_end"]) >= 6)
        marks["stuck_end"] = time.perf_counter_ns()
        marks["cpu"] = waited_for_a_cpu(marks["cpu"])

    async def program() -> None:
        await asyncio.gather(_ping_pong(0.4), stuck_after_busy())

    rec = record(lambda: asyncio.run(program()), sample_interval=interval, thread_waits=thread_waits)
    _, indices = _loop_samples(rec)
    ts = rec.ts[indices]
    stuck_samples = ts[(ts > marks["busy_end"]) & (ts <= marks["stuck_end"])]
    assert len(stuck_samples) >= 6, "the stuck loop was sampled again"
    probe = rec.of(Kind.GIL_WAIT, 0)
    probe_ts = rec.ts[probe]
    stuck = rec.arg[probe][(probe_ts > marks["busy_end"]) & (probe_ts <= marks["stuck_end"])]
    # the GIL comes within a few switch intervals (5 ms each, the writer's threads asking too), and later by as
    # much as the OS kept the threads from a CPU; a wait counted from the due sample would be two ticks (80 ms) or more
    assert len(stuck) > 0 and stuck.max() < 50_000_000 + marks["cpu"], (
        f"GIL wait estimates while the loop was stuck: {sorted(stuck)[-3:]}, {marks['cpu']} ns waiting for a CPU"
    )
    if marks["given_way"]:
        # the first sample after the loop got stuck is the one that took the ticks back (nothing else samples a
        # loop in one long step): its sleep was not due to end then, so no GIL wait estimate comes with it
        took_back = stuck_samples[0]
        early = rec.arg[probe][(probe_ts > marks["busy_end"]) & (probe_ts <= took_back)]
        assert len(early) == 0, f"GIL wait estimates at the take-back: {early}"


@pytest.mark.skipif(native.speedups() is None, reason="the C event store wakes the collector by its count")
def test_a_busy_event_loop_does_not_starve_the_collector(tmp_path) -> None:
    """The store's count wakes the collector and tells the handoff, so the busy loop gives way: the collector takes
    the events while the loop runs, and what is stored stays within a few chunks."""
    chunk = 8192
    most = 0
    written_while_busy = 0

    async def busy() -> None:
        nonlocal most, written_while_busy
        rec = recorder.current()
        rows, writer = rec.events, rec.writer
        deadline = time.perf_counter() + DEADLINE
        # busy until a hundred chunks' worth of events were written, however long that takes on this machine
        # (or until the store holds more than it should: no need to pile up more to fail)
        while writer.events_written < 100 * chunk and most <= 16 * chunk:
            assert time.perf_counter() < deadline, f"{writer.events_written} events written in {DEADLINE} s"
            await asyncio.gather(*[asyncio.sleep(0) for _ in range(50)])
            most = max(most, len(rows))
        written_while_busy = writer.events_written

    exectracer.start(tmp_path / "t.xtrace", sample_interval=0, chunk_events=chunk)
    try:
        asyncio.run(busy())
    finally:
        totals = exectracer.stop()
    # without telling the handoff, the collector waited for its planned time (the flush interval)
    # while the events piled up: over a hundred chunks' worth; now a few (under CPU load, up to 8 seen)
    assert most <= 16 * chunk, f"{most} events stored at once ({most / chunk:.1f} chunks' worth)"
    assert written_while_busy >= 100 * chunk and totals["events"] >= written_while_busy


@pytest.mark.skipif(native.speedups() is None, reason="the C step runner takes the samples between steps")
def test_a_busy_uvloop_loop_takes_the_samples_between_its_steps(
    record: Callable[..., Recorded], monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvloop has no select of Python's to give way at: the C step runner takes each due sample between two steps,
    on the loop's thread, so that the sampler's thread need not take the GIL from the busy loop."""
    uvloop = pytest.importorskip("uvloop")
    takers = _logging_samples(monkeypatch)
    marks: dict[str, int] = {}

    async def program() -> None:
        marks["loop_thread"] = threading.get_ident()
        await _ping_pong(0.6, passes=20_000)
        marks["busy_end"] = time.perf_counter_ns()

    rec = record(lambda: uvloop.run(program()), sample_interval=0.01)
    busy_takers = [ident for when, ident in takers if when <= marks["busy_end"]]
    on_loop = busy_takers.count(marks["loop_thread"])
    assert on_loop > 0.5 * len(busy_takers), f"while busy, the loop took {on_loop} of {len(busy_takers)} samples"
    _, indices = _loop_samples(rec)
    for i in indices:  # a sample the loop took of itself shows the loop, not the sampler
        frames = rec.trace.stacks.get(int(rec.arg[i]) >> CATEGORY_SHIFT, [])
        assert not any(f.function.endswith(("sample_from_hook", "_walk", "_sample")) for f in frames)
