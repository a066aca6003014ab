"""trio tasks, wake-ups and idle time, recorded through trio's instruments from real runs, sockets and threads."""

from __future__ import annotations

import functools
import gc
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

trio = pytest.importorskip("trio")

import exectracer  # noqa: E402
from exectracer.analysis.states import LOOP_IDLE_STACK, State  # noqa: E402
from exectracer.format.events import CALLBACK_SHIFT, Category, Kind, Outcome, Waker  # noqa: E402

from support.recorded import Recorded  # noqa: E402
from support.waiting import wait_for  # noqa: E402

pytestmark = pytest.mark.recorder


def functions(stack) -> list[str]:
    return [frame.function for frame in stack]


def waits_of(rec: Recorded, g: int) -> list[tuple[int, int, list, int, int, int]]:
    """(ts, category, stack, ready ts, waker type, waker id) of each suspension of ``g`` that a wake-up ended."""
    out = []
    for ts, category, stack, _ in rec.suspensions(g):
        try:
            ready_ts, waker, waker_id = rec.ready_after(g, ts)
        except AssertionError:
            continue
        out.append((ts, category, stack, ready_ts, waker, waker_id))
    return out


def wait_at(rec: Recorded, g: int, function: str) -> tuple[int, int, list, int, int, int]:
    """The one suspension of ``g`` whose stack holds ``function``."""
    (found,) = [w for w in waits_of(rec, g) if function in functions(w[2])]
    return found


def test_tasks_parents_names_loop_and_outcomes(record):
    caught = []

    async def worker():
        await trio.sleep(0)

    async def boom():
        await trio.sleep(0)
        raise ValueError("boom")

    async def forever():
        await trio.sleep_forever()

    async def main():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker, name="worker-1")
            nursery.start_soon(forever)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(boom)
        except Exception as exc:  # an ExceptionGroup
            caught.append(exc)
        return 7

    import trio.testing

    rec = record(lambda: trio.run(main))
    assert len(caught) == 1
    trace = rec.trace
    (loop,) = trace.loops
    main_thread = next(t for t in trace.threads if t.name == "MainThread")
    assert loop.class_name == "trio._core._run.Runner" and loop.thread_id == main_thread.id
    assert loop.started_ns is not None and loop.stopped_ns is not None
    main_task = rec.task("test_tasks_parents_names_loop_and_outcomes.<locals>.main")
    assert main_task.parent_id == main_thread.id  # trio's <init> is the run's machinery, not a goroutine
    assert main_task.outcome == Outcome.RETURNED and main_task.loop_id == loop.id
    assert main_task.name == main_task.start_function
    named = rec.task("<locals>.worker")
    assert named.name == "worker-1" and named.parent_id == main_task.id and named.outcome == Outcome.RETURNED
    assert rec.task("<locals>.forever").outcome == Outcome.CANCELLED
    assert rec.task("<locals>.boom").outcome == Outcome.RAISED
    assert {t.loop_id for t in trace.tasks} == {loop.id}
    assert len(trace.tasks) == 4  # no task for trio's own <init> and run_sync_soon tasks...
    labels = {
        trace.string(int(a) >> CALLBACK_SHIFT) for a in trace.events.arg[trace.events.kind == Kind.CALLBACK_BEGIN]
    }
    assert labels == {"trio._core._run.Runner.init", "trio._core._entry_queue.EntryQueue.task"}  # ...their steps
    assert trace.lost.hook_errors == ()


def test_sleep_is_a_sleep_wait_ended_by_the_deadline(record):
    async def main():
        await trio.sleep(0.02)

    rec = record(lambda: trio.run(main))
    task = rec.task("test_sleep_is_a_sleep_wait_ended_by_the_deadline.<locals>.main")
    _, category, stack, _, waker, waker_id = wait_at(rec, task.id, "trio._timeouts.sleep_forever")
    assert category == Category.SLEEP
    # the chain down to trio's trap, without it: the innermost frame is the function that chose to wait
    assert functions(stack)[:3] == [
        "trio._timeouts.sleep_forever",
        "trio._timeouts.sleep_until",
        "trio._timeouts.sleep",
    ]
    assert stack[-1].function.endswith("<locals>.main") and stack[-1].file == __file__
    assert stack[-1].line == main.__code__.co_firstlineno + 1
    assert waker == Waker.TIMER and rec.trace.string(waker_id) == "trio._core._run.Deadlines.expire"


def test_timeout_ends_a_sync_wait_as_a_timer(record):
    async def main():
        with trio.move_on_after(0.02):
            await trio.Event().wait()

    rec = record(lambda: trio.run(main))
    task = rec.task("test_timeout_ends_a_sync_wait_as_a_timer.<locals>.main")
    _, category, stack, _, waker, _ = wait_at(rec, task.id, "trio._sync.Event.wait")
    assert category == Category.SYNC and stack[0].function == "trio._sync.Event.wait"
    assert waker == Waker.TIMER


def test_socket_wait_is_network_ended_by_io(record):
    async def reader(sock):
        assert await sock.recv(10) == b"hi"

    async def main():
        a, b = trio.socket.socketpair()
        with a, b:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader, a)
                await trio.testing.wait_all_tasks_blocked()
                await b.send(b"hi")

    import trio.testing

    rec = record(lambda: trio.run(main))
    task = rec.task("<locals>.reader")
    ts, category, stack, ready_ts, waker, waker_id = wait_at(
        rec, task.id, "trio._socket._SocketType._nonblocking_helper"
    )
    assert category == Category.NETWORK and stack[-1].function.endswith("<locals>.reader")
    assert waker == Waker.IO and rec.trace.string(waker_id).endswith("IOManager.process_events")
    assert ts < ready_ts


def test_tcp_stream_to_a_trio_server_is_network(record):
    async def handler(stream):
        request = await stream.receive_some()
        await trio.sleep(0.02)
        await stream.send_all(request.upper())

    async def client(port, replies):
        async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
            await stream.send_all(b"ping")
            replies.append(await stream.receive_some())

    async def main():
        replies = []
        async with trio.open_nursery() as nursery:
            (listener,) = await nursery.start(functools.partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
            port = listener.socket.getsockname()[1]
            await client(port, replies)
            nursery.cancel_scope.cancel()
        return replies

    rec = record(lambda: trio.run(main))
    task = rec.task("test_tcp_stream_to_a_trio_server_is_network.<locals>.main")
    _, category, stack, _, waker, _ = wait_at(rec, task.id, "trio._highlevel_socket.SocketStream.receive_some")
    assert category == Category.NETWORK and stack[-2].function.endswith("<locals>.client")
    assert waker == Waker.IO
    connect = [
        w for w in waits_of(rec, task.id) if "trio._highlevel_open_tcp_stream.open_tcp_stream" in functions(w[2])
    ]
    assert connect and all(w[1] in (Category.NETWORK, Category.YIELD) for w in connect)  # not its nursery's sync
    server = rec.task("trio._highlevel_serve_listeners._serve_one_listener")
    assert server.outcome == Outcome.CANCELLED


def test_lock_event_and_channel_waits_are_sync_woken_by_the_task(record):
    released = {}

    async def holder(lock, held):
        async with lock:
            held.set()
            await trio.sleep(0.02)
            released["ns"] = time.perf_counter_ns()

    async def waiter(lock, held):
        await held.wait()
        async with lock:
            pass

    async def sender(send):
        await trio.sleep(0.01)
        await send.send("item")

    async def receiver(receive):
        assert await receive.receive() == "item"

    async def main():
        lock, held = trio.Lock(), trio.Event()
        send, receive = trio.open_memory_channel(0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(holder, lock, held)
            nursery.start_soon(waiter, lock, held)
            nursery.start_soon(sender, send)
            nursery.start_soon(receiver, receive)

    rec = record(lambda: trio.run(main))
    hold, wait = rec.task("<locals>.holder"), rec.task("<locals>.waiter")
    ts, category, _, ready_ts, waker, waker_id = wait_at(rec, wait.id, "trio._sync._LockImpl.acquire")
    assert category == Category.SYNC and waker == Waker.TASK and waker_id == hold.id
    assert ts <= released["ns"] <= ready_ts  # waiting from before the holder let go until it did
    _, category, _, _, waker, waker_id = wait_at(rec, wait.id, "trio._sync.Event.wait")
    assert category == Category.SYNC and (waker, waker_id) == (Waker.TASK, hold.id)
    send, receive = rec.task("<locals>.sender"), rec.task("<locals>.receiver")
    _, category, _, _, waker, waker_id = wait_at(rec, receive.id, "trio._channel.MemoryReceiveChannel.receive")
    assert category == Category.SYNC and (waker, waker_id) == (Waker.TASK, send.id)
    main_task = rec.task("test_lock_event_and_channel_waits_are_sync_woken_by_the_task.<locals>.main")
    _, category, _, _, waker, _ = wait_at(rec, main_task.id, "trio._core._run.NurseryManager.__aexit__")
    assert category == Category.SYNC and waker == Waker.TASK  # the last child to end woke its parent


def test_to_thread_is_a_syscall_woken_by_the_worker_thread(record):
    async def main():
        return await trio.to_thread.run_sync(time.sleep, 0.02)

    rec = record(lambda: trio.run(main))
    task = rec.task("test_to_thread_is_a_syscall_woken_by_the_worker_thread.<locals>.main")
    ((_, _, stack, _, waker, waker_id),) = [w for w in waits_of(rec, task.id) if w[1] == Category.SYSCALL]
    assert stack[0].function == "trio._threads.run_sync"  # to_thread.run_sync
    worker = next(t for t in rec.trace.threads if t.id == waker_id)
    assert waker == Waker.THREAD and worker.name.startswith("Trio thread") and worker.parent_id == task.id


def test_checkpoint_is_a_yield_and_stays_runnable(record):
    async def main():
        for _ in range(3):
            await trio.lowlevel.checkpoint()

    rec = record(lambda: trio.run(main))
    task = rec.task("test_checkpoint_is_a_yield_and_stays_runnable.<locals>.main")
    yields = [w for w in rec.suspensions(task.id) if w[1] == Category.YIELD]
    assert len(yields) >= 3 and all(w[2][0].function == "trio._core._run.checkpoint" for w in yields)
    states = rec.trace.analysis.states
    gi = int(rec.trace.analysis.goroutines.index_of(np.array([task.id]))[0])
    assert not np.isin(states.state[states.gi == gi], [State.SYNC, State.NETWORK, State.SLEEP]).any()


def test_idle_time_is_the_runs_threads_network_wait(record):
    async def main():
        await trio.sleep(0.05)

    rec = record(lambda: trio.run(main))
    trace = rec.trace
    (loop,) = trace.loops
    begins, ends = rec.of(Kind.LOOP_IDLE_BEGIN, loop.id), rec.of(Kind.LOOP_IDLE_END, loop.id)
    assert len(begins) == len(ends) >= 1
    task = rec.task("test_idle_time_is_the_runs_threads_network_wait.<locals>.main")
    sleep_ts, _, _, ready_ts, _, _ = wait_at(rec, task.id, "trio._timeouts.sleep_forever")
    assert any(sleep_ts < rec.ts[b] and rec.ts[e] <= ready_ts for b, e in zip(begins, ends, strict=True))
    states = trace.analysis.states
    gi = int(trace.analysis.goroutines.index_of(np.array([loop.thread_id]))[0])
    idle = (states.gi == gi) & (states.stack == LOOP_IDLE_STACK)
    assert idle.any() and (states.state[idle] == State.NETWORK).all()


async def trio_echo(stream):
    async for data in stream:
        await trio.sleep(0.005)
        await stream.send_all(data)


async def trio_client(port):
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        for _ in range(3):
            await stream.send_all(b"x")
            await stream.receive_some()


async def trio_echo_program():
    """An echo server and two clients, in trio."""
    async with trio.open_nursery() as nursery:
        (listener,) = await nursery.start(functools.partial(trio.serve_tcp, trio_echo, 0, host="127.0.0.1"))
        port = listener.socket.getsockname()[1]
        async with trio.open_nursery() as clients:
            for _ in range(2):
                clients.start_soon(trio_client, port)
        nursery.cancel_scope.cancel()


async def anyio_echo(stream):
    import anyio

    async with stream:
        async for data in stream:
            await anyio.sleep(0.005)
            await stream.send(data)


async def anyio_client(port):
    import anyio

    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        for _ in range(3):
            await stream.send(b"x")
            await stream.receive()


async def anyio_echo_program():
    """The same in anyio, run on trio."""
    import anyio

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, anyio_echo)
        async with anyio.create_task_group() as clients:
            for _ in range(2):
                clients.start_soon(anyio_client, port)
        group.cancel_scope.cancel()


# where each program's clients wait for the echo
RECEIVE = {
    "trio": "trio._highlevel_socket.SocketStream.receive_some",
    "anyio": "anyio._backends._trio.SocketStream.receive",
}


def run_echo_program(program: str) -> None:
    if program == "trio":
        trio.run(trio_echo_program)
    else:
        anyio = pytest.importorskip("anyio")
        anyio.run(anyio_echo_program, backend="trio")


@pytest.mark.parametrize("program", ["trio", "anyio"])
def test_summary_profiles_and_viewer_api(record, program):
    import http.client
    import json
    import urllib.parse

    from exectracer.web.server import ViewerServer

    rec = record(lambda: run_echo_program(program))
    trace = rec.trace
    client_function = f"test_record_trio.{program}_client"
    summary = trace.analysis.summary()
    (group,) = [g for g in summary["groups"] if g["start_function"] == client_function]
    assert group["kind"] == "task" and group["count"] == 2
    assert group["time_ns"]["blocked"]["network"] > 0 and group["time_ns"]["running"] > 0
    assert trace.lost.hook_errors == ()
    net = trace.analysis.profile("net")
    stacks = [functions(trace.stacks[int(s)]) for s in net.stacks]
    assert any(RECEIVE[program] in s and client_function in s for s in stacks)
    sleep = trace.analysis.profile("sleep")
    assert any(f"test_record_trio.{program}_echo" in functions(trace.stacks[int(s)]) for s in sleep.stacks)

    server = ViewerServer(trace)
    server.serve_in_thread()
    try:
        host, port = server.server_address[:2]

        def api(path, **params):
            conn = http.client.HTTPConnection(host, port, timeout=30)
            conn.request("GET", f"{path}?{urllib.parse.urlencode(params)}")
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            assert resp.status == 200, body
            return json.loads(body)

        lanes = api("/api/lanes")
        (loop,) = trace.loops
        assert [lp["id"] for lp in lanes["loops"]] == [loop.id]
        clients = [
            g
            for g, f in zip(lanes["goroutines"]["id"], lanes["goroutines"]["function"], strict=True)
            if f >= 0 and lanes["functions"][f] == client_function
        ]
        assert len(clients) == 2
        spans = api("/api/spans", lanes=f"g:{clients[0]},loop:{loop.id}", start=0, end=trace.duration_ns, width=500)
        assert spans["lanes"][f"g:{clients[0]}"]["start"] and spans["lanes"][f"loop:{loop.id}"]["start"]
        states = trace.analysis.states
        gi = int(trace.analysis.goroutines.index_of(np.array([clients[0]]))[0])
        network = next(
            i
            for i in np.flatnonzero((states.gi == gi) & (states.state == State.NETWORK))
            if trace.stacks[int(states.stack[i])][0].function.endswith("_epoll_wait")
        )
        detail = api("/api/span", g=clients[0], t=int(states.start[network] - trace.start_ns) + 1)
        assert detail["state"] == "network" and detail["waker"]["kind"] == "io"
        assert any(f["function"] == RECEIVE[program] for f in detail["stack"])
        assert client_function in [f["function"] for f in detail["stack"]]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("program", ["trio", "anyio"])
def test_summary_and_pprof_commands(record, program):
    rec = record(lambda: run_echo_program(program))
    cli = [sys.executable, "-m", "exectracer"]
    report = subprocess.run(
        [*cli, "summary", "--width", "0", str(rec.path)], capture_output=True, text=True, timeout=120
    )
    assert report.returncode == 0, report.stderr
    client_function = f"test_record_trio.{program}_client"
    (row,) = [line.split() for line in report.stdout.splitlines() if line.strip().startswith(client_function)]
    assert row[1:3] == ["task", "2"]
    done = subprocess.run(
        [*cli, "pprof", "--type", "net", str(rec.path)],
        cwd=rec.path.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    go = shutil.which("go")
    assert go, "Go is needed for `go tool pprof`"
    profile = rec.path.parent / f"{rec.path.stem}.net.pb.gz"
    top = subprocess.run(
        [go, "tool", "pprof", "-top", "-nodefraction=0", str(profile)], capture_output=True, text=True, timeout=120
    )
    assert top.returncode == 0, top.stderr
    assert client_function in top.stdout and RECEIVE[program] in top.stdout


def test_anyio_on_trio_and_on_asyncio(record):
    anyio = pytest.importorskip("anyio")

    async def echo(stream):
        async with stream:
            await stream.send(await stream.receive())

    async def main():
        await anyio.sleep(0.01)
        await anyio.to_thread.run_sync(time.sleep, 0.01)
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener, anyio.create_task_group() as group:
            group.start_soon(listener.serve, echo)
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                await stream.send(b"hi")
                assert await stream.receive() == b"hi"
            group.cancel_scope.cancel()

    for backend, loop_class in (
        ("trio", "trio._core._run.Runner"),
        ("asyncio", "asyncio.unix_events._UnixSelectorEventLoop"),
    ):
        rec = record(lambda backend=backend: anyio.run(main, backend=backend))
        assert [loop.class_name for loop in rec.trace.loops] == [loop_class], backend
        # the task running main: itself on trio, anyio's wrapper around it on asyncio
        user_main = "test_record_trio.test_anyio_on_trio_and_on_asyncio.<locals>.main"
        states, stacks = rec.trace.analysis.states, rec.trace.stacks
        filed = {
            State(states.state[i])
            for i in np.flatnonzero(states.stack >= 0)
            if user_main in functions(stacks[int(states.stack[i])])
        }
        # as the summary and the profiles file them: anyio's worker thread makes a syscall wait on both back-ends
        assert {State.SLEEP, State.NETWORK, State.SYSCALL} <= filed, (backend, filed)
        echo_name = "test_record_trio.test_anyio_on_trio_and_on_asyncio.<locals>.echo"
        (echo_task,) = [t for t in rec.trace.tasks if t.name == echo_name]
        assert echo_task.ended_ns is not None and echo_task.outcome is not None, backend  # returned, or cancelled


def test_tracing_started_and_stopped_inside_a_run(tmp_path):
    path = tmp_path / "inside.xtrace"
    seen = {}

    async def early(event):
        await event.wait()

    async def main():
        event = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(early, event, name="early")
            await trio.testing.wait_all_tasks_blocked()
            exectracer.start(path)
            event.set()
            await trio.sleep(0)
        runner = trio._core._run.GLOBAL_RUN_CONTEXT.runner
        seen["during"] = [type(i).__name__ for i in runner.instruments["_all"]]
        exectracer.stop()
        seen["after"] = [type(i).__name__ for i in runner.instruments["_all"]]
        await trio.sleep(0)  # steps after the stop: nothing recorded, nothing raised

    import trio.testing

    trio.run(main)
    assert seen == {"during": ["TrioRun"], "after": []}
    rec = Recorded(path)
    main_task = rec.task("test_tracing_started_and_stopped_inside_a_run.<locals>.main")
    early_task = rec.task("<locals>.early")
    assert (
        early_task.name == "early" and early_task.parent_id == main_task.id and early_task.outcome == Outcome.RETURNED
    )
    main_thread = next(t for t in rec.trace.threads if t.name == "MainThread")
    assert main_task.parent_id == main_thread.id and main_task.ended_ns is None  # still running at the stop
    # the waiting task is described as it was when tracing started, and woken by the task that set its event
    ((ts, category, stack, _),) = rec.suspensions(early_task.id)
    assert category == Category.SYNC and stack[0].function == "trio._sync.Event.wait"
    assert rec.ready_after(early_task.id, ts)[1:] == (Waker.TASK, main_task.id)
    assert rec.of(Kind.TASK_STEP, main_task.id).size >= 1 and rec.trace.lost.hook_errors == ()


def test_tracing_a_run_going_in_another_thread(tmp_path):
    path = tmp_path / "other.xtrace"
    state: dict = {"steps": 0}

    async def worker(done):
        while not done.is_set():
            state["steps"] += 1
            await trio.sleep(0.002)

    async def main():
        done = trio.Event()
        state["token"], state["done"] = trio.lowlevel.current_trio_token(), done
        state["runner"] = trio._core._run.GLOBAL_RUN_CONTEXT.runner
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker, done, name="worker")
            await done.wait()

    thread = threading.Thread(target=trio.run, args=(main,), name="trio-thread")
    thread.start()
    try:
        wait_for(lambda: state["steps"] > 0, "the run to start")
        exectracer.start(path)
        runner = state["runner"]
        wait_for(lambda: [type(i).__name__ for i in runner.instruments["_all"]] == ["TrioRun"], "the instrument")
        steps = state["steps"]
        wait_for(lambda: state["steps"] > steps + 3, "steps while tracing")
        exectracer.stop()
        wait_for(lambda: not runner.instruments["_all"], "the instrument to go")
    finally:
        state["token"].run_sync_soon(state["done"].set)
        thread.join(60)
    rec = Recorded(path)
    (loop,) = rec.trace.loops
    assert loop.thread_id == next(t.id for t in rec.trace.threads if t.name == "trio-thread")
    worker_task = rec.task("<locals>.worker")
    assert worker_task.name == "worker" and worker_task.loop_id == loop.id
    sleeps = [w for w in waits_of(rec, worker_task.id) if w[1] == Category.SLEEP]
    assert len(sleeps) >= 2 and all(w[4] == Waker.TIMER for w in sleeps)
    assert rec.trace.lost.hook_errors == ()


def test_guest_run_on_an_asyncio_loop(record):
    import asyncio

    async def trio_main():
        await trio.sleep(0.01)
        return 5

    async def host():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        trio.lowlevel.start_guest_run(
            trio_main, run_sync_soon_threadsafe=loop.call_soon_threadsafe, done_callback=done.set_result
        )
        return (await done).unwrap()

    results = []
    rec = record(lambda: results.append(asyncio.run(host())))
    assert results == [5]
    trio_loop = next(loop for loop in rec.trace.loops if loop.class_name == "trio._core._run.Runner")
    task = rec.task("test_guest_run_on_an_asyncio_loop.<locals>.trio_main")
    assert task.loop_id == trio_loop.id and task.outcome == Outcome.RETURNED
    _, category, _, _, waker, _ = wait_at(rec, task.id, "trio._timeouts.sleep_forever")
    assert category == Category.SLEEP and waker == Waker.TIMER
    assert rec.of(Kind.LOOP_IDLE_BEGIN, trio_loop.id).size == 0  # the host loop, not trio, waits meanwhile
    assert rec.task("test_guest_run_on_an_asyncio_loop.<locals>.host").loop_id != trio_loop.id


def test_the_program_sees_trio_as_untraced(tmp_path):
    core, queue = trio._core._run, trio._core._entry_queue
    originals = (core.setup_runner, core.Runner.task_exited, queue.EntryQueue.run_sync_soon)
    calls = []

    class Mine(trio.abc.Instrument):
        def task_exited(self, task):
            calls.append(task.name)

    async def fails():
        await trio.sleep(0)
        raise KeyError("mine")

    async def main():
        results = [await trio.to_thread.run_sync(lambda: 41) + 1, trio.lowlevel.current_task().name]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fails, name="fails")
        return results

    def run():
        with pytest.raises(BaseException) as info:  # an ExceptionGroup, compared below
            trio.run(main, instruments=[Mine()])
        return type(info.value), [type(e) for e in info.value.exceptions], calls[:]

    untraced = run()
    calls.clear()
    with exectracer.trace(tmp_path / "t.xtrace"):
        traced = run()
    assert traced == untraced and "fails" in traced[2]
    assert (core.setup_runner, core.Runner.task_exited, queue.EntryQueue.run_sync_soon) == originals


def test_an_anyio_task_that_raised_is_freed_as_untraced(tmp_path):
    # anyio's TaskHandle._run_coro deletes `self` to break the cycle exception, traceback, frame, handle; naming
    # the task after the function given to start_soon must not keep the handle (anyio's TestRefcycles)
    anyio = pytest.importorskip("anyio")

    class Done(Exception):
        pass

    async def main():
        async def fails():
            async with anyio.create_task_group():
                raise Done

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(fails)
        except Exception as error:  # an ExceptionGroup holding an ExceptionGroup
            done = error.exceptions[0].exceptions[0]
        return type(done), [type(holder) for holder in gc.get_referrers(done)]

    untraced = anyio.run(main, backend="trio")
    with exectracer.trace(tmp_path / "t.xtrace"):
        traced = anyio.run(main, backend="trio")
    assert traced == untraced and untraced[0] is Done


@pytest.mark.parametrize("traced", [False, True])
def test_tracing_a_trio_run_imports_nothing_the_program_did_not(tmp_path, traced):
    # anyio imports its submodules when a name of its package is first looked up; the recorder's table of anyio's
    # waits must not make it, which cost an import in the middle of a traced wait (and changed anyio's `__module__`s)
    pytest.importorskip("anyio")
    program = textwrap.dedent(
        f"""
        import sys, anyio, trio, exectracer
        async def main():
            await trio.sleep(0)
            await trio.to_thread.run_sync(len, "x")
        if {traced!r}:
            with exectracer.trace(sys.argv[1]):
                trio.run(main)
        else:
            trio.run(main)
        print(" ".join(sorted(name for name in sys.modules if name.split(".")[0] in ("anyio", "trio"))))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program, str(tmp_path / "t.xtrace")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert "anyio._core._sockets" not in loaded and "trio._core._run" in loaded


def test_trio_imported_while_tracing_is_hooked(tmp_path):
    program = Path(__file__).parent / "programs" / "trio_late_import.py"
    path = tmp_path / "late.xtrace"
    done = subprocess.run([sys.executable, str(program), str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["trio-not-imported-at-start", "6"]
    trace = exectracer.load(path)
    assert {task.start_function for task in trace.tasks} == {"__main__.main.<locals>.main"}
    assert [loop.class_name for loop in trace.loops] == ["trio._core._run.Runner"]


def test_regions_and_user_tasks_inside_trio_tasks_are_the_tasks(record):
    async def handle(i):
        with exectracer.task(f"request {i}"), exectracer.region("work"):
            await trio.sleep(0.005)

    async def main():
        async with trio.open_nursery() as nursery:
            for i in range(2):
                nursery.start_soon(handle, i)

    rec = record(lambda: trio.run(main))
    handlers = {t.id for t in rec.trace.tasks if t.start_function.endswith("<locals>.handle")}
    assert len(handlers) == 2
    assert {r.g for r in rec.trace.regions if r.name == "work"} == handlers
    assert {u.g for u in rec.trace.user_tasks} == handlers


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_child_forked_inside_a_run_stops_recording_it(tmp_path):
    path = tmp_path / "parent.xtrace"
    code = """
        import os, sys, exectracer, trio
        async def in_child():
            await trio.sleep(0.001)
        async def main():
            runner = trio._core._run.GLOBAL_RUN_CONTEXT.runner
            pid = os.fork()
            if pid == 0:  # the child's run goes on: more steps, a new task, a sleep, unrecorded and unharmed
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(in_child, name="in-child")
                    await trio.sleep(0.001)
                    os._exit(0 if not runner.instruments["_all"] and not exectracer.is_tracing() else 3)
                except BaseException:
                    os._exit(4)
            _, status = os.waitpid(pid, 0)
            await trio.sleep(0)
            return os.waitstatus_to_exitcode(status)
        exectracer.start(sys.argv[1])
        status = trio.run(main)
        exectracer.stop()
        sys.exit(status)
    """
    env = dict(os.environ, PYTHONPATH=str(Path(exectracer.__file__).parents[1]))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    trace = exectracer.load(path, strict=True)
    assert [t.start_function for t in trace.tasks] == ["__main__.main"]  # not the child's task
    assert trace.lost.clean_end and trace.lost.hook_errors == ()


def test_starting_while_collections_free_thread_locals_does_not_deadlock(tmp_path):
    # looking for runs in other threads reads sys._current_frames(), where a collection can deadlock on 3.11
    program = Path(__file__).parent / "programs" / "trio_start_under_collections.py"
    done = subprocess.run(
        [sys.executable, str(program), str(tmp_path / "gc.xtrace")], capture_output=True, text=True, timeout=100
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["started", "stopped"]
