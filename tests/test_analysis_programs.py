"""Analyses of real recorded programs: the cases the tracer exists for."""

from __future__ import annotations

import asyncio
import gc
import itertools
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import exectracer
from exectracer.analysis import PROFILE_TYPES
from exectracer.export import pprof

SLOW_BACKEND = 1.0  # seconds the backend takes to answer
CLIENTS = 3


async def slow_backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readline()
    await asyncio.sleep(SLOW_BACKEND)
    writer.write(b"answer\n")
    await writer.drain()
    writer.close()


async def read_backend(reader: asyncio.StreamReader) -> bytes:
    return await reader.readline()


def proxy_handler(backend_port: int):
    async def handle_client(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        request = await client_reader.readline()
        backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", backend_port)
        backend_writer.write(request)
        await backend_writer.drain()
        answer = await read_backend(backend_reader)  # stays blocked here after the client has gone
        client_writer.write(answer)
        client_writer.close()
        backend_writer.close()

    return handle_client


async def impatient_client(port: int) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"request\n")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()  # gives up long before the backend answers


async def proxy_scenario() -> None:
    backend = await asyncio.start_server(slow_backend, "127.0.0.1", 0)
    backend_port = backend.sockets[0].getsockname()[1]
    proxy = await asyncio.start_server(proxy_handler(backend_port), "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    async with backend, proxy:
        await asyncio.gather(*(impatient_client(port) for _ in range(CLIENTS)))
        await asyncio.sleep(SLOW_BACKEND + 0.2)


def traced_run(tmp_path_factory: pytest.TempPathFactory, scenario) -> exectracer.Trace:
    """Run ``scenario()`` with asyncio under the tracer; the loaded trace."""
    path = tmp_path_factory.mktemp(scenario.__name__) / "trace.xtrace"
    with exectracer.trace(path):
        asyncio.run(scenario())
    return exectracer.load(path, strict=True)


@pytest.fixture(scope="module")
def proxy_trace(tmp_path_factory: pytest.TempPathFactory) -> exectracer.Trace:
    return traced_run(tmp_path_factory, proxy_scenario)


def test_handler_blocked_on_backend_after_client_left(proxy_trace) -> None:
    doc = proxy_trace.analysis.summary()
    (handlers,) = [
        g for g in doc["groups"] if (g["start_function"] or "").endswith("proxy_handler.<locals>.handle_client")
    ]
    assert handlers["count"] == CLIENTS
    assert handlers["time_ns"]["blocked"]["network"] >= CLIENTS * 0.8 * SLOW_BACKEND * 1e9
    waits = [w for w in doc["top_waits"] if w["category"] == "network"]
    assert waits and waits[0]["function"] == "asyncio.streams.StreamReader._wait_for_data"


def test_net_profile_points_at_the_backend_read(proxy_trace) -> None:
    net = proxy_trace.analysis.profile("net")
    by_function = {e.function: e for e in net.top(50)}
    assert by_function["asyncio.streams.StreamReader._wait_for_data"].flat >= CLIENTS * 0.8 * SLOW_BACKEND * 1e9
    heaviest = max(zip(net.stacks.tolist(), net.values[:, 1].tolist(), strict=True), key=lambda sv: sv[1])[0]
    functions = [f.function for f in net.stack_frames(heaviest)]
    assert "tests.test_analysis_programs.read_backend" in functions or any(
        f.endswith(".read_backend") for f in functions
    )
    handler = proxy_trace.analysis.profile(
        "net",
        group=next(t.start_function for t in proxy_trace.tasks if (t.start_function or "").endswith("handle_client")),
    )
    assert handler.total() >= CLIENTS * 0.8 * SLOW_BACKEND * 1e9


# -- garbage collection holding up ready work --------------------------------

HEAP_OBJECTS = 600_000


def build_heap() -> list:
    """Many small containers in cycles: a full collection has to traverse them all."""
    heap = []
    for i in range(HEAP_OBJECTS // 2):
        a: list = [i]
        b = {"peer": a}
        a.append(b)
        heap.append(a)
    return heap


FULL_COLLECTIONS = 6


async def busy(done: asyncio.Event) -> None:
    while not done.is_set():
        sum(range(200))
        await asyncio.sleep(0)


async def collector(done: asyncio.Event) -> None:
    for _ in range(FULL_COLLECTIONS):  # while the busy tasks are ready: each collection holds them up
        await asyncio.sleep(0.1)
        gc.collect()
    done.set()


async def gc_scenario() -> None:
    heap = build_heap()
    done = asyncio.Event()
    await asyncio.gather(collector(done), *(busy(done) for _ in range(3)))
    del heap


@pytest.fixture(scope="module")
def gc_trace(tmp_path_factory: pytest.TempPathFactory) -> exectracer.Trace:
    return traced_run(tmp_path_factory, gc_scenario)


def _full_collections_ns(trace: exectracer.Trace, function_suffix: str) -> list[int]:
    """How long each full collection took while goroutines started by a function ending in ``function_suffix`` ran."""
    from exectracer.format.events import Kind

    ids = [
        g["id"] for g in trace.analysis.summary()["goroutines"] if (g["start_function"] or "").endswith(function_suffix)
    ]
    ev = trace.events
    theirs = ev.ts[np.isin(ev.g, ids)]
    full = ev[(ev.kind == Kind.GC_START) & (ev.arg == 2) | (ev.kind == Kind.GC_END)]
    took = []
    for start, end in itertools.pairwise(full):
        if (
            start.kind == Kind.GC_START
            and start.arg == 2
            and end.kind == Kind.GC_END
            and theirs.min() <= start.ts <= theirs.max()
        ):
            took.append(int(end.ts - start.ts))
    return took


def test_full_collections_delay_ready_tasks(gc_trace) -> None:
    doc = gc_trace.analysis.summary()
    full = doc["gc"]["by_generation"]["2"]
    while_busy = _full_collections_ns(gc_trace, ".busy")
    assert full["collections"] >= len(while_busy) >= FULL_COLLECTIONS
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
    assert sched.total() >= max(_full_collections_ns(gc_trace, ".busy"))  # the busy tasks waited out each of them


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
