"""asyncio tasks, wake-ups, callbacks and idle time, recorded from real loops and sockets."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import pytest

from exectracer.format.events import Category, Kind, Outcome, Waker

pytestmark = pytest.mark.recorder


def functions(stack) -> list[str]:
    return [frame.function for frame in stack]


def test_stream_read_is_a_network_wait_with_its_await_chain(record):
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

    rec = record(lambda: asyncio.run(main()))
    task = rec.task("test_stream_read_is_a_network_wait_with_its_await_chain.<locals>.fetch")
    waits = [(ts, cat, stack, i) for ts, cat, stack, i in rec.suspensions(task.id) if "fetch" in functions(stack)[-1]]
    long_waits = []
    for ts, cat, stack, _ in waits:
        ready_ts, waker, _ = rec.ready_after(task.id, ts)
        long_waits.append((ts, ready_ts, cat, stack, waker))
    # one wait spans the moment the server sent its reply, 0.2 s after it accepted: the wait for the reply
    ((_, _, cat, stack, waker),) = [w for w in long_waits if w[0] <= sent["ns"] <= w[1]]
    assert cat == Category.NETWORK
    names = functions(stack)
    assert names[0].endswith("StreamReader._wait_for_data")
    assert "asyncio.streams.StreamReader.read" in names
    assert names[-1].endswith("fetch")
    assert stack[-1].file == __file__
    assert waker == Waker.IO
    assert task.outcome == Outcome.RETURNED


def test_lock_wait_is_sync_and_names_the_holder_as_waker(record):
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

    rec = record(lambda: asyncio.run(main()))
    hold = rec.task("holder")
    wait = rec.task("waiter")
    lock_waits = [
        (ts, stack)
        for ts, cat, stack, _ in rec.suspensions(wait.id)
        if cat == Category.SYNC and any("Lock.acquire" in f for f in functions(stack))
    ]
    assert len(lock_waits) == 1
    ts, _stack = lock_waits[0]
    ready_ts, waker, waker_id = rec.ready_after(wait.id, ts)
    assert waker == Waker.TASK and waker_id == hold.id
    assert ts <= released["ns"] <= ready_ts  # waiting from before the holder let go of the lock until it did


def test_sleep_timer_executor_and_subprocess_categories(record):
    async def main():
        await asyncio.sleep(0.01)
        await asyncio.get_running_loop().run_in_executor(None, time.sleep, 0.01)
        await asyncio.to_thread(time.sleep, 0.01)
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(0.05)")
        await proc.wait()

    rec = record(lambda: asyncio.run(main()))
    task = rec.task("test_sleep_timer_executor_and_subprocess_categories.<locals>.main")
    waits = rec.suspensions(task.id)
    by_line = {}
    for _ts, cat, stack, _ in waits:
        by_line.setdefault(stack[-1].line, set()).add(cat)
    first = main.__code__.co_firstlineno  # the body's lines follow in order
    assert by_line[first + 1] == {Category.SLEEP}
    assert by_line[first + 2] == {Category.SYSCALL}  # run_in_executor
    assert by_line[first + 3] == {Category.SYSCALL}  # to_thread
    assert by_line[first + 5] == {Category.SYSCALL}  # Process.wait
    sleep_ts = next(ts for ts, cat, _, _ in waits if cat == Category.SLEEP)
    assert rec.ready_after(task.id, sleep_ts)[1] == Waker.TIMER


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
        await asyncio.gather(ok, bad, slow, return_exceptions=True)

    rec = record(lambda: asyncio.run(main()))
    main_task = rec.task("test_tasks_created_with_parent_name_and_outcomes.<locals>.main")
    children = [t for t in rec.trace.tasks if (t.start_function or "").endswith("<locals>.child")]
    assert len(children) == 3
    assert all(t.parent_id == main_task.id for t in children)
    assert {t.name for t in children} >= {"ok-child"}
    assert all(t.name.startswith("Task-") for t in children if t.name != "ok-child")
    assert sorted(t.outcome for t in children) == sorted([Outcome.RETURNED, Outcome.RAISED, Outcome.CANCELLED])
    steps = rec.of(Kind.TASK_STEP, main_task.id)
    ends = len(rec.of(Kind.TASK_SUSPEND, main_task.id)) + len(rec.of(Kind.TASK_DONE, main_task.id))
    assert len(steps) == ends >= 2


def test_tasks_of_anyio_start_the_functions_it_was_given(record):
    """anyio.run and a task group's start_soon run each function in a coroutine of anyio's own: the tasks are said
    to start the program's functions, as tasks made with asyncio.run and create_task are."""
    anyio = pytest.importorskip("anyio")

    async def worker():
        await anyio.sleep(0.001)

    async def main():
        async with anyio.create_task_group() as group:
            group.start_soon(worker)
            group.start_soon(worker)

    rec = record(lambda: anyio.run(main, backend="asyncio"))
    main_task = rec.task("test_tasks_of_anyio_start_the_functions_it_was_given.<locals>.main")
    workers = [t for t in rec.trace.tasks if (t.start_function or "").endswith("<locals>.worker")]
    assert len(workers) == 2 and all(t.parent_id == main_task.id for t in workers)
    assert not [t.start_function for t in rec.trace.tasks if (t.start_function or "").startswith("anyio.")]


def test_callbacks_and_idle_time_are_loop_work(record):
    def tick(box):
        box.append(time.perf_counter())

    async def main():
        loop = asyncio.get_running_loop()
        box = []
        loop.call_soon(tick, box)
        loop.call_later(0.05, tick, box)
        await asyncio.sleep(0.1)
        assert len(box) == 2

    rec = record(lambda: asyncio.run(main()))
    names = [rec.trace.strings[int(a) >> 3] for a in rec.arg[rec.of(Kind.CALLBACK_BEGIN)]]
    assert sum(name.endswith("<locals>.tick") for name in names) == 2
    assert len(rec.of(Kind.CALLBACK_END)) == len(rec.of(Kind.CALLBACK_BEGIN))
    idle_begin, idle_end = rec.of(Kind.LOOP_IDLE_BEGIN), rec.of(Kind.LOOP_IDLE_END)
    assert len(idle_begin) == len(idle_end) >= 1
    idle = (rec.ts[idle_end] - rec.ts[idle_begin]).sum()
    assert idle > 0.05e9


def test_loop_created_before_start_and_tasks_started_earlier(tmp_path):
    import exectracer

    from support.recorded import Recorded

    loop = asyncio.new_event_loop()
    path = tmp_path / "early.xtrace"

    async def long_lived(started):
        started.set()
        for _ in range(3):
            await asyncio.sleep(0.01)

    async def main():
        started = asyncio.Event()
        task = asyncio.create_task(long_lived(started))
        await started.wait()
        exectracer.start(path)
        await task
        exectracer.stop()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    rec = Recorded(path)
    task = rec.task("long_lived")
    assert task.parent_id in (None, 0)
    assert len(rec.of(Kind.TASK_STEP, task.id)) >= 3
    assert task.outcome == Outcome.RETURNED


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks arrived in 3.12")
def test_eager_tasks_are_recorded(record):
    async def quick():
        return 1

    async def waits():
        await asyncio.sleep(0.01)

    async def main():
        asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)
        t1 = asyncio.create_task(quick())
        t2 = asyncio.create_task(waits())
        assert t1.done()
        await t2

    rec = record(lambda: asyncio.run(main()))
    quick_task = rec.task("<locals>.quick")
    waits_task = rec.task("<locals>.waits")
    assert quick_task.eager and waits_task.eager
    assert quick_task.outcome == Outcome.RETURNED
    assert len(rec.of(Kind.TASK_STEP, waits_task.id)) == 2


def test_threadsafe_wakeup_names_the_thread(record):
    import threading

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

    rec = record(lambda: asyncio.run(main()))
    task = rec.task("test_threadsafe_wakeup_names_the_thread.<locals>.main")
    (ts, _cat, _stack, _), *_ = [s for s in rec.suspensions(task.id) if s[1] == Category.OTHER]
    _, waker, waker_id = rec.ready_after(task.id, ts)
    # the future's result is set by a loop callback that the thread scheduled: it wakes the task on the thread's behalf
    poker = [t for t in rec.trace.threads if t.name == "poker"]
    assert len(poker) == 1 and poker[0].start_function.endswith("<locals>.worker")
    assert (waker, waker_id) == (Waker.THREAD, poker[0].id)


def test_echo_over_loopback_many_connections(record):
    async def echo(reader, writer):
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    async def client(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(20):
            writer.write(b"%d\n" % i)
            assert await reader.readline() == b"%d\n" % i
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        await asyncio.gather(*(client(port) for _ in range(10)))
        server.close()
        await server.wait_closed()

    rec = record(lambda: asyncio.run(main()))
    clients = [t for t in rec.trace.tasks if (t.start_function or "").endswith("<locals>.client")]
    assert len(clients) == 10
    for t in clients:
        cats = [cat for _, cat, stack, _ in rec.suspensions(t.id) if functions(stack)[-1].endswith("client")]
        assert cats.count(Category.NETWORK) >= 20
    assert socket  # sockets were real: the server bound a loopback port
    assert subprocess


def test_suspension_lines_in_one_await_and_many_await_coroutines(record):
    """A coroutine with one suspension point is keyed without its frame; each suspension still has its own line."""
    import inspect

    async def once(fut):
        await fut  # the only suspension point

    async def twice(first, second):
        await once(first)  # line A
        await once(second)  # line B

    async def main():
        loop = asyncio.get_running_loop()
        for _ in range(3):  # again and again: the second time on, the chains come from the cache
            first, second = loop.create_future(), loop.create_future()
            task = asyncio.create_task(twice(first, second))
            for fut in (first, second):
                await asyncio.sleep(0.001)
                fut.set_result(None)
            await task

    rec = record(lambda: asyncio.run(main()))
    source, start = inspect.getsourcelines(twice)
    line_a = start + next(i for i, text in enumerate(source) if "line A" in text)
    line_b = start + next(i for i, text in enumerate(source) if "line B" in text)
    once_line = inspect.getsourcelines(once)[1] + 1
    seen = []
    for task in [t for t in rec.trace.tasks if (t.start_function or "").endswith("twice")]:
        for _, _, stack, _ in rec.suspensions(task.id):
            if stack and stack[0].function.endswith("once"):
                seen.append((stack[0].line, stack[1].line))
    assert seen == [(once_line, line_a), (once_line, line_b)] * 3


def test_handles_queued_while_tracing_are_asyncio_handles(record):
    """The ``_call_soon`` hook fills handles itself where asyncio would give the same handle;
    debug mode still gets its tracebacks."""
    import contextvars

    from exectracer.record import asyncio_hooks

    var = contextvars.ContextVar("var", default="unset")
    seen = {}

    def callback(label):
        seen[label] = var.get()

    async def main(debug):
        loop = asyncio.get_running_loop()
        loop.set_debug(debug)
        assert asyncio_hooks._builds_handles_like_asyncio(type(loop)._call_soon)
        context = contextvars.copy_context()
        context.run(var.set, "given")
        given = loop.call_soon(callback, f"given-{debug}", context=context)
        copied = loop.call_soon(callback, f"copied-{debug}")
        cancelled = loop.call_soon(callback, f"cancelled-{debug}")
        cancelled.cancel()
        for handle in (given, copied):
            assert handle.__class__ is asyncio.Handle and not handle.cancelled()  # it passes for one
            assert (handle._source_traceback is not None) == debug
        assert cancelled.cancelled() and "cancelled" in repr(cancelled)
        await asyncio.sleep(0.01)

    def program():
        var.set("outer")
        asyncio.run(main(False))
        asyncio.run(main(True))

    record(program)
    assert seen == {"given-False": "given", "copied-False": "outer", "given-True": "given", "copied-True": "outer"}
