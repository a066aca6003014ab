"""uvloop: tasks, waits with their categories, wakers and loops, recorded from real uvloop loops and sockets.

The same programs as ``test_record_asyncio.py`` where the event model is the
same, and what is particular to uvloop: tracing started before the loop
exists (each way a program makes one) and while it runs, and ``stop()``
putting uvloop's loop class back as it was.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time

import pytest

import exectracer
from exectracer.analysis.states import State
from exectracer.format.events import Category, Kind, Outcome, Waker
from exectracer.record import uvloop_hooks

from support.recorded import Recorded

uvloop = pytest.importorskip("uvloop")

pytestmark = pytest.mark.recorder


def uv_run(coro):
    """Run ``coro`` as a task of its own on a new uvloop loop (``uvloop.run`` wraps it in a coroutine of its own)."""
    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def functions(stack) -> list[str]:
    return [frame.function for frame in stack]


def waits_of(rec: Recorded, task_suffix: str) -> list[tuple[int, int, list[str], int, int]]:
    """(ts, category, functions of the stack, waker type, waker id) of each suspension of a task."""
    task = rec.task(task_suffix)
    out = []
    for ts, cat, stack, _ in rec.suspensions(task.id):
        _, waker, waker_id = rec.ready_after(task.id, ts)
        out.append((ts, cat, functions(stack), waker, waker_id))
    return out


def test_stream_read_is_a_network_wait_woken_by_io(record):
    sent = {}

    async def serve(reader, writer):
        await asyncio.sleep(0.2)
        sent["ns"] = time.perf_counter_ns()
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    async def fetch(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        data = await reader.read(100)
        writer.close()
        return data

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        assert await asyncio.create_task(fetch(port)) == b"hello"
        server.close()
        await server.wait_closed()

    rec = record(lambda: uv_run(main()))
    task = rec.task("test_stream_read_is_a_network_wait_woken_by_io.<locals>.fetch")
    long_waits = []
    for ts, cat, stack, _ in rec.suspensions(task.id):
        ready_ts, waker, waker_id = rec.ready_after(task.id, ts)
        long_waits.append((ts, ready_ts, cat, stack, waker, waker_id))
    ((_, _, cat, stack, waker, waker_id),) = [w for w in long_waits if w[0] <= sent["ns"] <= w[1]]
    assert cat == Category.NETWORK
    names = functions(stack)
    assert names[0].endswith("StreamReader._wait_for_data")
    assert names[-1].endswith("fetch")
    assert waker == Waker.IO  # derived: the protocol method uvloop called from C
    assert rec.trace.strings[waker_id].endswith("data_received")
    assert task.outcome == Outcome.RETURNED
    assert rec.task("<locals>.main").id == task.parent_id


def test_sock_calls_are_woken_by_io_that_uvloop_handles_in_c(record):
    """uvloop completes the futures of its sock_* calls in C: no Python function queues the wake-up."""
    answered = {}

    async def serve(reader, writer):
        await reader.readexactly(4)
        await asyncio.sleep(0.2)
        answered["ns"] = time.perf_counter_ns()
        writer.write(b"pong")
        await writer.drain()
        writer.close()

    async def ask(address):
        loop = asyncio.get_running_loop()
        with socket.socket() as client:
            client.setblocking(False)
            await loop.sock_connect(client, address)
            await loop.sock_sendall(client, b"ping")
            return await loop.sock_recv(client, 100)

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        assert await asyncio.create_task(ask(server.sockets[0].getsockname())) == b"pong"
        server.close()
        await server.wait_closed()

    rec = record(lambda: uv_run(main()))
    task = rec.task("test_sock_calls_are_woken_by_io_that_uvloop_handles_in_c.<locals>.ask")
    ((_, cat, names, waker, waker_id),) = [
        (ts, cat, names, waker, waker_id)
        for ts, cat, names, waker, waker_id in waits_of(rec, task.start_function)
        if ts <= answered["ns"] <= rec.ready_after(task.id, ts)[0]
    ]
    assert cat == Category.OTHER  # the chain ends at the caller: uvloop's sock_recv is compiled
    assert names[0].endswith("ask")
    assert waker == Waker.IO and rec.trace.strings[waker_id] == uvloop_hooks.FROM_C
    s = rec.trace.analysis.states
    (at,) = ((s.goroutines.ids[s.gi] == task.id) & (s.start <= answered["ns"]) & (answered["ns"] < s.end)).nonzero()
    assert State(s.state[at[0]]) == State.NETWORK  # filed by what ended it


def test_lock_event_sleep_and_executor_waits_with_their_wakers(record):
    released = {}

    async def holder(lock, held):
        async with lock:
            held.set()
            await asyncio.sleep(0.05)
            released["ns"] = time.perf_counter_ns()

    async def waiter(lock, held):
        await held.wait()
        async with lock:
            pass

    async def main():
        lock, held = asyncio.Lock(), asyncio.Event()
        await asyncio.gather(holder(lock, held), waiter(lock, held))
        await asyncio.get_running_loop().run_in_executor(None, time.sleep, 0.01)
        await asyncio.to_thread(time.sleep, 0.01)

    rec = record(lambda: uv_run(main()))
    hold = rec.task("<locals>.holder")
    lock_waits = [w for w in waits_of(rec, "<locals>.waiter") if any("Lock.acquire" in f for f in w[2])]
    assert len(lock_waits) == 1
    ts, cat, _, waker, waker_id = lock_waits[0]
    assert cat == Category.SYNC and (waker, waker_id) == (Waker.TASK, hold.id)
    assert ts <= released["ns"]
    sleeps = [w for w in waits_of(rec, "<locals>.holder") if w[1] == Category.SLEEP]
    assert sleeps and all(w[3] == Waker.TIMER for w in sleeps)
    main_waits = waits_of(rec, "test_lock_event_sleep_and_executor_waits_with_their_wakers.<locals>.main")
    syscalls = [w for w in main_waits if w[1] == Category.SYSCALL]
    assert len(syscalls) == 2  # run_in_executor and to_thread
    workers = {t.id for t in rec.trace.threads if t.start_function and "concurrent.futures" in t.start_function}
    assert all(w[3] == Waker.THREAD and w[4] in workers for w in syscalls)


def test_tasks_created_with_parent_name_and_outcomes(record):
    async def child(n):
        await asyncio.sleep(0)
        if n == 1:
            raise ValueError("boom")
        if n == 2:
            await asyncio.sleep(10)
        return n

    async def main():
        ok = asyncio.create_task(child(0), name="ok-child")
        bad = asyncio.create_task(child(1))
        slow = asyncio.create_task(child(2))
        await asyncio.sleep(0.01)
        slow.cancel()
        results = await asyncio.gather(ok, bad, slow, return_exceptions=True)
        assert results[0] == 0 and isinstance(results[1], ValueError)

    rec = record(lambda: uv_run(main()))
    main_task = rec.task("test_tasks_created_with_parent_name_and_outcomes.<locals>.main")
    children = [t for t in rec.trace.tasks if (t.start_function or "").endswith("<locals>.child")]
    assert sorted(t.outcome for t in children) == sorted([Outcome.RETURNED, Outcome.RAISED, Outcome.CANCELLED])
    assert all(t.parent_id == main_task.id for t in children)
    assert "ok-child" in {t.name for t in children}
    assert main_task.outcome == Outcome.RETURNED
    loops = rec.trace.loops
    assert len(loops) == 1 and loops[0].class_name == "uvloop.Loop"


def test_threadsafe_wakeup_names_the_thread(record):
    async def main():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        def worker():
            time.sleep(0.02)
            loop.call_soon_threadsafe(fut.set_result, 1)

        thread = threading.Thread(target=worker, name="poker")
        thread.start()
        await fut
        thread.join()

    rec = record(lambda: uv_run(main()))
    (_ts, _cat, _stack, waker, waker_id), *_ = [
        w for w in waits_of(rec, "test_threadsafe_wakeup_names_the_thread.<locals>.main") if w[1] == Category.OTHER
    ]
    (poker,) = [t for t in rec.trace.threads if t.name == "poker"]
    assert (waker, waker_id) == (Waker.THREAD, poker.id)


def test_plain_callbacks_are_loop_work(record):
    ran = []

    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.call_soon(ran.append, "soon")
        loop.call_later(0.01, lambda: done.set_result(ran.append("later")))
        await done

    rec = record(lambda: uvloop.run(main()))
    # libuv runs due timers before uvloop's ready queue: on a loaded machine the 10 ms may pass first
    assert sorted(ran) == ["later", "soon"]
    begins = rec.of(Kind.CALLBACK_BEGIN)
    names = {rec.trace.strings[int(rec.arg[i]) >> 3] for i in begins}
    assert any(name.endswith("list.append") for name in names)
    assert any("<lambda>" in name for name in names)
    assert len(rec.of(Kind.CALLBACK_END)) == len(begins)


def test_callback_errors_reach_the_loop_handler_as_untraced(tmp_path):
    """uvloop reports a callback's exception itself, as untraced: the same message, handle and reprs."""

    async def main():
        loop = asyncio.get_running_loop()
        seen = []

        def handler(loop, context):
            handle = context["handle"]
            seen.append((context["message"], type(context["exception"]).__name__, type(handle).__name__, repr(handle)))

        loop.set_exception_handler(handler)
        handles = [loop.call_soon(int, "x"), loop.call_later(0.001, int, "y"), loop.call_soon(print)]
        shown = [repr(handle) for handle in handles]
        handles[2].cancel()
        await asyncio.sleep(0.05)
        return shown, sorted(seen)

    untraced = uv_run(main())
    with exectracer.trace(tmp_path / "t.xtrace"):
        traced = uv_run(main())
    assert traced == untraced
    message = "Exception in callback <class 'int'>"
    assert untraced == (
        ["<Handle int>", "<TimerHandle int>", "<Handle print>"],
        [
            (message, "ValueError", "Handle", "<Handle int>"),
            (message, "ValueError", "TimerHandle", "<TimerHandle int>"),
        ],
    )
    rec = Recorded(tmp_path / "t.xtrace")  # both recorded as callbacks that ended
    assert rec.trace.lost.hook_errors == ()
    names = [rec.trace.strings[int(rec.arg[i]) >> 3] for i in rec.of(Kind.CALLBACK_BEGIN)]
    assert sum(name.endswith(".int") for name in names) == 2
    assert len(rec.of(Kind.CALLBACK_END)) == len(names)


@pytest.mark.parametrize("way", ["uvloop.run", "loop_factory", "install", "new_event_loop"])
def test_every_way_of_making_a_uvloop_loop_before_tracing_is_seen(record, way):
    if way == "loop_factory" and sys.version_info < (3, 12):
        pytest.skip("asyncio.run(loop_factory=...) arrived in 3.12")

    async def child():
        await asyncio.sleep(0.01)

    async def main():
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        await asyncio.create_task(child())

    def program():
        if way == "uvloop.run":
            uvloop.run(main())
        elif way == "loop_factory":
            asyncio.run(main(), loop_factory=uvloop.new_event_loop)
        elif way == "install":
            policy = asyncio.get_event_loop_policy()
            try:
                with pytest.warns(DeprecationWarning) if sys.version_info >= (3, 12) else _nothing():
                    uvloop.install()
                asyncio.run(main())
            finally:
                asyncio.set_event_loop_policy(policy)
        else:
            loop = uvloop.new_event_loop()
            try:
                loop.run_until_complete(main())
            finally:
                loop.close()

    rec = record(program)
    child_task = rec.task("<locals>.child")
    assert child_task.outcome == Outcome.RETURNED
    # the main task starts main (uvloop.run's task runs a wrapper of its own that awaits it)
    assert rec.task("<locals>.main").id == child_task.parent_id
    assert [w[1] for w in waits_of(rec, "<locals>.child")] == [Category.SLEEP]
    starts, stops = rec.of(Kind.LOOP_START), rec.of(Kind.LOOP_STOP)
    assert len(starts) >= 1 and len(starts) == len(stops)  # asyncio.Runner runs the loop again to shut down
    assert len(rec.trace.loops) == 1 and rec.trace.loops[0].class_name == "uvloop.Loop"
    assert not any("cannot be hooked" in w for w in (rec.trace.summary or {}).get("warnings", []))


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_started_while_the_loop_runs_sees_tasks_that_existed_before(tmp_path):
    path = tmp_path / "live.xtrace"

    async def old_timer(stop):
        while not stop.is_set():
            await asyncio.sleep(0.005)

    async def main():
        stop = asyncio.Event()
        old = asyncio.create_task(old_timer(stop), name="from-before")
        await asyncio.sleep(0.02)
        exectracer.start(path)  # from inside a running uvloop loop, as a handler would
        try:
            new = asyncio.create_task(asyncio.sleep(0.02), name="made-while-tracing")
            await new
        finally:
            exectracer.stop()
        stop.set()
        await old

    uvloop.run(main())
    rec = Recorded(path)
    old = [t for t in rec.trace.tasks if t.name == "from-before"]
    new = [t for t in rec.trace.tasks if t.name == "made-while-tracing"]
    assert len(old) == 1 and len(new) == 1
    assert old[0].parent_id is None  # created before tracing started: seen at its first step
    assert len(rec.of(Kind.TASK_STEP, old[0].id)) >= 2
    assert {cat for _, cat, _, _ in rec.suspensions(old[0].id)} == {Category.SLEEP}
    assert new[0].parent_id is not None
    assert rec.task("<locals>.main").parent_id is None  # uvloop.run's task, seen first while it ran: it starts main
    assert rec.trace.loops and rec.trace.loops[0].class_name == "uvloop.Loop"


def test_stop_puts_uvloop_back_as_it_was(tmp_path):
    names = ("call_soon", "call_soon_threadsafe", "call_later", "call_at", "create_task", "run_forever", "close")
    before = {name: name in vars(uvloop.Loop) for name in names}
    assert not any(before.values())
    with exectracer.trace(tmp_path / "t.xtrace"):
        assert all(name in vars(uvloop.Loop) for name in names)
        assert uvloop.Loop.call_soon.__qualname__ == uvloop.loop.Loop.call_soon.__qualname__
    assert {name: name in vars(uvloop.Loop) for name in names} == before
    assert uvloop.run(asyncio.sleep(0, result=7)) == 7


def test_the_trace_says_what_it_cannot_see_on_uvloop(record):
    rec = record(lambda: uvloop.run(asyncio.sleep(0)))
    unseen = rec.trace.lost.unseen
    assert any("idle time" in note for note in unseen)
    assert any("data_received" in note for note in unseen)


def test_callbacks_run_in_their_own_context_as_untraced(tmp_path):
    """uvloop is handed the callback's own context (the C hooks do not enter it again): what a callback sees and
    sets in its context is as without the tracer."""
    import contextvars

    var = contextvars.ContextVar("var", default="unset")

    async def main():
        loop = asyncio.get_running_loop()
        seen = []
        given, given_later = contextvars.copy_context(), contextvars.copy_context()
        given.run(var.set, "given")
        given_later.run(var.set, "given later")
        var.set("current")
        done = loop.create_future()

        def look(tag):
            seen.append((tag, var.get()))
            var.set(tag)

        loop.call_soon(look, "soon")  # a copy of the current context: its set stays there
        loop.call_soon(look, "given", context=given)  # the given context: its set is kept in it
        loop.call_later(0.001, look, "later", context=given_later)
        loop.call_soon_threadsafe(look, "threadsafe")
        loop.call_later(0.002, done.set_result, None)
        await done

        async def child():
            seen.append(("task", var.get()))
            var.set("task")

        await asyncio.create_task(child())
        return sorted(seen), var.get(), given[var], given_later[var]

    untraced = uv_run(main())
    with exectracer.trace(tmp_path / "t.xtrace"):
        traced = uv_run(main())
    assert traced == untraced
    seen = [("given", "given"), ("later", "given later"), ("soon", "current"), ("task", "current")]
    assert untraced == (sorted([*seen, ("threadsafe", "current")]), "current", "given", "later")
    assert exectracer.load(tmp_path / "t.xtrace").lost.hook_errors == ()
