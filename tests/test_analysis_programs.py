"""Analyses of real recorded programs: the cases the tracer exists for.

The talk's situations (``programs/talk.py``) are recorded here on asyncio's
loop; ``test_talk_loops.py`` compares their figures with uvloop's.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

import exectracer
from exectracer.analysis import PROFILE_TYPES
from exectracer.export import pprof

from programs import talk
from support.talk_figures import full_collections_ns


def traced_run(tmp_path_factory: pytest.TempPathFactory, scenario) -> exectracer.Trace:
    """Run ``scenario()`` with asyncio under the tracer; the loaded trace."""
    path = tmp_path_factory.mktemp(scenario.__name__) / "trace.xtrace"
    with exectracer.trace(path):
        asyncio.run(scenario())
    return exectracer.load(path, strict=True)


@pytest.fixture(scope="module")
def proxy_trace(tmp_path_factory: pytest.TempPathFactory) -> exectracer.Trace:
    return traced_run(tmp_path_factory, talk.proxy_scenario)


def test_handler_blocked_on_backend_after_client_left(proxy_trace) -> None:
    doc = proxy_trace.analysis.summary()
    (handlers,) = [
        g for g in doc["groups"] if (g["start_function"] or "").endswith("proxy_handler.<locals>.handle_client")
    ]
    assert handlers["count"] == talk.CLIENTS
    assert handlers["time_ns"]["blocked"]["network"] >= talk.CLIENTS * 0.8 * talk.SLOW_BACKEND * 1e9
    waits = [w for w in doc["top_waits"] if w["category"] == "network"]
    assert waits and waits[0]["function"] == "asyncio.streams.StreamReader._wait_for_data"


def test_net_profile_points_at_the_backend_read(proxy_trace) -> None:
    net = proxy_trace.analysis.profile("net")
    by_function = {e.function: e for e in net.top(50)}
    assert (
        by_function["asyncio.streams.StreamReader._wait_for_data"].flat >= talk.CLIENTS * 0.8 * talk.SLOW_BACKEND * 1e9
    )
    heaviest = max(zip(net.stacks.tolist(), net.values[:, 1].tolist(), strict=True), key=lambda sv: sv[1])[0]
    functions = [f.function for f in net.stack_frames(heaviest)]
    assert "programs.talk.read_backend" in functions
    handler = proxy_trace.analysis.profile(
        "net",
        group=next(t.start_function for t in proxy_trace.tasks if (t.start_function or "").endswith("handle_client")),
    )
    assert handler.total() >= talk.CLIENTS * 0.8 * talk.SLOW_BACKEND * 1e9


# -- garbage collection holding up ready work --------------------------------


@pytest.fixture(scope="module")
def gc_trace(tmp_path_factory: pytest.TempPathFactory) -> exectracer.Trace:
    return traced_run(tmp_path_factory, talk.gc_scenario)


def test_full_collections_delay_ready_tasks(gc_trace) -> None:
    doc = gc_trace.analysis.summary()
    full = doc["gc"]["by_generation"]["2"]
    while_busy = full_collections_ns(gc_trace, ".busy")
    assert full["collections"] >= len(while_busy) >= talk.FULL_COLLECTIONS
    assert full["max_ns"] >= 10_000_000, "a full collection of this heap takes tens of milliseconds"
    latency = doc["scheduler_latency_ns"]
    # ready tasks waited while the collector ran: as long as the longest collection made while they were
    # ready (building the heap before them made some too, which held up no task, and may be the longest one)
    assert latency["max"] >= max(while_busy) * 0.7
    busy_group = next(g for g in doc["groups"] if (g["start_function"] or "").endswith(".busy"))
    # each of the three was held up by the full collections made while they ran (those made building the heap
    # before them are of a length that varies from run to run: 40 to 50 % of the whole)
    assert busy_group["time_ns"]["gc"] >= sum(while_busy) * 0.9 * 3
    mmu = {p["window_ns"]: p for p in doc["mmu"]}
    assert mmu[10_000_000]["utilization"] < 0.05
    # a window longer than the longest stretch of collections sees the mutator run (1 s does here; with the
    # machine busy, one collection of this heap took more than that)
    busy = gc_trace.analysis.collections.busy
    (longer,) = gc_trace.analysis.mmu([2 * int((busy.ends - busy.starts).max())])
    assert longer.utilization > 0.0
    worst = mmu[10_000_000]["worst"][0]
    starts = gc_trace.analysis.collections.table.start - gc_trace.start_ns
    ends = gc_trace.analysis.collections.table.end - gc_trace.start_ns
    assert any((s < worst["end_ns"]) & (e > worst["start_ns"]) for s, e in zip(starts, ends, strict=True))


def test_sched_profile_names_where_tasks_resume(gc_trace) -> None:
    sched = gc_trace.analysis.profile("sched")
    functions = {f.function for sid in sched.stacks.tolist() for f in sched.stack_frames(sid)}
    assert any(f.endswith(".busy") for f in functions)
    assert sched.total() >= max(full_collections_ns(gc_trace, ".busy"))  # the busy tasks waited out each of them


# -- every profile type through real `go tool pprof` ---------------------------


def mixed_program() -> None:
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(20):
            with lock:
                time.sleep(0.002)
            sum(range(20_000))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()

    async def main() -> None:
        await asyncio.gather(*(asyncio.to_thread(time.sleep, 0.02) for _ in range(3)), asyncio.sleep(0.05))

    asyncio.run(main())
    for t in threads:
        t.join()


def go() -> str:
    found = shutil.which("go")
    assert found, "Go is needed for `go tool pprof` (Debian package golang-go; .ci/system-packages installs it)"
    return found


@pytest.mark.parametrize("kind", PROFILE_TYPES)
def test_go_tool_pprof_reads_every_profile(record, tmp_path: Path, kind: str) -> None:
    trace = record(mixed_program).trace
    prof = trace.analysis.profile(kind)
    out = tmp_path / f"{kind}.pb.gz"
    pprof.write(prof, out)
    result = subprocess.run(
        [go(), "tool", "pprof", "-top", "-lines", str(out)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    expected_type = "cpu" if kind == "cpu" else "delay"
    assert f"Type: {expected_type}" in result.stdout
    if prof.total():
        top = prof.top(1)[0]
        assert f"{top.function} {top.file}:{top.line}" in result.stdout
