"""Real clients, servers and drivers, each timing its own waits: what the trace's categories are checked against.

Each scenario is a coroutine function that serves and calls on loopback in
one event loop and returns what it measured: for every wait it timed, the
name of the user region it opened around it (in the task that waits), the
category a person files that wait under, and the time it measured itself
(``time.perf_counter_ns``); a region opened more than once sums its
measurements. Servers delay their answers by ``DELAY``, so that the waits
are long beside the code around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import exectracer

DELAY = 0.4  # seconds a server waits before it answers


@dataclasses.dataclass(frozen=True)
class Measured:
    """One wait a scenario timed: inside the user region ``region``, filed under ``category`` by a person."""

    region: str
    category: str  # a profile type: net, sync, syscall, sleep, other
    ns: int  # the time the program measured


class Measurements(list[Measured]):
    """What a scenario measured, in order."""

    @contextlib.contextmanager
    def timing(self, region: str, category: str) -> Iterator[None]:
        """Time the block inside a user region named ``region`` (opened in the calling task or thread)."""
        with exectracer.region(region):
            start = time.perf_counter_ns()
            try:
                yield
            finally:
                self.append(Measured(region, category, time.perf_counter_ns() - start))


# -- an aiohttp server: the body, or the whole answer, comes DELAY late -----------------------------------------------


@contextlib.asynccontextmanager
async def aiohttp_server() -> AsyncIterator[str]:
    """An aiohttp server on loopback; its URL. ``/body`` sends the headers, then the body DELAY later; ``/answer``
    answers DELAY late.

    Its handlers' own waits are not measured: on 3.12+ aiohttp starts them as
    eager tasks with ``asyncio.Task(..., eager_start=True)``, whose first
    step no hook sees (docs/recording.md); uvicorn's and websockets' are.
    """
    from aiohttp import web

    async def body_late(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await asyncio.sleep(DELAY)
        await response.write(b"x" * 4096)
        await response.write_eof()
        return response

    async def answer_late(request: web.Request) -> web.Response:
        await asyncio.sleep(DELAY)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/body", body_late)
    app.router.add_get("/answer", answer_late)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def aiohttp_client_server() -> Measurements:
    """aiohttp's client against aiohttp's server: the response's headers and body are network waits."""
    import aiohttp

    measured = Measurements()
    async with aiohttp_server() as url, aiohttp.ClientSession() as session:
        async with session.get(url + "/body") as response:
            with measured.timing("aiohttp read", "net"):
                await response.read()
        with measured.timing("aiohttp request", "net"):
            async with session.get(url + "/answer") as response:
                await response.read()
    return measured


async def httpx_client() -> Measurements:
    """httpx (its asyncio back-end: httpcore over anyio) against aiohttp's server."""
    import httpx

    measured = Measurements()
    async with aiohttp_server() as url, httpx.AsyncClient() as client:
        async with client.stream("GET", url + "/body") as response:
            with measured.timing("httpx read", "net"):
                await response.aread()
        with measured.timing("httpx request", "net"):
            await client.get(url + "/answer")
    return measured


# -- threads: anyio's and asyncio's ways to run a blocking call ----------------------------------------------------


async def worker_threads() -> Measurements:
    """A blocking call in a worker thread, awaited through anyio, asyncio.to_thread and run_in_executor."""
    import anyio.to_thread

    measured = Measurements()
    with measured.timing("anyio to_thread", "syscall"):
        await anyio.to_thread.run_sync(time.sleep, DELAY)
    with measured.timing("asyncio to_thread", "syscall"):
        await asyncio.to_thread(time.sleep, DELAY)
    with measured.timing("run_in_executor", "syscall"):
        await asyncio.get_running_loop().run_in_executor(None, time.sleep, DELAY)
    return measured


# -- FastAPI on uvicorn: a sync endpoint (run in anyio's thread pool) and an async one --------------------------------


def fastapi_app(measured: Measurements) -> Any:
    """The FastAPI app: ``/sync`` blocks a pool thread for DELAY, ``/async`` sleeps DELAY. A pure ASGI middleware
    opens region ``server /PATH`` in uvicorn's task for the request; the endpoints time their own waits."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/sync")
    def sync_endpoint() -> dict:
        start = time.perf_counter_ns()
        time.sleep(DELAY)
        measured.append(Measured("server /sync", "syscall", time.perf_counter_ns() - start))  # the task's wait
        return {"endpoint": "sync"}

    @app.get("/async")
    async def async_endpoint() -> dict:
        with measured.timing("async endpoint", "sleep"):
            await asyncio.sleep(DELAY)
        return {"endpoint": "async"}

    def regions(inner: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def app_in_region(scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return await inner(scope, receive, send)
            with exectracer.region(f"server {scope['path']}"):
                await inner(scope, receive, send)

        return app_in_region

    return regions(app)


async def fastapi_on_uvicorn() -> Measurements:
    """httpx calls both endpoints of a FastAPI app that uvicorn serves in the same loop."""
    import httpx
    import uvicorn

    measured = Measurements()
    config = uvicorn.Config(fastapi_app(measured), host="127.0.0.1", port=0, log_level="warning", loop="asyncio")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(), name="uvicorn")
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await client.get("/async")  # connected, and httpx's lazy imports done, before the timing
            for path in ("/sync", "/async"):
                with measured.timing(f"client {path}", "net"):
                    (await client.get(path)).raise_for_status()
    finally:
        server.should_exit = True
        await serving
    return measured


# -- websockets: a server that answers DELAY late ----------------------------------------------------------------


async def websockets_echo() -> Measurements:
    """A websockets client waits for the echo of a server that sleeps before answering."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    measured = Measurements()

    async def echo(connection: Any) -> None:
        async for message in connection:
            with measured.timing("websocket server sleep", "sleep"):
                await asyncio.sleep(DELAY)
            await connection.send(message)

    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as connection:
            await connection.send("ping")
            with measured.timing("websocket recv", "net"):
                await connection.recv()
    return measured


# -- a database driver: aiosqlite runs sqlite3 in its own thread --------------------------------------------------


def _pause(seconds: float) -> int:
    time.sleep(seconds)
    return 1


async def sqlite_query() -> Measurements:
    """aiosqlite waits for its connection's thread: a query that runs DELAY (a SQL function that sleeps)."""
    import aiosqlite

    measured = Measurements()
    async with aiosqlite.connect(":memory:") as db:
        await db.create_function("pause", 1, _pause)
        with measured.timing("sqlite query", "syscall"):
            async with db.execute("select pause(?)", (DELAY,)) as cursor:
                assert await cursor.fetchone() == (1,)
    return measured


# -- the loop's own socket calls and streams against a server in a thread ---------------------------------------------

BULK = 4 * 1024 * 1024  # bytes sent to a server that starts reading DELAY late (more than the buffers hold)
SMALL_BUFFER = 64 * 1024  # the socket buffers' size, so that BULK does not fit


@contextlib.contextmanager
def slow_server() -> Iterator[tuple[str, int]]:
    """A server on loopback, run by threads; its address. Each connection: the server waits DELAY, then reads what
    came and answers it (echoes it; a bulk upload of BULK bytes is read whole, then answered ``ok``)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)  # accepted sockets inherit it

    def answer(connection: socket.socket) -> None:
        with connection:
            time.sleep(DELAY)
            request = connection.recv(65536)
            if request.startswith(b"bulk"):
                received = len(request)
                while received < BULK:
                    chunk = connection.recv(1 << 20)
                    if not chunk:
                        return
                    received += len(chunk)
                connection.sendall(b"ok")
            elif request:
                connection.sendall(request)
            connection.recv(1)  # until the client closes

    answering: list[threading.Thread] = []
    done = threading.Event()

    def serve() -> None:
        while True:
            connection, _ = listener.accept()
            if done.is_set():  # the wake-up call below
                connection.close()
                return
            answering.append(threading.Thread(target=answer, args=(connection,)))
            answering[-1].start()

    server = threading.Thread(target=serve)
    server.start()
    try:
        yield listener.getsockname()
    finally:  # no thread of the server outlives it: the next test may trace whatever runs
        done.set()
        socket.create_connection(listener.getsockname()).close()
        server.join()
        listener.close()
        for thread in answering:
            thread.join()


def connect_later(address: tuple[str, int]) -> threading.Thread:
    """A thread that connects to ``address`` DELAY from now, then hangs up."""

    def connect() -> None:
        time.sleep(DELAY)
        socket.create_connection(address).close()

    thread = threading.Thread(target=connect)
    thread.start()
    return thread


async def loopback_sockets() -> Measurements:
    """The loop's ``sock_connect``, ``sock_sendall``, ``sock_recv`` and ``sock_accept``, and a stream's
    ``open_connection``, ``read`` and ``drain``, each waiting DELAY for a server: network waits on any loop."""
    loop = asyncio.get_running_loop()
    measured = Measurements()
    with slow_server() as address:
        with socket.socket() as client:
            client.setblocking(False)
            with measured.timing("sock request", "net"):
                await loop.sock_connect(client, address)
                await loop.sock_sendall(client, b"ping")
                assert await loop.sock_recv(client, 100) == b"ping"
        with socket.socket() as client:
            client.setblocking(False)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
            await loop.sock_connect(client, address)
            with measured.timing("sock_sendall", "net"):
                await loop.sock_sendall(client, b"bulk" + bytes(BULK - 4))
            assert await loop.sock_recv(client, 100) == b"ok"
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.setblocking(False)
            caller = connect_later(listener.getsockname())
            with measured.timing("sock_accept", "net"):
                accepted, _ = await loop.sock_accept(listener)
            accepted.close()
            await loop.run_in_executor(None, caller.join)
        with measured.timing("stream request", "net"):
            reader, writer = await asyncio.open_connection(*address)
            writer.write(b"hello")
            await writer.drain()
            assert await reader.readexactly(5) == b"hello"
        writer.close()
        await writer.wait_closed()
    return measured


# -- the tracer cannot tell: a future a timer completes ------------------------------------------------------------


async def timer_future() -> Measurements:
    """A future that a timer completes: a wait no frame and no waker files (a timer ends timeouts as often as sleeps),
    so it stays ``other``; the ``other`` profile shows it."""
    measured = Measurements()
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    loop.call_later(DELAY, future.set_result, None)
    with measured.timing("timer future", "other"):
        await future
    return measured


SCENARIOS: dict[str, Callable[[], Awaitable[Measurements]]] = {
    "aiohttp": aiohttp_client_server,
    "httpx": httpx_client,
    "threads": worker_threads,
    "fastapi": fastapi_on_uvicorn,
    "websockets": websockets_echo,
    "sqlite": sqlite_query,
    "timer": timer_future,
    "sockets": loopback_sockets,
}
