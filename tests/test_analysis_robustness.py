"""Every analysis accepts every event sequence the reader can return: what does not fit the state machine is counted
and reported, never fatal.

Hypothesis makes sequences of well-typed events (any kind of the vocabulary, small goroutine, loop and definition
ids that collide, arguments that refer to nothing, times out of order), and damages a real recording's events as a
lost chunk or a flipped bit would (a run of events removed, events repeated, kinds, goroutines, arguments or times
changed); the test runs the summary (and its text), every profile type, pprof files and the viewer's API over them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import io
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exectracer
from exectracer.analysis import PROFILE_TYPES
from exectracer.export import pprof
from exectracer.format import decoder
from exectracer.format.chunks import ChunkKind, file_header, split_chunks
from exectracer.format.events import ARG_SHIFT, Kind
from exectracer.reader import Trace, TraceWarning
from exectracer.report import render
from exectracer.web.api import ViewerAPI

from support.tracebuilder import TraceBuilder

KINDS = [int(kind) for kind in Kind]
SMALL = st.integers(min_value=-2, max_value=12)  # ids that collide: goroutines, loops, strings, stacks
ARGS = st.one_of(SMALL, st.integers(min_value=-(1 << 55), max_value=(1 << 55) - 1))
TIMES = st.one_of(st.integers(min_value=0, max_value=2_000), st.integers(min_value=-(1 << 40), max_value=1 << 40))
EVENTS = st.lists(st.tuples(st.sampled_from(KINDS), TIMES, SMALL, ARGS), max_size=60)


def trace_of(events: list[tuple[int, int, int, int]], end: bool) -> exectracer.Trace:
    b = TraceBuilder()
    b.thread(1, 0, "app.main", "MainThread")
    b.stack(("app.wait", "app.py", 3), ("app.main", "app.py", 1))
    b.string("category")
    for kind, ts, g, arg in events:
        b.event(Kind(kind), ts, g, arg)
    with pytest.warns(TraceWarning) if not end else contextlib.nullcontext():
        return exectracer.load(b.data(stop_ns=2_000 if end else None))


def analyse_everything(trace: exectracer.Trace, directory: Path) -> None:
    """The summary and its text, every profile and its pprof file (into ``directory``), every viewer API route."""
    doc = trace.analysis.summary()
    render(doc, "t.xtrace", 100)
    for kind in PROFILE_TYPES:
        prof = trace.analysis.profile(kind)
        pprof.write(prof, str(directory / f"{kind}.pb.gz"))
    api = ViewerAPI(trace)
    gids = [g.id for g in trace.analysis.goroutines.list]
    for route, call in api.routes.items():
        params: dict[str, str] = {}
        if route == "/api/profile" or route == "/api/pprof":
            for kind in PROFILE_TYPES:
                call({"type": kind})
            continue
        if route in ("/api/span", "/api/related") and gids:
            for gid in gids:
                params = {"g": str(gid), "t": "0"}
                try:
                    call(params)
                except LookupError:  # NotFound: a clean 404
                    pass
            continue
        try:
            call(params)
        except (LookupError, ValueError):  # NotFound, BadRequest: a missing parameter is a clean 4xx
            pass


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=EVENTS, end=st.booleans())
def test_every_analysis_accepts_any_event_sequence(events, end, tmp_path_factory):
    analyse_everything(trace_of(events, end), tmp_path_factory.getbasetemp())


def test_a_loop_idle_end_for_a_loop_never_started(tmp_path):
    trace = trace_of([(int(Kind.LOOP_IDLE_END), 100, 7, 0)], end=True)
    analyse_everything(trace, tmp_path)


# -- a real recording, damaged -----------------------------------------------------------------------------------


def _program() -> None:
    """Threads, a pool, locks, sleeps, asyncio tasks on a loop, a collection, regions and logs."""
    lock = threading.Lock()

    def work(n: int) -> int:
        with lock:
            time.sleep(0.001)
        return n

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with exectracer.region("gather"):
            await asyncio.gather(*(asyncio.sleep(0.001 * i) for i in range(5)))
        await loop.run_in_executor(None, work, 1)
        queue: asyncio.Queue[int] = asyncio.Queue()
        consumer = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        queue.put_nowait(1)
        await consumer
        exectracer.log("test", "done")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(work, range(4)))
    thread = threading.Thread(target=work, args=(2,))
    thread.start()
    thread.join()
    asyncio.run(main())
    gc.collect()


@functools.cache
def recorded() -> decoder.Decoded:
    sink = io.BytesIO()
    with exectracer.trace(sink, sample_interval=0.001):
        _program()
    return decoder.read(sink.getvalue())


@st.composite
def damaged(draw: st.DrawFn) -> decoder.Decoded:
    """The recording's events with some damage; the reader's order (by time) kept."""
    real = recorded()
    code, ts, g = real.code.copy(), real.ts.copy(), real.g.copy()
    n = len(code)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        what = draw(st.sampled_from(["cut", "repeat", "kind", "g", "arg", "ts", "end"]))
        n = len(code)
        if n == 0:
            break
        at = draw(st.integers(min_value=0, max_value=n - 1))
        span = draw(st.integers(min_value=1, max_value=max(1, n // 4)))
        rows = slice(at, min(n, at + span))
        if what == "cut":  # a chunk lost
            code, ts, g = (np.delete(column, np.arange(n)[rows]) for column in (code, ts, g))
        elif what == "repeat":  # a chunk read twice
            code, ts, g = (np.concatenate((column, column[rows])) for column in (code, ts, g))
        elif what == "kind":
            code[at] = (code[at] & ~np.int64(0xFF)) | draw(st.sampled_from(KINDS))
        elif what == "g":
            g[at] = draw(SMALL)
        elif what == "arg":
            code[at] = (code[at] & np.int64(0xFF)) | (np.int64(draw(ARGS)) << ARG_SHIFT)
        elif what == "ts":
            ts[at] = draw(TIMES) + int(ts[0])
        elif what == "end":
            code, ts, g = code[rows.stop :], ts[rows.stop :], g[rows.stop :]
    order = np.argsort(ts, kind="stable")
    summary = real.summary if draw(st.booleans()) else None
    return dataclasses.replace(real, code=code[order], ts=ts[order], g=g[order], summary=summary)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(decoded=damaged())
def test_every_analysis_accepts_a_damaged_recording(decoded, tmp_path_factory):
    analyse_everything(Trace(decoded, "damaged"), tmp_path_factory.getbasetemp())


def test_what_fits_no_state_is_counted_and_reported(tmp_path):
    b = TraceBuilder()
    b.thread(1, 0, "app.main", "MainThread")
    b.event(Kind.LOOP_IDLE_BEGIN, 100, 7)  # loop 7: its LOOP_START was lost
    b.event(Kind.LOOP_IDLE_END, 200, 7)
    b.event(Kind.TASK_STEP, 300, 9)  # task 9: never named
    b.event(Kind.THREAD_END, 400, 1)
    b.event(Kind.THREAD_UNBLOCK, 500, 1)  # after the thread's end
    trace = exectracer.load(b.data(stop_ns=1_000), strict=True)
    expected = {
        "loop idle events of a loop not started": 2,
        "state events of a goroutine the trace does not name": 1,
        "state events of a goroutine after its end": 1,
    }
    assert trace.analysis.states.anomalies == expected
    doc = trace.analysis.summary()
    assert doc["trace"]["lost"]["anomalies"] == expected
    assert doc["goroutines"][0]["time_ns"]["running"] == 400  # from its start to its end, nothing after
    text = render(doc, "t.xtrace", 200)
    assert "2 loop idle events of a loop not started (left out)" in text
    warnings = ViewerAPI(trace).info({})["warnings"]
    assert any("1 state events of a goroutine after its end" in w for w in warnings)
    analyse_everything(trace, tmp_path)


def test_summary_pprof_and_viewer_on_a_killed_trace_with_a_flipped_bit(tmp_path):
    """The trace of a killed process (no END chunk) whose EVENTS chunk with a loop's LOOP_START has a bit flipped:
    the reader skips that chunk, and the loop's later idle time has no thread."""
    sink = io.BytesIO()
    with exectracer.trace(sink, chunk_events=32, sample_interval=0.001):
        _program()
    chunks = list(split_chunks(sink.getvalue()))
    killed = [bytes(chunk) for kind, chunk in chunks if kind != ChunkKind.END]
    for i, (kind, chunk) in enumerate(chunks):
        if kind != ChunkKind.EVENTS:
            continue
        damaged = bytearray(chunk)
        damaged[-1] ^= 0x10
        data = file_header() + b"".join(killed[:i] + [bytes(damaged)] + killed[i + 1 :])
        with pytest.warns(TraceWarning):
            trace = exectracer.load(data)
        if "loop idle events of a loop not started" in trace.analysis.states.anomalies:
            break
    else:
        pytest.fail("no EVENTS chunk holds a LOOP_START")
    path = tmp_path / "killed.xtrace"
    path.write_bytes(data)
    cli = [sys.executable, "-m", "exectracer"]
    summary = subprocess.run([*cli, "summary", str(path)], capture_output=True, text=True, timeout=300)
    assert summary.returncode == 0, summary.stderr
    assert "loop idle events of a loop not started (left out)" in summary.stdout
    for kind in PROFILE_TYPES:
        out = tmp_path / f"{kind}.pb.gz"
        done = subprocess.run(
            [*cli, "pprof", "--type", kind, "-o", str(out), str(path)], capture_output=True, text=True
        )
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    analyse_everything(trace, tmp_path)
