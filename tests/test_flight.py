"""The flight recorder: bounded memory, the kept window, snapshots and their triggers, all recorded for real."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import exectracer
from exectracer.format.events import Kind
from exectracer.live import flight as flight_module

from support.waiting import DEADLINE

pytestmark = pytest.mark.recorder


def churn(
    seconds: float, tasks: int = 20, watch: Callable[[], None] | None = None, until: Callable[[], bool] | None = None
) -> None:
    """Many tiny asyncio task steps (three events each) for ``seconds``; ``watch()`` every 5 ms.

    With ``until``: for ``seconds`` and then until ``until()`` is true, failing after DEADLINE more seconds.
    """
    done = False

    async def spin() -> None:
        while not done:
            await asyncio.sleep(0)

    async def watching() -> None:
        nonlocal done
        while not done:
            if watch is not None:
                watch()
            await asyncio.sleep(0.005)
            if time.perf_counter() >= deadline and (until is None or until()):
                done = True
            assert time.perf_counter() < deadline + DEADLINE, "churn: the condition never came"

    async def main() -> None:
        await asyncio.gather(*(spin() for _ in range(tasks)), watching())

    deadline = time.perf_counter() + seconds
    asyncio.run(main())


def wait_for_files(directory: Path, count: int = 1, timeout: float = DEADLINE) -> list[Path]:
    """The ``.xtrace`` files in ``directory`` once there are ``count`` of them (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(directory.glob("*.xtrace"))
        if len(found) >= count:
            return found
        time.sleep(0.02)
    raise AssertionError(f"{count} snapshot(s) expected in {directory}, found {sorted(directory.iterdir())}")


@pytest.fixture
def flight_recorder():
    """Makes flight recorders and stops whichever is still running at the end of the test.

    Tests stop recording before they load a snapshot: the sampler may still
    hold the loader's frames, and with them views of the memory-mapped file.
    """
    made: list[exectracer.FlightRecorder] = []

    def make(*args, **kwargs) -> exectracer.FlightRecorder:
        made.append(exectracer.FlightRecorder(*args, **kwargs))
        return made[-1]

    yield make
    for recorder in made:
        recorder.stop()
    assert not exectracer.is_tracing()


def test_memory_stays_under_max_bytes_through_a_long_run(flight_recorder, tmp_path):
    max_bytes = 256 << 10
    recorder = flight_recorder(max_bytes=max_bytes, min_age=0.2, flush_interval=0.1).start()
    held: list[int] = []
    ring = recorder._ring

    def long_enough() -> bool:  # a long run: the ring watched often, and far more dropped than it keeps
        return len(held) > 100 and ring.events_dropped > 10 * sum(n for _, _, n in list(ring._events))

    churn(1.0, watch=lambda: held.append(recorder.buffered_bytes), until=long_enough)
    size = recorder.snapshot(tmp_path / "snap.xtrace")
    recorder.stop()

    trace = exectracer.load(tmp_path / "snap.xtrace", strict=True)
    dropped = trace.metadata["flight_recorder"]["dropped"]
    assert len(held) > 100 and max(held) <= max_bytes
    assert dropped["events"] > 5 * trace.event_count  # the run made far more than the ring kept
    assert size == (tmp_path / "snap.xtrace").stat().st_size <= max_bytes + 4096  # header, metadata and END
    assert trace.lost.complete


def test_chunks_suit_the_ring_unless_told_otherwise(flight_recorder, tmp_path):
    for options in ({}, {"chunk_events": 5000, "heap_interval": 0.5}):
        recorder = flight_recorder(max_bytes=1 << 20, min_age=1.0, **options).start()
        recorder.snapshot(tmp_path / "snap.xtrace")
        recorder.stop()
        chosen = exectracer.load(tmp_path / "snap.xtrace", strict=True).metadata["options"]
        defaults = {
            "flush_interval": 5.0,
            "heap_interval": 5.0,
            "chunk_events": (1 << 20) // 64,
        }  # a ring of 1 MiB holds several chunks
        assert {k: chosen[k] for k in defaults} == {**defaults, **options}


def test_snapshot_holds_at_least_min_age_up_to_now(flight_recorder, tmp_path):
    recorder = flight_recorder(max_bytes=32 << 20, min_age=1.0, flush_interval=0.1).start()
    began = time.perf_counter()
    logged: list[int] = []  # when each mark was logged
    mark = 0
    while time.perf_counter() - began < 2.5:
        logged.append(time.perf_counter_ns())
        exectracer.log("mark", str(mark))
        mark += 1
        churn(0.02, tasks=5)
    exectracer.log("mark", "last")
    recorder.snapshot(tmp_path / "snap.xtrace")
    recorder.stop()

    trace = exectracer.load(tmp_path / "snap.xtrace", strict=True)
    marks = list(trace.logs.message)
    numbers = [int(m) for m in marks[:-1]]
    assert marks[-1] == "last"  # the newest events are in: the snapshot flushed the writer
    assert numbers == list(range(numbers[0], mark))  # a contiguous window up to now
    assert numbers[0] > 0  # older events were dropped
    window_start = trace.metadata["start_ns"]
    assert trace.end_ns - window_start >= 1.0e9  # at least min_age
    # what was dropped is older than the window: every mark logged from its start on is in (the ones kept
    # start with the first mark after the last one dropped; the chunk that holds it may begin a little earlier)
    assert logged[numbers[0] - 1] <= window_start
    assert window_start > trace.metadata["flight_recorder"]["recording_start_ns"]  # and not the whole run


def test_snapshot_restates_what_is_still_alive(flight_recorder, tmp_path):
    recorder = flight_recorder(max_bytes=32 << 20, min_age=0.3, flush_interval=0.05).start()
    release = threading.Event()
    long_lived = threading.Thread(target=release.wait, name="long-lived")
    long_lived.start()

    async def long_lived_task(event: asyncio.Event) -> None:
        await event.wait()

    async def short_task() -> None:
        pass

    async def main() -> None:
        event = asyncio.Event()
        waiting = asyncio.create_task(long_lived_task(event), name="waiter")
        await asyncio.create_task(short_task())
        with exectracer.task("job"), exectracer.region("outer"):
            deadline = time.perf_counter() + 1.2
            while time.perf_counter() < deadline:
                await asyncio.sleep(0.001)
            recorder.snapshot(tmp_path / "snap.xtrace")
        event.set()
        await waiting

    try:
        asyncio.run(main())
    finally:
        release.set()
        long_lived.join()
    recorder.stop()

    trace = exectracer.load(tmp_path / "snap.xtrace", strict=True)
    assert trace.metadata["flight_recorder"]["dropped"]["chunks"] > 0
    assert trace.metadata["start_ns"] > trace.metadata["flight_recorder"]["recording_start_ns"]
    names = {t.name for t in trace.threads}
    assert {"MainThread", "long-lived"} <= names
    tasks = {t.start_function.rsplit(".", 1)[-1]: t for t in trace.tasks if t.start_function}
    assert tasks["long_lived_task"].name == "waiter"
    assert "short_task" not in tasks  # it ended before the window: nothing to restate
    job = [u for u in trace.user_tasks if u.name == "job"]
    assert len(job) == 1
    regions = trace.regions
    outer = np.flatnonzero(regions.name == "outer")
    assert len(outer) == 1 and regions.end_ns[outer[0]] == -1 and regions.task[outer[0]] == job[0].id


def test_start_stop_and_errors(flight_recorder, tmp_path):
    recorder = flight_recorder(max_bytes=1 << 20, min_age=1.0)
    with pytest.raises(exectracer.TracingError, match="not recording"):
        recorder.snapshot(tmp_path / "early.xtrace")
    with pytest.raises(ValueError, match="max_bytes"):
        exectracer.FlightRecorder(max_bytes=10)
    with pytest.raises(TypeError, match="unknown tracing option"):
        exectracer.FlightRecorder(flush_intervall=1)
    with exectracer.trace(tmp_path / "other.xtrace"):
        with pytest.raises(exectracer.TracingError, match="already running"):
            recorder.start()
    with recorder:
        assert recorder.recording and exectracer.is_tracing() and flight_module.running() is recorder
        with pytest.raises(exectracer.TracingError, match="already"):
            recorder.start()
        with pytest.raises(exectracer.TracingError, match=r"already running.*flight recorder"):
            exectracer.start(tmp_path / "during.xtrace")
    assert not recorder.recording and not exectracer.is_tracing() and flight_module.running() is None
    with pytest.raises(exectracer.TracingError, match="not recording"):
        recorder.snapshot(tmp_path / "late.xtrace")
    recorder.start()
    exectracer.stop()  # stopped by other means: the recorder notices
    assert not recorder.recording and flight_module.running() is None
    recorder.stop()


def test_signal_trigger_writes_a_readable_snapshot(flight_recorder, tmp_path):
    before = signal.getsignal(signal.SIGUSR2)
    recorder = flight_recorder(max_bytes=4 << 20, min_age=1.0).start()
    recorder.snapshot_on_signal(signal.SIGUSR2, str(tmp_path))
    exectracer.log("before", "the signal")
    os.kill(os.getpid(), signal.SIGUSR2)
    (path,) = wait_for_files(tmp_path)
    recorder.stop()

    trace = exectracer.load(path, strict=True)
    assert path.name.startswith(f"flight-{os.getpid()}-") and path.name.endswith("-signal.xtrace")
    assert "the signal" in list(trace.logs.message)
    assert signal.getsignal(signal.SIGUSR2) is before


def test_slow_calls_trigger_one_snapshot_per_cooldown(flight_recorder, tmp_path):
    recorder = flight_recorder(max_bytes=4 << 20, min_age=1.0).start()

    @recorder.snapshot_if_slow(0.05, name="checkout", directory=str(tmp_path), cooldown=60)
    def checkout(seconds: float) -> str:
        time.sleep(seconds)
        return "paid"

    assert checkout(0) == "paid"
    time.sleep(0.3)  # time enough for a snapshot, had the fast call asked for one
    assert list(tmp_path.glob("*.xtrace")) == []
    assert checkout(0.1) == "paid"
    assert checkout(0.1) == "paid"  # within the cooldown
    (path,) = wait_for_files(tmp_path)
    recorder.stop()  # writes what was asked, no more
    assert len(list(tmp_path.glob("*.xtrace"))) == 1

    trace = exectracer.load(path, strict=True)
    assert path.name.endswith("-slow-checkout.xtrace")
    regions = trace.regions
    took = regions.end_ns[regions.name == "checkout"] - regions.begin_ns[regions.name == "checkout"]
    assert sorted(took.tolist())[-1] >= 0.1e9


@pytest.mark.skipif(not hasattr(signal, "SIGUSR2"), reason="needs SIGUSR2")
def test_run_flight_snapshots_on_signal_and_on_an_uncaught_exception(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(
        textwrap.dedent("""
        import sys, time
        print("ready", flush=True)
        sys.stdin.readline()  # the test sends its signal, then a line
        raise RuntimeError("boom")
    """)
    )
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exectracer",
            "run",
            "--flight",
            "--flight-min-age",
            "2",
            "--flight-dir",
            str(snaps),
            str(script),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGUSR2)
        wait_for_files(snaps)
        _out, err = proc.communicate("go on\n", timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1 and "RuntimeError: boom" in err
    paths = sorted(snaps.glob("*.xtrace"), key=lambda p: p.stat().st_mtime)
    assert [p.name.rsplit("-", 1)[-1] for p in paths] == ["signal.xtrace", "exception.xtrace"]
    assert f"snapshot written to {paths[1]}" in err
    for path in paths:
        trace = exectracer.load(path, strict=True)
        assert any(t.name == "MainThread" for t in trace.threads)
    assert not list(tmp_path.glob("*.xtrace"))  # no trace file besides the snapshots
    assert (Kind.THREAD_START == exectracer.load(paths[1]).events.kind).any()
