"""Traced programs that measure their own CPU time and waits, for the CPU profile and the sampled waits.

``python cpu_time.py SCENARIO TRACE`` records SCENARIO into TRACE and prints
one JSON line: ``cpu_ns``, the process's CPU time from the OS
(``getrusage``) between the end of ``exectracer.start()`` and the start of
``exectracer.stop()``, and what the scenario measured itself. The uvicorn
scenario first prints ``listening on URL`` and serves until ``/quit``.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import queue
import resource
import socket
import sys
import threading
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for its support package
import exectracer

from support.waiting import wait_until_blocked

SECONDS = 1.0


def cpu_ns() -> int:
    """The process's CPU time so far, as ``getrusage`` gives it."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round((usage.ru_utime + usage.ru_stime) * 1e9)


def sleeper() -> None:
    for _ in range(int(SECONDS / 0.01)):
        time.sleep(0.01)


def sleepers() -> dict:
    """Four threads that only sleep."""
    threads = [threading.Thread(target=sleeper, name=f"sleeper-{i}") for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {}


def spin(seconds: float, out: dict) -> None:
    """Run Python code for ``seconds`` of this thread's CPU time; note the CPU time it used."""
    start = time.thread_time_ns()
    n = 0
    while time.thread_time_ns() - start < seconds * 1e9:
        n += sum(i * i for i in range(100))
    out[threading.current_thread().name] = time.thread_time_ns() - start


def busy() -> dict:
    """Two threads running Python code: each wants the GIL the other holds."""
    done: dict = {}
    threads = [threading.Thread(target=spin, args=(SECONDS / 2, done), name=f"busy-{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"threads": done}


def spin_until(stop: threading.Event) -> None:
    """Run Python code until ``stop`` is set."""
    while not stop.is_set():
        sum(i * i for i in range(100))


def napper(rounds: int, out: dict) -> None:
    """Sleep a millisecond at a time; note the CPU time it used."""
    start = time.thread_time_ns()
    for _ in range(rounds):
        time.sleep(0.001)
    out["napper"] = time.thread_time_ns() - start


def gil() -> dict:
    """A thread that naps while another runs Python code: each nap ends in a wait for the GIL the other holds."""
    done: dict = {}
    stop = threading.Event()
    spinner = threading.Thread(target=spin_until, args=(stop,), name="spinner")
    spinner.start()
    thread = threading.Thread(target=napper, args=(200, done), name="napper")
    thread.start()
    thread.join()
    stop.set()
    spinner.join()
    return {"threads": done}


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def client(port: int, rounds: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for i in range(rounds):
        writer.write(json.dumps({"i": i, "numbers": list(range(200))}).encode())
        await writer.drain()
        json.loads(await reader.read(65536))
        sum(j * j for j in range(2000))  # a little work per round
        await asyncio.sleep(0.001)
    writer.close()


async def asyncio_main() -> None:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    deadline = time.perf_counter() + SECONDS
    while time.perf_counter() < deadline:
        await asyncio.gather(*(client(port, 20) for _ in range(4)))
    server.close()
    await server.wait_closed()


def asyncio_program() -> dict:
    """An event loop serving and running clients over loopback, with some work and sleeps."""
    asyncio.run(asyncio_main())
    return {}


def idle() -> dict:
    """A program that waits for a second."""
    time.sleep(SECONDS)
    return {}


def square(x: int) -> int:
    return x * x


def pool() -> dict:
    """A ``multiprocessing.Pool`` left idle: its task handler thread waits in ``SimpleQueue.get``, a C call."""
    with multiprocessing.get_context("spawn").Pool(1) as workers:
        handler = workers._task_handler  # type: ignore[attr-defined]
        wait_until_blocked(handler, "_handle_tasks", sleep=threading.Event().wait)
        began = time.perf_counter_ns()
        threading.Event().wait(1.5 * SECONDS)  # not a traced sleep: only the handler's wait is in question
        ended = time.perf_counter_ns()
        result = workers.map(square, range(10))
    return {"handler": handler.name, "waited": [began, ended], "result": sum(result)}


async def blocking_step() -> list[int]:
    """A task step that blocks its loop's thread in a C call no hook covers."""
    began = time.perf_counter_ns()
    try:
        queue.SimpleQueue().get(timeout=1.5 * SECONDS)  # the C queue: its wait is a lock's, in C
    except queue.Empty:
        pass
    return [began, time.perf_counter_ns()]


def loop_blocked() -> dict:
    """An event loop whose task blocks the loop's thread in C for a while."""
    return {"waited": asyncio.run(blocking_step())}


def uvicorn_server() -> dict:
    """A uvicorn server (Starlette) until a request to /quit; its own client load comes from outside."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    server: uvicorn.Server

    async def work(request: object) -> JSONResponse:
        numbers = [i * i for i in range(2000)]
        await asyncio.sleep(0.001)
        return JSONResponse({"total": sum(numbers)})

    async def quit_(request: object) -> PlainTextResponse:
        server.should_exit = True
        return PlainTextResponse("bye\n")

    app = Starlette(routes=[Route("/work", work), Route("/quit", quit_)])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, loop="asyncio", http="h11", lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])
    return {}


SCENARIOS: dict[str, Callable[[], dict]] = {
    "sleepers": sleepers,
    "busy": busy,
    "gil": gil,
    "asyncio": asyncio_program,
    "idle": idle,
    "pool": pool,
    "loop_blocked": loop_blocked,
    "uvicorn": uvicorn_server,
}


def main() -> None:
    scenario, path = SCENARIOS[sys.argv[1]], sys.argv[2]
    exectracer.start(path)
    began = cpu_ns()
    measured = scenario()
    used = cpu_ns() - began
    exectracer.stop()
    print(json.dumps({"cpu_ns": used, **measured}), flush=True)


if __name__ == "__main__":
    main()
