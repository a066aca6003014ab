"""The traced program never notices the tracer: errors, restoring, fork, SIGKILL, limits."""

from __future__ import annotations

import asyncio
import concurrent.futures.thread
import gc
import io
import os
import selectors
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
import warnings
from pathlib import Path

import pytest

import exectracer
from exectracer.format.events import Kind
from exectracer.reader import TraceWarning
from exectracer.record import asyncio_hooks, await_chain, interner

from support.waiting import wait_for

pytestmark = pytest.mark.recorder
SRC = str(Path(exectracer.__file__).resolve().parent.parent)


def patchable_state() -> dict:
    """Every attribute the recorder may replace, and gc.callbacks."""
    import asyncio.base_events as be
    import asyncio.events as ev
    import asyncio.selector_events as se

    owners = {
        "Handle": (ev.Handle, ["_run"]),
        "BaseEventLoop": (be.BaseEventLoop, ["_call_soon", "create_task", "run_forever", "close", "run_in_executor"]),
        "BaseSelectorEventLoop": (se.BaseSelectorEventLoop, ["_process_events"]),
        "Thread": (threading.Thread, ["start", "_bootstrap_inner", "name", "join"]),
        "threading": (threading, ["Lock", "RLock"]),
        "Condition": (threading.Condition, ["wait", "notify"]),
        "WorkItem": (concurrent.futures.thread._WorkItem, ["__init__", "run"]),
        "asyncio.events": (ev, ["set_event_loop"]),
        "asyncio": (asyncio, ["set_event_loop"]),
    }
    if hasattr(asyncio, "Runner"):
        owners["Runner"] = (asyncio.Runner, ["_lazy_init"])
    for name in ("SelectSelector", "PollSelector", "EpollSelector", "DevpollSelector", "KqueueSelector"):
        if hasattr(selectors, name):
            owners[name] = (getattr(selectors, name), ["select"])
    state = {}
    for label, (owner, attrs) in owners.items():
        for attr in attrs:
            state[f"{label}.{attr}"] = (vars(owner).get(attr, "<inherited>"), attr in vars(owner))
    state["gc.callbacks"] = list(gc.callbacks)
    return state


def test_stop_restores_every_patched_attribute(tmp_path):
    before = patchable_state()
    exectracer.start(tmp_path / "t.xtrace")
    during = patchable_state()
    asyncio.run(asyncio.sleep(0))
    exectracer.stop()
    after = patchable_state()
    assert after == before
    changed = [k for k in before if before[k] != during[k]]
    for name in ("Handle._run", "gc.callbacks", "Thread.start", "threading.Lock", "Condition.wait", "WorkItem.run"):
        assert name in changed


def test_starting_twice_and_bad_options_are_clear_errors(tmp_path):
    with pytest.raises(exectracer.TracingError, match="not running"):
        exectracer.stop()
    with pytest.raises(TypeError, match=r"unknown tracing option.*flush_intervall"):
        exectracer.start(tmp_path / "a.xtrace", flush_intervall=1)
    with pytest.raises(ValueError, match="flush_interval"):
        exectracer.start(tmp_path / "a.xtrace", flush_interval=0)
    with pytest.raises(ValueError, match="chunk_events must be from 1 to 2,796,202"):  # a larger chunk is unreadable
        exectracer.start(tmp_path / "a.xtrace", chunk_events=3_000_000)
    with pytest.raises(TypeError, match="path or a binary file"):
        exectracer.start(12.5)
    assert not exectracer.is_tracing()
    with exectracer.trace(tmp_path / "a.xtrace"):
        assert exectracer.is_tracing()
        with pytest.raises(exectracer.TracingError, match="already running"):
            exectracer.start(tmp_path / "b.xtrace")
    assert not exectracer.is_tracing()


def test_errors_inside_hooks_never_reach_the_program(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("hook failure")

    monkeypatch.setattr(await_chain.AwaitChains, "define", broken)
    monkeypatch.setattr(asyncio_hooks.CallbackNames, "name_id", broken)
    monkeypatch.setattr(interner.Interner, "frame", broken)

    async def main():
        results = []
        loop = asyncio.get_running_loop()
        loop.call_soon(results.append, 1)
        await asyncio.sleep(0.01)
        results.append(await asyncio.gather(asyncio.sleep(0, 2), asyncio.sleep(0.001, 3)))
        t = threading.Thread(target=results.append, args=(4,))
        t.start()
        t.join()
        return results

    exectracer.start(tmp_path / "t.xtrace")
    assert asyncio.run(main()) == [1, [2, 3], 4]
    totals = exectracer.stop()
    counted = {error.hook: error.count for error in exectracer.load(tmp_path / "t.xtrace").lost.hook_errors}
    assert {"asyncio.step", "asyncio.callback", "asyncio.create_task"} <= counted.keys(), (
        "every failing hook is counted"
    )
    assert totals["hook_errors"] == sum(counted.values())


class _FrozenThread(threading.Thread):
    """A thread that refuses attributes its class does not define (as some frameworks' objects do)."""

    def __setattr__(self, name, value):
        if not hasattr(type(self), name) and name not in vars(threading.Thread()):
            raise AttributeError(f"{type(self).__name__} is frozen: no attribute {name!r}")
        super().__setattr__(name, value)


def test_a_failing_hook_is_counted_and_every_reader_says_so(tmp_path):
    from exectracer.web.api import ViewerAPI

    done = []
    path = tmp_path / "t.xtrace"
    exectracer.start(path)
    thread = _FrozenThread(target=done.append, args=(1,))
    thread.start()  # the start hook cannot mark the thread: its creation is not recorded
    thread.join()
    totals = exectracer.stop()
    assert done == [1]
    assert totals["hook_errors"] == 1

    trace = exectracer.load(path)
    (error,) = trace.lost.hook_errors
    assert (error.hook, error.count) == ("thread.start", 1)
    assert error.first.startswith("AttributeError: _FrozenThread is frozen")
    assert not trace.lost.complete
    assert trace.analysis.summary()["trace"]["lost"]["hook_errors"] == 1
    info = ViewerAPI(trace).info({})
    assert any("thread.start failed 1 time" in warning for warning in info["warnings"])
    report = subprocess.run(
        [sys.executable, "-m", "exectracer", "summary", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "WARNING: incomplete trace: 1 hook errors" in report


def test_callback_exceptions_still_reach_the_loop_handler(tmp_path):
    seen = []

    def fail():
        raise KeyError("from a callback")

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: seen.append(context))
        loop.call_soon(fail)
        await asyncio.sleep(0.01)

    with exectracer.trace(tmp_path / "t.xtrace"):
        asyncio.run(main())
    assert len(seen) == 1
    assert isinstance(seen[0]["exception"], KeyError)
    assert "fail" in seen[0]["message"]


def test_trace_into_a_binary_file_object(tmp_path):
    buffer = io.BytesIO()
    with exectracer.trace(buffer):
        asyncio.run(asyncio.sleep(0.001))
    path = tmp_path / "copy.xtrace"
    path.write_bytes(buffer.getvalue())
    trace = exectracer.load(path)
    assert trace.event_count > 0 and trace.lost.clean_end


def test_failing_sink_warns_at_stop_and_the_program_goes_on():
    class Broken(io.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            raise OSError(28, "No space left on device")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exectracer.start(Broken())
        assert asyncio.run(asyncio.sleep(0.001, "fine")) == "fine"
        exectracer.stop()
    assert any("No space left" in str(w.message) for w in caught)


def test_slow_sink_drops_chunks_and_counts_them(tmp_path):
    class Slow(io.RawIOBase):
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, data):
            time.sleep(0.3)
            self.data += data
            return len(data)

    async def busy():
        for _ in range(20000):
            await asyncio.sleep(0)

    sink = Slow()
    exectracer.start(sink, flush_interval=0.05, max_pending_bytes=2000, chunk_events=512)
    asyncio.run(busy())
    totals = exectracer.stop()
    assert totals["events_lost"] > 0
    path = tmp_path / "slow.xtrace"
    path.write_bytes(bytes(sink.data))
    trace = exectracer.load(path)
    assert trace.lost.events_lost == totals["events_lost"]
    assert trace.event_count == totals["events"]


def events_in(path: Path) -> int:
    """Events in a trace being written, 0 while it has none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        try:
            return exectracer.load(path).event_count
        except exectracer.TraceFormatError:
            return 0


def run_child(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=SRC)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env, **kwargs)


def test_sigkilled_program_leaves_a_readable_trace(tmp_path):
    path = tmp_path / "killed.xtrace"
    child = run_child(
        """
        import asyncio, sys, exectracer
        exectracer.start(sys.argv[1], flush_interval=0.1)
        async def spin():
            while True:
                await asyncio.sleep(0.001)
        print("ready", flush=True)
        asyncio.run(spin())
        """,
        str(path),
        stdout=subprocess.PIPE,
    )
    assert child.stdout.readline().strip() == b"ready"
    try:
        wait_for(lambda: events_in(path) > 100, "100 events in the file", interval=0.05)  # readable while written
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    trace = exectracer.load(path)
    assert trace.event_count > 100
    assert not trace.lost.clean_end
    assert len(trace.tasks) >= 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_stops_tracing_and_leaves_the_parent_file_alone(tmp_path):
    path = tmp_path / "parent.xtrace"
    child = run_child(
        """
        import asyncio, os, sys, exectracer
        async def in_parent():
            await asyncio.sleep(0.01)
        async def in_child():
            await asyncio.sleep(0.01)
        exectracer.start(sys.argv[1], flush_interval=0.05)
        asyncio.run(in_parent())
        pid = os.fork()
        if pid == 0:
            ok = not exectracer.is_tracing()
            asyncio.run(in_child())
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        asyncio.run(in_parent())
        exectracer.stop()
        sys.exit(os.waitstatus_to_exitcode(status))
        """,
        str(path),
    )
    assert child.wait(timeout=60) == 0
    trace = exectracer.load(path, strict=True)
    functions = [t.start_function or "" for t in trace.tasks]
    assert sum(f.endswith("in_parent") for f in functions) == 2
    assert not any(f.endswith("in_child") for f in functions)
    assert trace.lost.clean_end


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_fork_while_a_loop_takes_a_sample_does_not_hang_the_child(tmp_path):
    """Forked while another thread holds the sampler's lock (a busy loop sampling itself),
    the child still stops tracing."""
    child = run_child(
        """
        import os, sys, exectracer
        from exectracer.record import recorder
        exectracer.start(sys.argv[1])
        busy = recorder.current().sampler._busy
        busy.acquire()  # as a loop thread does for the length of a sample
        pid = os.fork()
        if pid == 0:
            os._exit(0 if not exectracer.is_tracing() else 3)
        busy.release()
        _, status = os.waitpid(pid, 0)
        exectracer.stop()
        sys.exit(os.waitstatus_to_exitcode(status))
        """,
        str(tmp_path / "parent.xtrace"),
    )
    assert child.wait(timeout=60) == 0


def test_a_loop_no_hook_sees_is_reported_once_in_the_trace_and_the_rest_is_recorded(tmp_path):
    rloop = pytest.importorskip("rloop")  # an asyncio loop written in Rust: neither asyncio's nor uvloop's

    async def main():
        with exectracer.region("inside rloop"):
            await asyncio.sleep(0.001)
        gc.collect()
        return 7

    path = tmp_path / "rloop.xtrace"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # several loops, the sampler on. rloop 0.5 closes its self-pipe sockets twice at the end of every run (in
        # Rust, then through the Python sockets: strace shows close(n) = 0 then close(n) = -1 EBADF, untraced), so
        # a /proc file the sampler's thread opened in between is closed by rloop and its number goes to rloop's
        # next socket. The sampler then closed that socket (EBADF in rloop's epoll_ctl). It now closes only
        # descriptors still its own (procfs.ProcFile; tests/test_sampler.py has the deterministic test).
        with exectracer.trace(path):  # the default sampler
            for _ in range(5):
                loop = rloop.new_event_loop()
                asyncio.set_event_loop(loop)
                try:
                    for _ in range(2):
                        assert loop.run_until_complete(main()) == 7
                finally:
                    asyncio.set_event_loop(None)
                    loop.close()
    messages = [str(w.message) for w in caught if "cannot be hooked" in str(w.message)]
    assert len(messages) == 1 and "rloop" in messages[0]
    trace = exectracer.load(path)
    kinds = set(trace.events.kind.tolist())
    assert Kind.REGION_BEGIN in kinds and Kind.GC_START in kinds
    (note,) = trace.lost.unseen
    assert "rloop" in note and "tasks" in note


def test_our_warning_never_raises_into_a_program_that_makes_warnings_errors(tmp_path):
    rloop = pytest.importorskip("rloop")  # a loop no hook sees: the recorder warns of it
    if not hasattr(asyncio, "Runner"):
        pytest.skip("asyncio.Runner is Python 3.11's")

    path = tmp_path / "rloop.xtrace"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as `python -W error` or pytest's filterwarnings = error
        with exectracer.trace(path):
            with asyncio.Runner(loop_factory=rloop.new_event_loop) as runner:
                assert runner.run(asyncio.sleep(0, "done")) == "done"
    warned = exectracer.load(path).summary["warnings"]
    assert len(warned) == 1 and "rloop" in warned[0]


def test_unretrieved_task_exceptions_are_still_reported(tmp_path):
    reports = []

    async def fails():
        raise LookupError("nobody awaits me")

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: reports.append(context["message"]))
        task = asyncio.create_task(fails())
        await asyncio.sleep(0.01)
        assert task.done()
        del task
        gc.collect()

    with exectracer.trace(tmp_path / "t.xtrace"):
        asyncio.run(main())
    assert reports == ["Task exception was never retrieved"]


def test_a_negative_value_recorded_keeps_its_int64_bits(tmp_path):
    """The writer stages events as unsigned integers; one given negative is still written as itself."""
    from exectracer.format.chunks import CHUNK_HEADER, ChunkKind, split_chunks
    from exectracer.format.encoder import decode_event_rows
    from exectracer.record import recorder

    buf = io.BytesIO()
    with exectracer.trace(buf, compression=0):
        recorder.current().events.extend((int(Kind.LOOP_STOP), -12345, 1 << 40))
    rows = []
    for kind, chunk in split_chunks(buf.getvalue()):
        if kind == ChunkKind.EVENTS:
            codes, ts, g = decode_event_rows(bytes(chunk[CHUNK_HEADER.size :]))
            rows += zip(codes, ts, g, strict=True)
    assert (int(Kind.LOOP_STOP), -12345, 1 << 40) in rows


def test_a_frame_without_a_line_is_line_0(tmp_path):
    """A frame whose code has no line table (f_lineno None) in a recorded wait's stack: the trace stays readable."""

    def nap() -> None:
        time.sleep(0.05)

    no_lines = types.FunctionType(nap.__code__.replace(co_linetable=b""), globals())
    with exectracer.trace(tmp_path / "t.xtrace"):
        no_lines()
    trace = exectracer.load(tmp_path / "t.xtrace", strict=True)
    frames = [frame for stack in trace.stacks.values() for frame in stack if frame.function.endswith(".nap")]
    assert frames and all(frame.line == 0 for frame in frames)


def test_a_thread_that_cannot_be_described_at_start_does_not_fail_start(tmp_path, monkeypatch):
    """start() describes every thread already running; if describing one fails, the recording starts all the same
    (the failure counted), and stops cleanly."""
    from exectracer.record import registry

    def broken(*args, **kwargs):
        raise RuntimeError("hook failure")

    monkeypatch.setattr(registry.Registry, "adopt_thread", broken)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        exectracer.start(tmp_path / "t.xtrace")
        exectracer.stop()
    finally:
        stop.set()
        thread.join()
    trace = exectracer.load(tmp_path / "t.xtrace", strict=True)
    assert trace.metadata is not None and trace.summary["hook_errors"]["threads.adopt"]["count"] >= 2
