"""Reading real recordings: asyncio over loopback sockets, threads, GC, annotations, crashes."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import exectracer
from exectracer.format.chunks import FORMAT_VERSION
from exectracer.format.events import (
    ARG_KINDS,
    CALLBACK_SHIFT,
    CATEGORY_SHIFT,
    SUBJECT_KINDS,
    WAKER_SHIFT,
    Arg,
    Category,
    Kind,
    Outcome,
    Subject,
    Waker,
)
from exectracer.reader import Trace, TraceFormatError, TraceWarning
from exectracer.table import kind_lookup, match_spans

from support.waiting import wait_for

pytestmark = pytest.mark.recorder

SRC = str(Path(__file__).resolve().parent.parent / "src")
CLIENTS = 4
MESSAGES = 20


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()
    writer.close()


async def client(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for i in range(MESSAGES):
        writer.write(b"line %d\n" % i)
        await writer.drain()
        assert await reader.readline() == b"line %d\n" % i
    writer.close()
    await writer.wait_closed()


async def fails() -> None:
    await asyncio.sleep(0)
    raise ValueError("boom")


async def sleeps() -> None:
    await asyncio.sleep(3600)


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with exectracer.task("batch"):
        with exectracer.region("clients"):
            await asyncio.gather(*(loop.create_task(client(port), name=f"client-{i}") for i in range(CLIENTS)))
        exectracer.log("progress", "clients done")
        with exectracer.task("child"), exectracer.region("outer"), exectracer.region("inner"):
            await asyncio.sleep(0)
    bad = loop.create_task(fails(), name="fails")
    sleeper = loop.create_task(sleeps(), name="sleeper")
    await asyncio.sleep(0.01)
    sleeper.cancel()
    await asyncio.gather(bad, sleeper, return_exceptions=True)
    await loop.run_in_executor(None, time.sleep, 0.002)
    server.close()
    await server.wait_closed()


def worker(facts: dict) -> None:
    facts["worker_ident"] = threading.get_ident()
    facts["worker_native_id"] = threading.get_native_id()
    gc.collect()
    with exectracer.region("worker-region"):
        time.sleep(0.002)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("reader") / "program.xtrace"
    facts: dict = {}
    exectracer.start(path, chunk_events=256)  # several EVENTS chunks, merged by the reader
    try:
        thread = threading.Thread(target=worker, args=(facts,), name="worker-1")
        thread.start()
        thread.join()
        asyncio.run(main())
        gc.collect()
    finally:
        facts["totals"] = exectracer.stop()
    return path, facts


@pytest.fixture(scope="module")
def trace(recorded: tuple[Path, dict]) -> Trace:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return exectracer.load(recorded[0], strict=True)


def by_name(items: list, name: str):
    found = [item for item in items if item.name == name]
    assert len(found) == 1, f"{name!r} in {[i.name for i in items]}"
    return found[0]


def of_kind(trace: Trace, kind: Kind):
    return trace.events[trace.events.kind == kind]


# -- the whole trace -----------------------------------------------------------


def test_clean_recording_loads_completely(trace: Trace, recorded: tuple[Path, dict]) -> None:
    facts = recorded[1]
    assert trace.lost.complete
    assert trace.metadata["format_version"] == FORMAT_VERSION
    assert trace.metadata["pid"] == os.getpid()
    assert trace.summary is not None and trace.summary["events"] == trace.event_count == facts["totals"]["events"]
    assert trace.start_ns <= trace.events.ts[0] and trace.events.ts[-1] <= trace.end_ns
    assert 0 < trace.duration_ns < 60e9


def test_events_are_sorted_typed_columns(trace: Trace) -> None:
    ev = trace.events
    assert len(ev) == trace.event_count > 500
    assert set(ev.columns) == {"kind", "arg", "ts", "g"}
    assert ev.kind.dtype == np.uint8 and ev.arg.dtype == ev.ts.dtype == ev.g.dtype == np.int64
    assert np.all(np.diff(ev.ts) >= 0)
    assert (ev["ts"] is ev.ts) and len(ev[ev.kind == Kind.TASK_STEP]) > CLIENTS * MESSAGES
    assert set(np.unique(ev.kind).tolist()) <= {int(k) for k in Kind}
    assert (of_kind(trace, Kind.TASK_NAME).arg < 0).any()  # arithmetic shift keeps "Task-N" negative


def test_load_from_bytes_matches_path(trace: Trace, recorded: tuple[Path, dict]) -> None:
    again = exectracer.load(recorded[0].read_bytes())
    for column in trace.events.columns:
        assert np.array_equal(again.events[column], trace.events[column])
    assert again.strings == trace.strings and again.stacks == trace.stacks


def test_loading_keeps_the_recording_api(recorded: tuple[Path, dict]) -> None:
    exectracer.load(recorded[0])
    assert callable(exectracer.trace)  # the reader module must not shadow exectracer.trace()
    assert exectracer.Trace is Trace and exectracer.TraceFormatError is TraceFormatError


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
def test_file_is_not_left_mapped(recorded: tuple[Path, dict]) -> None:
    exectracer.load(recorded[0])
    assert str(recorded[0]) not in Path("/proc/self/maps").read_text()


def test_every_reference_is_defined(trace: Trace) -> None:
    """Each id an event's argument or g holds (format/events.py's ARG_KINDS, SUBJECT_KINDS) is defined."""
    ev = trace.events

    def args(arg: Arg) -> np.ndarray:
        return ev.arg[np.isin(ev.kind, ARG_KINDS[arg])]

    strings, stacks = trace.strings.keys(), trace.stacks.keys()
    names = of_kind(trace, Kind.TASK_NAME).arg
    assert (args(Arg.STRING) >= 0).sum() == len(args(Arg.STRING)) - (names < 0).sum()  # -N: asyncio's default
    assert set(args(Arg.STRING)[args(Arg.STRING) >= 0].tolist()) <= strings
    assert set((args(Arg.CALLBACK) >> CALLBACK_SHIFT).tolist()) <= strings
    assert set(args(Arg.STACK).tolist()) <= stacks
    assert set((args(Arg.STACK_AND_STATE) >> CATEGORY_SHIFT).tolist()) <= stacks | {0}
    assert set(trace.suspend_reasons().stack.tolist()) <= stacks
    goroutines = {t.id for t in trace.threads} | {t.id for t in trace.tasks}
    assert set(args(Arg.GOROUTINE).tolist()) <= goroutines | {0}
    ready = args(Arg.WAKER)
    for source in (Waker.TASK, Waker.THREAD):
        assert set((ready[ready & 7 == source] >> WAKER_SHIFT).tolist()) <= goroutines
    for source in (Waker.IO, Waker.TIMER, Waker.CALLBACK):
        assert set((ready[ready & 7 == source] >> WAKER_SHIFT).tolist()) <= strings
    loops = {loop.id for loop in trace.loops}
    assert loops and set(args(Arg.LOOP).tolist()) <= loops
    assert set(ev.g[np.isin(ev.kind, SUBJECT_KINDS[Subject.LOOP])].tolist()) <= loops


# -- who ran -------------------------------------------------------------------


def test_threads(trace: Trace, recorded: tuple[Path, dict]) -> None:
    facts = recorded[1]
    main_thread = by_name(trace.threads, "MainThread")
    assert main_thread.ident == threading.main_thread().ident
    assert main_thread.native_id == threading.main_thread().native_id
    assert main_thread.parent_id is None and main_thread.created_ns is None and main_thread.ended_ns is None
    worker_thread = by_name(trace.threads, "worker-1")
    assert worker_thread.start_function == f"{__name__}.worker"
    assert worker_thread.file == __file__ and worker_thread.line == worker.__code__.co_firstlineno
    assert worker_thread.parent_id == main_thread.id
    assert worker_thread.ident == facts["worker_ident"]
    assert worker_thread.created_ns <= worker_thread.started_ns < worker_thread.ended_ns
    (main_task,) = [t for t in trace.tasks if t.start_function == f"{__name__}.main"]
    executor = [t for t in trace.threads if t.start_function == "concurrent.futures.thread._worker"]
    assert executor and all(t.parent_id == main_task.id for t in executor)  # run_in_executor in main()
    assert not {t.id for t in trace.threads} & {t.id for t in trace.tasks}


def test_thread_native_id(trace: Trace, recorded: tuple[Path, dict]) -> None:
    assert by_name(trace.threads, "worker-1").native_id == recorded[1]["worker_native_id"]


def test_tasks(trace: Trace) -> None:
    main_thread = by_name(trace.threads, "MainThread")
    (main_task,) = [t for t in trace.tasks if t.start_function == f"{__name__}.main"]
    (loop,) = trace.loops
    assert main_task.parent_id == main_thread.id and main_task.name.startswith("Task-")
    for i in range(CLIENTS):
        task = by_name(trace.tasks, f"client-{i}")
        assert task.start_function == f"{__name__}.client" and task.file == __file__
        assert task.line == client.__code__.co_firstlineno
        assert task.parent_id == main_task.id and task.loop_id == loop.id
        assert task.outcome is Outcome.RETURNED and task.created_ns < task.ended_ns
    assert by_name(trace.tasks, "fails").outcome is Outcome.RAISED
    assert by_name(trace.tasks, "sleeper").outcome is Outcome.CANCELLED
    handlers = [t for t in trace.tasks if t.start_function == f"{__name__}.echo"]
    assert len(handlers) == CLIENTS and all(t.outcome is Outcome.RETURNED for t in handlers)
    assert all(t.ended_ns is not None for t in trace.tasks)


def test_loop(trace: Trace) -> None:
    (loop,) = trace.loops
    assert loop.class_name.startswith("asyncio.") and loop.class_name.endswith("EventLoop")
    assert loop.thread_id == by_name(trace.threads, "MainThread").id
    assert loop.started_ns < loop.stopped_ns


def test_network_waits_and_io_wakeups(trace: Trace) -> None:
    clients = {by_name(trace.tasks, f"client-{i}").id for i in range(CLIENTS)}
    waits = trace.suspend_reasons()
    mine = np.isin(waits.g, list(clients))
    assert (waits.category[mine] == Category.NETWORK).sum() >= CLIENTS * MESSAGES
    stacks = {trace.stacks[s][-1].function for s in np.unique(waits.stack[mine]).tolist() if trace.stacks[s]}
    assert f"{__name__}.client" in stacks  # outermost frame: the task's coroutine
    ready = of_kind(trace, Kind.TASK_READY)
    assert ((ready.arg[np.isin(ready.g, list(clients))] & 7) == Waker.IO).any()


def test_gc(trace: Trace) -> None:
    starts, ends = of_kind(trace, Kind.GC_START), of_kind(trace, Kind.GC_END)
    assert len(starts) == len(ends) >= 2
    threads = {by_name(trace.threads, "MainThread").id, by_name(trace.threads, "worker-1").id}
    assert threads <= set(starts.g[starts.arg == 2].tolist())
    assert np.all(ends.ts >= starts.ts)
    assert (of_kind(trace, Kind.HEAP_BLOCKS).arg > 0).all()


# -- annotations ------------------------------------------------------------------


def test_user_tasks(trace: Trace) -> None:
    batch, child = by_name(trace.user_tasks, "batch"), by_name(trace.user_tasks, "child")
    (main_task,) = [t for t in trace.tasks if t.start_function == f"{__name__}.main"]
    assert batch.parent_id is None and child.parent_id == batch.id
    assert batch.g == child.g == main_task.id
    assert batch.begin_ns < child.begin_ns < child.end_ns <= batch.end_ns


def test_regions(trace: Trace) -> None:
    regions = trace.regions
    rows = {name: i for i, name in enumerate(regions.name.tolist())}
    assert set(rows) == {"clients", "outer", "inner", "worker-region"}
    batch, child = by_name(trace.user_tasks, "batch"), by_name(trace.user_tasks, "child")
    assert regions.task[rows["clients"]] == batch.id
    assert regions.task[rows["outer"]] == regions.task[rows["inner"]] == child.id
    assert regions.task[rows["worker-region"]] == 0
    assert regions.g[rows["worker-region"]] == by_name(trace.threads, "worker-1").id
    outer, inner = rows["outer"], rows["inner"]
    assert regions.begin_ns[outer] <= regions.begin_ns[inner] <= regions.end_ns[inner] <= regions.end_ns[outer]
    assert np.all(regions.end_ns >= regions.begin_ns) and np.all(np.diff(regions.begin_ns) >= 0)


def test_logs(trace: Trace) -> None:
    logs = trace.logs
    assert len(logs) == 1
    assert (logs.category[0], logs.message[0]) == ("progress", "clients done")
    assert logs.task[0] == by_name(trace.user_tasks, "batch").id


@pytest.mark.parametrize(
    ("g", "opens", "begins", "ends"),
    [
        ([], [], [], []),
        ([1, 1, 1, 1], [1, 1, 0, 0], [0, 1], [3, 2]),
        ([1, 2, 1, 2], [1, 1, 0, 0], [0, 1], [2, 3]),
        ([1, 1, 1, 1], [0, 1, 0, 0], [1], [2]),  # an end with nothing open is ignored
        ([1, 1, 1], [1, 1, 0], [0, 1], [-1, 2]),  # the outer region never ended
        ([5, 5, 3, 3, 5, 3], [1, 0, 0, 1, 1, 0], [0, 3, 4], [1, 5, -1]),
    ],
)
def test_match_spans(g: list, opens: list, begins: list, ends: list) -> None:
    got_begins, got_ends = match_spans(np.array(g, dtype=np.int64), np.array(opens, dtype=bool))
    assert got_begins.tolist() == begins and got_ends.tolist() == ends


def test_to_dataframe(trace: Trace) -> None:
    pd = pytest.importorskip("pandas")
    frame = trace.to_dataframe()
    assert isinstance(frame, pd.DataFrame) and len(frame) == trace.event_count
    assert list(frame.columns) == ["ts", "g", "kind", "event", "arg"]
    assert (frame["event"] == "TASK_STEP").sum() == (trace.events.kind == Kind.TASK_STEP).sum()
    assert len(trace.regions.to_dataframe()) == len(trace.regions)


def test_to_polars_dataframe(trace: Trace) -> None:
    pl = pytest.importorskip("polars")
    frame = trace.to_dataframe("polars")
    assert isinstance(frame, pl.DataFrame) and frame.height == trace.event_count
    assert frame.columns == ["ts", "g", "kind", "event", "arg"]
    assert (frame["event"] == "TASK_STEP").sum() == (trace.events.kind == Kind.TASK_STEP).sum()
    regions = trace.regions.to_dataframe("polars")
    assert regions.height == len(trace.regions) and regions["name"].to_list() == trace.regions.name.tolist()
    with pytest.raises(ValueError, match="pandas, polars"):
        trace.to_dataframe("arrow")


def test_to_dataframe_without_pandas(trace: Trace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        trace.to_dataframe()


# -- damaged and unfinished recordings ----------------------------------------------


def test_truncated_real_recording(recorded: tuple[Path, dict], tmp_path: Path) -> None:
    data = recorded[0].read_bytes()
    end = data.rindex(b"XTCK")  # the END chunk
    events = data.rindex(b"XTCK", 0, end)  # the last EVENTS chunk
    cut = tmp_path / "cut.xtrace"
    cut.write_bytes(data[: (events + end) // 2])
    with pytest.warns(TraceWarning, match="truncated") as caught:
        trace = exectracer.load(cut)
    assert "no END chunk" in str(caught[0].message)
    assert trace.lost.truncated_bytes == (events + end) // 2 - events
    assert 0 < trace.event_count < exectracer.load(recorded[0]).event_count
    with pytest.raises(TraceFormatError, match="truncated"):
        exectracer.load(cut, strict=True)


def test_damaged_real_recording(recorded: tuple[Path, dict], tmp_path: Path) -> None:
    data = bytearray(recorded[0].read_bytes())
    first_events = data.index(b"XTCK\x04")
    data[first_events + 40] ^= 0xFF
    damaged = tmp_path / "damaged.xtrace"
    damaged.write_bytes(data)
    with pytest.warns(TraceWarning, match=f"at byte {first_events}: bad crc32"):
        trace = exectracer.load(damaged)
    assert 0 < trace.event_count < exectracer.load(recorded[0]).event_count
    assert trace.lost.chunks_skipped == 1 and trace.lost.clean_end
    if Path("/proc/self/maps").exists():
        assert str(damaged) not in Path("/proc/self/maps").read_text()


def run_script(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args], env=env, stdout=subprocess.PIPE, text=True, **kwargs
    )


def logs_in(path: Path) -> int:
    """Log records in a trace being written, 0 while it has none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        try:
            return len(exectracer.load(path).logs)
        except TraceFormatError:
            return 0


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_process_leaves_a_readable_trace(tmp_path: Path) -> None:
    path = tmp_path / "killed.xtrace"
    proc = run_script(
        """
        import sys, time, exectracer
        exectracer.start(sys.argv[1], flush_interval=0.05)
        for i in range(10**9):
            exectracer.log("tick", str(i % 100))
            if i == 2000:
                print("ready", flush=True)
            time.sleep(0.0001)
        """,
        str(path),
    )
    try:
        assert proc.stdout.readline() == "ready\n"
        wait_for(lambda: logs_in(path) > 2000, "2000 log records in the file", interval=0.05)  # a live file is readable
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with pytest.warns(TraceWarning, match="no END chunk"):
        trace = exectracer.load(path)
    assert not trace.lost.clean_end and not trace.lost.problems
    assert len(trace.logs) > 2000 and set(trace.logs.category.tolist()) == {"tick"}
    with pytest.raises(TraceFormatError, match="no END chunk"):
        exectracer.load(path, strict=True)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_never_writes_to_the_trace(tmp_path: Path) -> None:
    path = tmp_path / "forked.xtrace"
    proc = run_script(
        """
        import os, sys, exectracer
        exectracer.start(sys.argv[1], flush_interval=0.05)
        exectracer.log("parent", "before fork")
        pid = os.fork()
        if pid == 0:
            ok = not exectracer.is_tracing()
            with exectracer.region("in-child"):
                exectracer.log("child", "hello")
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        exectracer.log("parent", "after fork")
        exectracer.stop()
        print(os.waitstatus_to_exitcode(status))
        """,
        str(path),
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.strip() == "0"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trace = exectracer.load(path, strict=True)
    assert trace.logs.message.tolist() == ["before fork", "after fork"]
    assert len(trace.regions) == 0


def test_loading_while_tracing_with_a_fast_sampler(recorded: tuple[Path, dict], tmp_path: Path) -> None:
    # the sampler can hold the loader's frames for an instant; the file must close anyway
    with exectracer.trace(tmp_path / "outer.xtrace", sample_interval=0.001):
        for _ in range(300):
            assert exectracer.load(recorded[0]).event_count > 0


def test_kind_lookup_matches_indexing() -> None:
    rng = np.random.default_rng(3)
    kind = rng.integers(0, 256, 10_000).astype(np.uint8)
    for table in (rng.integers(-128, 128, 256).astype(np.int8), rng.random(256) < 0.5):
        assert np.array_equal(kind_lookup(table, kind), table[kind])
        assert np.array_equal(kind_lookup(table, kind[::3]), table[kind[::3]])  # a strided view
