"""What a wait is filed under: the await chain's category, refined by what ended the wait, on built traces with
known answers and on real clients, servers and drivers that time their own waits."""

from __future__ import annotations

import asyncio
import gc
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import exectracer
from exectracer.analysis import PROFILE_TYPES
from exectracer.analysis.states import State
from exectracer.format.events import WAKER_MASK, WAKER_SHIFT, Category, Kind, Outcome, Waker

from programs import real_waits
from support.model_trace import END, model_trace
from support.tracebuilder import TraceBuilder

LOOP, LOOP_THREAD, WORKER, OTHER_TASK = 9, 1, 2, 3
ITSELF = -1  # the waker id of a task that woke itself
TOLERANCE = 0.15  # the share of a measured wait the trace's figure may differ by
NEAR_ZERO = 0.05  # the share of a measured wait that may land in ``other``
T = TypeVar("T")

# (the await chain's category, what ended the wait, its id) -> what the wait is filed under
CASES = [
    (Category.OTHER, Waker.IO, 0, State.NETWORK),  # a library's own future, set by its protocol's data_received
    (Category.SYNC, Waker.IO, 0, State.NETWORK),  # an asyncio.Event that a protocol sets (anyio's streams)
    (Category.OTHER, Waker.THREAD, WORKER, State.SYSCALL),  # a future a worker thread completes (aiosqlite, anyio)
    (Category.SYNC, Waker.THREAD, WORKER, State.SYSCALL),
    (Category.OTHER, Waker.TASK, OTHER_TASK, State.SYNC),  # a future another task completes
    (Category.SYNC, Waker.TASK, OTHER_TASK, State.SYNC),  # a lock another task released
    (Category.OTHER, Waker.TIMER, 0, State.OTHER),  # a timer: a sleep of its own, or a timeout giving up
    (Category.SYNC, Waker.TIMER, 0, State.SYNC),  # wait_for on an event, timed out: it waited for the event
    (Category.OTHER, Waker.CALLBACK, 0, State.OTHER),  # a callback nothing is known of
    (Category.OTHER, Waker.UNKNOWN, 0, State.OTHER),
    (Category.OTHER, Waker.TASK, ITSELF, State.OTHER),  # a wake-up its own step queued
    (Category.OTHER, Waker.THREAD, LOOP_THREAD, State.OTHER),  # its loop's thread, outside the loop (shutdown)
    (Category.NETWORK, Waker.THREAD, WORKER, State.NETWORK),  # the chain knows precisely: it stays
    (Category.SLEEP, Waker.TASK, OTHER_TASK, State.SLEEP),  # a sleep another task cancelled
    (Category.SYSCALL, Waker.IO, 0, State.SYSCALL),  # a subprocess's exit, seen through its pipes
]


@pytest.fixture(autouse=True)
def _test_process_heap_frozen() -> Iterator[None]:
    """The programs measure their waits in this process, whose heap holds what every earlier test left: a full
    collection of it inside a measured wait (158 ms seen, late in a whole suite) would be filed as running, as
    it should. Frozen, the collector scans only what the program makes."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def cases_trace(tmp_path: Path) -> exectracer.Trace:
    """One task per case of ``CASES`` (ids 10 on), each suspended from 100 to 400 ns, then done; and a thread whose
    wait another thread ends."""
    b = TraceBuilder()
    b.thread(LOOP_THREAD, 0, None, "MainThread")
    b.thread(WORKER, 0, "app.work", "worker")
    b.event(Kind.LOOP_START, 0, LOOP, LOOP_THREAD)
    b.task(OTHER_TASK, 0, "app.other")
    b.event(Kind.TASK_LOOP, 0, OTHER_TASK, LOOP)
    for g, (category, waker, by, _) in enumerate(CASES, start=10):
        b.task(g, 10, f"app.case{g}")
        b.event(Kind.TASK_LOOP, 10, g, LOOP)
        b.ready(20, g, Waker.THREAD, LOOP_THREAD).event(Kind.TASK_STEP, 50, g)
        b.wait(Kind.TASK_SUSPEND, 100, g, category, b.stack(("app.wait", "app.py", g)))
        b.ready(400, g, waker, g if by == ITSELF else by)
        b.event(Kind.TASK_STEP, 450, g).event(Kind.TASK_DONE, 500, g, Outcome.RETURNED)
    b.wait(Kind.THREAD_BLOCK, 100, WORKER, Category.OTHER, b.stack(("app.block", "app.py", 1)))
    b.event(Kind.THREAD_UNBLOCK, 400, WORKER, LOOP_THREAD)
    return exectracer.load(b.write(tmp_path / "cases.xtrace", stop_ns=1000))


def test_a_wait_is_filed_by_its_chain_and_what_ended_it(tmp_path: Path) -> None:
    trace = cases_trace(tmp_path)
    s = trace.analysis.states
    ids = s.goroutines.ids[s.gi]
    for g, (category, waker, by, expected) in enumerate(CASES, start=10):
        (at,) = ((ids == g) & (s.start == 100)).nonzero()
        assert State(s.state[at[0]]) == expected, (category.name, waker.name, by)
    (worker,) = ((ids == WORKER) & (s.start == 100)).nonzero()
    assert State(s.state[worker[0]]) == State.OTHER  # a thread's wait keeps its hooked call's category
    doc = trace.analysis.summary()
    blocked = defaultdict(int)
    for goroutine in doc["goroutines"]:
        if goroutine["kind"] == "task":
            for name, ns in goroutine["time_ns"]["blocked"].items():
                blocked[name] += ns
    for kind, state in (("net", "network"), ("sync", "sync"), ("syscall", "syscall"), ("other", "other")):
        expected = 300 * sum(1 for *_, filed in CASES if filed.name.lower() == state)
        assert blocked[state] == expected, state
        assert trace.analysis.profile(kind, group=None).total() == expected + (300 if kind == "other" else 0)


def test_other_profile(tmp_path: Path) -> None:
    assert "other" in PROFILE_TYPES
    path = model_trace().write(tmp_path / "model.xtrace", stop_ns=END)
    other = exectracer.load(path).analysis.profile("other")
    assert other.total() == 80 and other.top(1)[0].function == "app.custom_future"
    result = subprocess.run(
        [sys.executable, "-m", "exectracer", "pprof", "--type", "other", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Wrote the other profile (1 waits, 80ns)" in result.stdout
    go = shutil.which("go")
    assert go, "Go is needed for `go tool pprof`"
    top = subprocess.run(
        [go, "tool", "pprof", "-top", "-lines", str(tmp_path / "model.other.pb.gz")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert top.returncode == 0, top.stderr
    assert "app.custom_future app.py:60" in top.stdout


# -- real libraries ------------------------------------------------------------------------------------------------


def run_on(loop: str, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` as a program does on that loop: ``asyncio.run`` or ``uvloop.run``."""
    if loop == "uvloop":
        return pytest.importorskip("uvloop").run(main())
    return asyncio.run(main())


@pytest.mark.recorder
@pytest.mark.timeout(300)
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("scenario", list(real_waits.SCENARIOS))
def test_real_waits_land_where_a_person_files_them(tmp_path: Path, scenario: str, loop: str) -> None:
    """The same program on asyncio's loop and on uvloop, whose C code completes the futures of its ``sock_*``
    calls and connection set-up itself: each wait the program timed is in the trace under its category."""
    path = tmp_path / f"{scenario}.xtrace"
    with exectracer.trace(path):
        measured = run_on(loop, real_waits.SCENARIOS[scenario])
    assert_filed_as_measured(path, measured)


@pytest.mark.recorder
@pytest.mark.timeout(300)
@pytest.mark.parametrize("scenario", ["httpx", "threads", "sync"])
def test_real_waits_on_trio_land_where_a_person_files_them(tmp_path: Path, scenario: str) -> None:
    trio = pytest.importorskip("trio")
    from programs import trio_real_waits

    path = tmp_path / f"trio-{scenario}.xtrace"
    with exectracer.trace(path):
        measured = trio.run(trio_real_waits.SCENARIOS[scenario])
    assert_filed_as_measured(path, measured)


def region_breakdown(trace: exectracer.Trace, region: str) -> str:
    """Where the time of each ``region`` went, in its goroutine's states, and the collections that overlap it: what a
    failure needs to say to be understood without the trace."""
    s = trace.analysis.states
    gc = trace.analysis.collections.table
    regions = trace.regions
    parts = []
    for at in (regions.name == region).nonzero()[0]:
        g, begin, end = int(regions.g[at]), int(regions.begin_ns[at]), int(regions.end_ns[at])
        inside = (s.goroutines.ids[s.gi] == g) & (s.end > begin) & (s.start < end)
        spent: dict[str, float] = defaultdict(float)
        for i in inside.nonzero()[0]:
            spent[State(int(s.state[i])).name.lower()] += (min(int(s.end[i]), end) - max(int(s.start[i]), begin)) / 1e6
        overlap = (
            sum(max(0, min(int(e), end) - max(int(b), begin)) for b, e in zip(gc.start, gc.end, strict=True)) / 1e6
        )
        parts.append(
            f"region {end - begin} ns in g{g}: "
            + ", ".join(f"{k} {v:.1f} ms" for k, v in sorted(spent.items()))
            + f", collections {overlap:.1f} ms"
        )
    return "; ".join(parts)


def assert_filed_as_measured(path: Path, measured: list[real_waits.Measured]) -> None:
    """Each region's waits are in the profile of the category its program measured, within ``TOLERANCE``, and
    (unless that category is ``other``) next to nothing in ``other``."""
    trace = exectracer.load(path, strict=True)
    analysis = trace.analysis
    by_region: dict[tuple[str, str], int] = defaultdict(int)
    for m in measured:
        by_region[m.region, m.category] += m.ns
    assert by_region, "the scenario measured nothing"
    for (region, category), ns in by_region.items():
        found = {kind: analysis.profile(kind, region=region).total() for kind in ("net", "sync", "syscall", "sleep")}
        found["other"] = analysis.profile("other", region=region).total()
        where = f"{region}: measured {ns / 1e6:.1f} ms, the trace has " + ", ".join(
            f"{kind} {value / 1e6:.1f} ms" for kind, value in found.items()
        )
        assert abs(found[category] - ns) <= TOLERANCE * ns, where + "; " + region_breakdown(trace, region)
        if category != "other":
            assert found["other"] <= NEAR_ZERO * ns, where


@pytest.mark.recorder
@pytest.mark.timeout(300)
def test_worker_threads_are_named_as_the_wakers(tmp_path: Path) -> None:
    """anyio's and asyncio's worker threads complete their futures through a callback they queue: the wait ends
    with the thread itself as the waker, not the callback."""
    path = tmp_path / "threads.xtrace"
    with exectracer.trace(path):
        asyncio.run(real_waits.worker_threads())
    trace = exectracer.load(path, strict=True)
    s = trace.analysis.states
    workers = {t.id: t.name for t in trace.threads if t.name != "MainThread"}
    regions = trace.regions
    for region in ("anyio to_thread", "asyncio to_thread", "run_in_executor"):
        (at,) = (regions.name == region).nonzero()
        g, begin, end = int(regions.g[at[0]]), int(regions.begin_ns[at[0]]), int(regions.end_ns[at[0]])
        waits = (
            (s.goroutines.ids[s.gi] == g) & (s.state == State.SYSCALL) & (s.start >= begin) & (s.end <= end)
        ).nonzero()[0]
        assert len(waits) == 1, region
        waker = int(s.waker[waits[0]])
        assert waker & WAKER_MASK == Waker.THREAD and waker >> WAKER_SHIFT in workers, (region, waker, workers)
