"""Real clients, servers and threads on trio, each timing its own waits: what the trace's categories are checked
against on trio, as ``real_waits`` does on asyncio.

Each scenario is a trio coroutine function that serves and calls on
loopback in one trio run and returns what it measured (``real_waits.Measurements``:
for every wait it timed, the user region around it, the category a person
files it under, and the time it measured itself). Servers and the tasks
that hold locks delay by ``DELAY``.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio

from programs.real_waits import DELAY, Measured, Measurements

# -- hypercorn on trio, and httpx on trio (httpcore's trio back-end) ------------------------------------------------


def delaying_app(measured: Measurements) -> Callable[..., Awaitable[None]]:
    """An ASGI app: ``/body`` sends the headers, then the body DELAY later; ``/answer`` answers DELAY late. Its
    ``trio.sleep`` is timed in region ``server sleep`` (a sleep), in the server's task for the request."""

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        if scope["path"] == "/body":
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
        with measured.timing("server sleep", "sleep"):
            await trio.sleep(DELAY)
        await send({"type": "http.response.body", "body": b"x" * 4096})

    return app


@contextlib.asynccontextmanager
async def hypercorn_server(measured: Measurements) -> AsyncIterator[str]:
    """hypercorn serving :func:`delaying_app` on loopback, in this trio run; its URL."""
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = config.errorlog = None
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        (bind, *_) = await nursery.start(
            functools.partial(serve, delaying_app(measured), config, shutdown_trigger=shutdown.wait)
        )
        try:
            yield bind
        finally:
            shutdown.set()


async def httpx_on_trio() -> Measurements:
    """httpx's AsyncClient on trio against hypercorn on trio: the response's headers and body are network waits,
    the server's sleeps sleep waits."""
    import httpx

    measured = Measurements()
    async with hypercorn_server(measured) as url, httpx.AsyncClient() as client:
        async with client.stream("GET", url + "/body") as response:
            with measured.timing("httpx read", "net"):
                await response.aread()
        with measured.timing("httpx request", "net"):
            (await client.get(url + "/answer")).raise_for_status()
    return measured


# -- threads: trio's and anyio's ways to run a blocking call ------------------------------------------------------


async def worker_threads() -> Measurements:
    """A blocking call in a worker thread, awaited through trio.to_thread and anyio.to_thread (on trio)."""
    import anyio.to_thread

    await anyio.to_thread.run_sync(int)  # anyio imports its trio back-end on first use: not a wait to time
    measured = Measurements()
    with measured.timing("trio to_thread", "syscall"):
        await trio.to_thread.run_sync(time.sleep, DELAY)
    with measured.timing("anyio to_thread", "syscall"):
        await anyio.to_thread.run_sync(time.sleep, DELAY)
    return measured


# -- trio's own sleeps, locks and events --------------------------------------------------------------------------


async def sleeps_locks_events() -> Measurements:
    """trio.sleep; a trio.Lock another task holds for DELAY; a trio.Event another task sets DELAY later; the same
    through anyio on trio."""
    import anyio

    await anyio.sleep(0)  # anyio imports its trio back-end on first use: not a wait to time
    measured = Measurements()
    with measured.timing("trio sleep", "sleep"):
        await trio.sleep(DELAY)
    with measured.timing("anyio sleep", "sleep"):
        await anyio.sleep(DELAY)
    for name, lock, event in (("trio", trio.Lock(), trio.Event()), ("anyio", anyio.Lock(), anyio.Event())):
        held = trio.Event()

        async def holder(lock: Any = lock, event: Any = event, held: trio.Event = held) -> None:
            async with lock:
                held.set()
                await trio.sleep(DELAY)
            await trio.sleep(DELAY)
            event.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(holder)
            await held.wait()
            with measured.timing(f"{name} lock", "sync"):
                async with lock:
                    pass
            with measured.timing(f"{name} event", "sync"):
                await event.wait()
    return measured


SCENARIOS: dict[str, Callable[[], Awaitable[Measurements]]] = {
    "httpx": httpx_on_trio,
    "threads": worker_threads,
    "sync": sleeps_locks_events,
}

__all__ = ["DELAY", "SCENARIOS", "Measured", "Measurements"]
