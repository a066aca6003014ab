"""The C hooks (``_speedups``) against the Python ones they mirror, on real loops."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import exectracer
from exectracer.format.events import CALLBACK_SHIFT, CATEGORY_SHIFT, WAKER_SHIFT, Category, Kind, Outcome, Waker
from exectracer.record import asyncio_hooks, native, uvloop_hooks

from programs import native_asyncio

pytestmark = pytest.mark.recorder

PROGRAM = Path(__file__).parent / "programs" / "native_asyncio.py"
THREADS_PROGRAM = Path(__file__).parent / "programs" / "native_threads.py"
PURE = bool(os.environ.get(native.PURE_PYTHON_VARIABLE))


def trace_program(tmp_path: Path, pure: bool, program: Path = PROGRAM, *args: str) -> exectracer.Trace:
    env = dict(os.environ)
    env.pop(native.PURE_PYTHON_VARIABLE, None)
    if pure:
        env[native.PURE_PYTHON_VARIABLE] = "1"
    path = tmp_path / f"{program.stem}{''.join(args)}-{'pure' if pure else 'native'}.xtrace"
    subprocess.run(
        [sys.executable, "-m", "exectracer", "run", "-o", str(path), str(program), *args],
        check=True,
        env=env,
        timeout=60,
    )
    return exectracer.load(path)


def task_names(trace: exectracer.Trace) -> dict[int, str]:
    """A name for each task that does not depend on timing: its own if given, else its start function and rank.

    Default names (Task-N) count every task of the process, so the server's
    and the client's tasks of the loopback exchange may swap numbers between
    two runs; the n-th task started by the same function is the same task.
    """
    names: dict[int, str] = {}
    seen: Counter[str] = Counter()
    for task in sorted(trace.tasks, key=lambda task: task.id):
        if re.fullmatch(r"Task-\d+", task.name):
            seen[task.start_function] += 1
            names[task.id] = f"{task.start_function}#{seen[task.start_function]}"
        else:
            names[task.id] = task.name
    return names


def story(trace: exectracer.Trace) -> dict[str, Any]:
    """Each task's events in time order (a suspension with its stack's functions and lines), and each loop's
    callbacks (as a multiset: their order across I/O may vary), with ids resolved to names."""
    names = task_names(trace)
    names.update({thread.id: f"thread {thread.name}" for thread in trace.threads})
    order = np.argsort(trace.events["ts"], kind="stable")
    kind, arg, g = (trace.events[c][order].tolist() for c in ("kind", "arg", "g"))
    out: dict[str, Any] = defaultdict(list)
    for task in trace.tasks:  # its description; a name is compared as it is unless asyncio's default made it
        own_name = None if re.fullmatch(r"Task-[1-9]\d*", task.name) else task.name
        out[names[task.id]].append(
            ("task", own_name, task.start_function, task.line, names.get(task.parent_id), task.loop_id, task.eager)
        )
    for k, a, who in zip(kind, arg, g, strict=True):
        if k == Kind.TASK_SUSPEND:
            frames = tuple((frame.function, frame.line) for frame in trace.stacks[a >> CATEGORY_SHIFT])
            out[names[who]].append(("suspend", Category(a & ((1 << CATEGORY_SHIFT) - 1)).name, frames))
        elif k == Kind.TASK_READY:
            source, ident = Waker(a & ((1 << WAKER_SHIFT) - 1)), a >> WAKER_SHIFT
            waker = names.get(ident) if source in (Waker.TASK, Waker.THREAD) else trace.strings.get(ident)
            out[names[who]].append(("ready", source.name, waker))
        elif k in (Kind.TASK_STEP, Kind.TASK_EAGER):
            out[names[who]].append(("step",))
        elif k == Kind.TASK_DONE:
            out[names[who]].append(("done", Outcome(a).name))
        elif k == Kind.CALLBACK_BEGIN:
            out[f"loop {who}"].append(("callback", trace.strings[a >> CALLBACK_SHIFT], a & ((1 << CALLBACK_SHIFT) - 1)))
    return {who: Counter(events) if who.startswith("loop") else events for who, events in out.items()}


@pytest.mark.skipif(PURE, reason="the C hooks are switched off in this run")
def test_the_c_hooks_are_built_and_used(tmp_path):
    assert native.speedups() is not None, "exectracer.record._speedups is not built: install with a C compiler"
    with exectracer.trace(tmp_path / "t.xtrace"):
        assert type(asyncio.events.Handle._run).__name__ == "StepRunner"
        assert type(asyncio.base_events.BaseEventLoop._call_soon).__name__ == "ReadySoon"
    assert native.speedups().Region in exectracer.region.__mro__  # regions enter and leave in C
    assert asyncio.events.Handle._run is asyncio_hooks.asyncio.events.Handle.__dict__["_run"]
    assert type(asyncio.events.Handle._run).__name__ == "function"  # restored
    assert exectracer.load(tmp_path / "t.xtrace").metadata["native_hooks"] is True


@pytest.mark.skipif(PURE, reason="the C hooks are switched off in this run")
def test_c_and_python_hooks_record_the_same_story(tmp_path):
    c_story, python_story = story(trace_program(tmp_path, pure=False)), story(trace_program(tmp_path, pure=True))
    assert c_story.keys() == python_story.keys()
    for who in c_story:
        assert c_story[who] == python_story[who], who
    # the program reached every path it means to
    deep = [event for event in c_story["deep"] if event[0] == "suspend"]
    assert len(deep[0][2]) > 64 and deep[0][1] == "SYNC"
    assert any(event[0] == "suspend" and ("__main__.legacy" in dict(event[2])) for event in c_story["legacy"])
    assert ("done", "CANCELLED") in c_story["cancelled"]
    suspensions = [event for events in c_story.values() for event in events if event[0] == "suspend"]
    assert any(e[1] == "SYSCALL" and [f for f, _ in e[2]] == ["__main__.main"] for e in suspensions)  # run_in_executor
    assert any(event[0] == "suspend" and event[1] == "NETWORK" for event in c_story["exchange"])
    assert any(event[0] == "suspend" and event[1] == "YIELD" for event in c_story["contender-0"])
    assert ("ready", "TASK", "__main__.main#1") in c_story["pong"]
    callbacks = {event[1] for who, events in c_story.items() if who.startswith("loop") for event in events}
    assert {"builtins.print", "__main__.broken_callback", "builtins.set.add", "builtins.set.discard"} <= callbacks


@pytest.mark.skipif(PURE, reason="the C hooks are switched off in this run")
def test_c_and_python_hooks_record_the_same_story_on_uvloop(tmp_path):
    pytest.importorskip("uvloop")
    traces = [trace_program(tmp_path, pure, PROGRAM, "--uvloop") for pure in (False, True)]
    assert all([loop.class_name for loop in trace.loops] == ["uvloop.Loop"] for trace in traces)
    c_story, python_story = (story(trace) for trace in traces)
    assert c_story.keys() == python_story.keys()
    for who in c_story:
        assert c_story[who] == python_story[who], who
    assert ("done", "CANCELLED") in c_story["cancelled"]
    assert any(event[0] == "suspend" and event[1] == "NETWORK" for event in c_story["exchange"])
    assert any(event[0] == "ready" and event[1] == "TASK" for event in c_story["pong"])
    assert ("ready", "IO", uvloop_hooks.FROM_C) in c_story["sockets"]  # sock_recv's future, completed in C
    callbacks = {event[1] for who, events in c_story.items() if who.startswith("loop") for event in events}
    assert {"builtins.print", "__main__.broken_callback"} <= callbacks


def test_tasks_keep_their_names_and_creators(tmp_path):
    """Checked by name, which the story above leaves out for asyncio's default names
    (their numbers vary between runs)."""
    made: list[str] = []

    async def creator() -> None:
        loop = asyncio.get_running_loop()
        for name in (None, None, "Task-007", "mine"):
            task = loop.create_task(asyncio.sleep(0), name=name)
            made.append(task.get_name())
            await task

    async def main() -> None:
        await asyncio.create_task(creator(), name="the creator")

    with exectracer.trace(tmp_path / "t.xtrace"):
        asyncio.run(main())
    trace = exectracer.load(tmp_path / "t.xtrace")
    by_id = {task.id: task for task in trace.tasks}
    sleeps = {
        task.name: by_id[task.parent_id].name for task in trace.tasks if task.start_function == "asyncio.tasks.sleep"
    }
    assert sleeps == {name: "the creator" for name in made}


def thread_waits(trace: exectracer.Trace) -> Counter:
    """Each thread's waits: (thread, category, the stack's functions, the waker's name) as a multiset.

    The main thread's are left out but for its sleep: whether a join or a
    write lasts the 20 µs that makes it a wait depends on timing.
    """
    names = {thread.id: thread.name for thread in trace.threads}
    names.update({task.id: task.start_function for task in trace.tasks})
    order = np.argsort(trace.events["ts"], kind="stable")
    kind, arg, g = (trace.events[c][order].tolist() for c in ("kind", "arg", "g"))
    blocked: dict[int, int] = {}  # thread -> its BLOCK's arg, until the UNBLOCK
    waits: Counter = Counter()
    for k, a, who in zip(kind, arg, g, strict=True):
        if k == Kind.THREAD_BLOCK:
            blocked[who] = a
        elif k == Kind.THREAD_UNBLOCK and who in blocked:
            block = blocked.pop(who)
            category = Category(block & ((1 << CATEGORY_SHIFT) - 1))
            if names[who] != "MainThread" or category == Category.SLEEP:
                stack = tuple(frame.function for frame in trace.stacks[block >> CATEGORY_SHIFT])
                waits[names[who], category.name, stack, names.get(a)] += 1
    return waits


@pytest.mark.skipif(PURE, reason="the C hooks are switched off in this run")
def test_c_and_python_wait_hooks_record_the_same_waits(tmp_path):
    c_waits = thread_waits(trace_program(tmp_path, False, THREADS_PROGRAM))
    python_waits = thread_waits(trace_program(tmp_path, True, THREADS_PROGRAM))
    assert c_waits == python_waits
    waits = {(thread, category, stack[0], waker) for thread, category, stack, waker in c_waits}
    assert {
        ("receiver", "NETWORK", "__main__.receive", None),
        ("selector", "NETWORK", "__main__.wait_readable", None),
        ("reader", "SYSCALL", "__main__.read_pipe", None),
        ("locker", "SYNC", "__main__.take", "MainThread"),
        ("task-locker", "SYNC", "__main__.take", "__main__.release_in_task"),
        ("rlocker", "SYNC", "__main__.take_again", "MainThread"),
        ("notified", "SYNC", "__main__.wait_notified", "MainThread"),
        ("MainThread", "SLEEP", "__main__.main", None),
    } <= waits
    assert (
        sum(1 for wait in c_waits if wait[0] == "notified") == 1
    )  # its lock, taken back inside the wait, is no wait of its own


def test_a_callback_raising_systemexit_ends_the_loop_and_leaves_no_current_step(tmp_path):
    def stop() -> None:
        raise SystemExit(3)

    async def main() -> None:
        asyncio.get_running_loop().call_soon(stop)
        await asyncio.sleep(1)

    with exectracer.trace(tmp_path / "t.xtrace"):
        loop = asyncio.new_event_loop()
        with pytest.raises(SystemExit) as raised:
            loop.run_until_complete(main())
        assert raised.value.code == 3
        from exectracer.record.recorder import current

        assert current().registry.local.cur == 0
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
    trace = exectracer.load(tmp_path / "t.xtrace")
    kinds = trace.events["kind"].tolist()
    assert kinds.count(Kind.CALLBACK_BEGIN) == kinds.count(Kind.CALLBACK_END) > 0


def test_a_step_raising_keyboardinterrupt_propagates_with_its_traceback(tmp_path):
    async def interrupted() -> None:
        await asyncio.sleep(0)
        raise KeyboardInterrupt

    with exectracer.trace(tmp_path / "t.xtrace"):
        with pytest.raises(KeyboardInterrupt) as raised:
            asyncio.run(interrupted())
        from exectracer.record.recorder import current

        assert current().registry.local.cur == 0
    assert any(entry.name == "interrupted" for entry in raised.traceback)


def test_loops_in_two_threads_keep_their_own_current_step(tmp_path):
    with exectracer.trace(tmp_path / "t.xtrace"):
        threads = [threading.Thread(target=asyncio.run, args=(native_asyncio.ping_pong(300),)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    trace = exectracer.load(tmp_path / "t.xtrace")
    loop_of = {task.id: task.loop_id for task in trace.tasks}
    assert len(set(loop_of.values())) == 2
    kind, arg, g = (trace.events[c].tolist() for c in ("kind", "arg", "g"))
    woken_by_tasks = 0
    for k, a, who in zip(kind, arg, g, strict=True):
        if k == Kind.TASK_READY and a & ((1 << WAKER_SHIFT) - 1) == Waker.TASK:
            assert loop_of[a >> WAKER_SHIFT] == loop_of[who]
            woken_by_tasks += 1
    assert woken_by_tasks >= 2 * 2 * 300


speedups = native.speedups()
needs_c = pytest.mark.skipif(speedups is None, reason="the C hooks are not built or are switched off")


@needs_c
@given(
    st.lists(
        st.tuples(st.sampled_from(["set", "get", "pop", "del", "in"]), st.integers(1, 600), st.integers(0, 2**64 - 1)),
        max_size=400,
    )
)
@settings(deadline=None)  # no example is too slow: a busy machine makes any slow
def test_task_ids_behaves_like_a_dict(operations):
    ids, model = speedups.TaskIds(), {}
    for op, slot, value in operations:
        key = slot * 16  # addresses: aligned, never 0 or 1
        if op == "set":
            ids[key] = model[key] = value
        elif op == "get":
            assert ids.get(key) == model.get(key) and ids.get(key, -1) == model.get(key, -1)
        elif op == "pop":
            assert ids.pop(key, None) == model.pop(key, None)
        elif op == "del":
            if key in model:
                del ids[key], model[key]
            else:
                with pytest.raises(KeyError):
                    del ids[key]
        else:
            assert (key in ids) == (key in model)
        assert len(ids) == len(model)
    for key, value in model.items():
        assert ids[key] == value


@needs_c
def test_task_ids_refuses_what_is_not_an_id():
    ids = speedups.TaskIds()
    for bad in ("x", 0, 1, -5, 1.5, 2**64):
        with pytest.raises((TypeError, OverflowError)):
            ids[bad] = 1
    with pytest.raises(KeyError):
        ids[16]
    with pytest.raises(KeyError):
        ids.pop(16)


@needs_c
def test_rows_start_empty_and_are_emptied_by_take():
    rows = speedups.Rows()
    assert len(rows) == 0
    assert rows.take() == (b"", 0, 0)


SWITCHED_AFTER_IMPORT = """
import os, sys
import exectracer
from exectracer.format.events import Kind
late = exectracer.region("late")  # the recorder's side is in use: the switch is read
if sys.argv[2]:
    os.environ["EXECTRACER_PURE_PYTHON"] = "1"
else:
    os.environ.pop("EXECTRACER_PURE_PYTHON", None)
with exectracer.trace(sys.argv[1]):
    with late:
        pass
trace = exectracer.load(sys.argv[1])
print(trace.metadata["native_hooks"], list(trace.events.kind).count(Kind.REGION_BEGIN))
"""


@pytest.mark.parametrize("pure_at_import", [False, True], ids=["c-then-pure", "pure-then-c"])
def test_the_switch_is_read_once_when_the_recorder_is_first_used(tmp_path, pure_at_import):
    """Regions' class is chosen as they are imported: a switch flipped later changes nothing, so no region is lost."""
    if speedups is None and not pure_at_import:
        pytest.skip("the C hooks are not built or are switched off")
    env = dict(os.environ)
    env.pop(native.PURE_PYTHON_VARIABLE, None)
    if pure_at_import:
        env[native.PURE_PYTHON_VARIABLE] = "1"
    flip = "" if pure_at_import else "1"
    done = subprocess.run(
        [sys.executable, "-c", SWITCHED_AFTER_IMPORT, str(tmp_path / "t.xtrace"), flip],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(not pure_at_import), "1"]


@pytest.mark.skipif(
    not hasattr(speedups, "compress_whole"), reason="the C hooks are not built, or zlib is not a shared library here"
)
def test_compress_whole_is_zlib_compress_without_the_gil():
    import zlib

    data = bytes(range(256)) * 4096 + os.urandom(1 << 16)
    for level in (1, 6, 9):
        assert speedups.compress_whole(data, level) == zlib.compress(data, level)
    assert speedups.compress_whole(memoryview(data)[7:], 1) == zlib.compress(data[7:], 1)
    assert speedups.compress_whole(b"", 1) == zlib.compress(b"", 1)
    with pytest.raises(ValueError, match="level 12"):
        speedups.compress_whole(data, 12)

    stamps: list[float] = []
    counting = threading.Event()
    done = threading.Event()

    def count() -> None:  # runs Python only while the other thread has let go of the GIL
        counting.set()
        while not done.is_set():
            stamps.append(time.perf_counter())
            for _ in range(1000):
                pass

    counter = threading.Thread(target=count)
    big = os.urandom(1 << 20) * 48  # about 0.1 s of zlib at level 1
    counter.start()
    counting.wait()
    start = time.perf_counter()
    speedups.compress_whole(big, 1)
    end = time.perf_counter()
    done.set()
    counter.join()
    margin = (end - start) / 5
    assert any(start + margin < t < end - margin for t in stamps), (
        "the other thread ran Python while the data was compressed"
    )
