"""The talk's three situations, each an async program that runs on any event loop (asyncio's or uvloop's).

* ``proxy_scenario``: a proxy whose handlers stay blocked on a slow backend
  after their impatient clients gave up;
* ``lock_scenario``: threads started from the loop (``asyncio.to_thread``,
  ``run_in_executor``) waiting on the lock of a naive metrics client that
  holds it while it "writes to the network";
* ``gc_scenario``: busy tasks, always ready, held up by full collections of
  a large heap.

Each takes a ``Measured`` and puts in it what it timed itself (the
handlers' backend reads, the threads' waits for the lock, the collections):
the ground truth a trace of it is checked against.

``run(scenario, loop)`` runs one on a new loop of the named kind, as a
service would (``asyncio.run`` or ``uvloop.run``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

LOOPS = ("asyncio", "uvloop")


@dataclasses.dataclass
class Measured:
    """What a scenario measured itself, the ground truth the trace is checked against: each wait (or collection) it
    timed, in ns (appended from any thread), the longest time a task waited to resume, and how long it all took."""

    waits_ns: list[int] = dataclasses.field(default_factory=list)
    longest_resume_ns: int = 0
    wall_ns: int = 0


def run(scenario: Callable[[], Coroutine[Any, Any, Any]], loop: str) -> Any:
    """Run ``scenario()`` on a new event loop: ``asyncio.run`` for ``"asyncio"``, ``uvloop.run`` for ``"uvloop"``."""
    if loop == "asyncio":
        return asyncio.run(scenario())
    if loop == "uvloop":
        import uvloop

        return uvloop.run(scenario())
    raise ValueError(f"unknown loop {loop!r}; one of {', '.join(LOOPS)}")


# -- a proxy's handlers left blocked on a slow backend after their clients gave up --------------------------------

SLOW_BACKEND = 1.0  # seconds the backend takes to answer
CLIENTS = 3


async def slow_backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readline()
    await asyncio.sleep(SLOW_BACKEND)
    writer.write(b"answer\n")
    await writer.drain()
    writer.close()


async def read_backend(reader: asyncio.StreamReader) -> bytes:
    return await reader.readline()


def proxy_handler(
    backend_port: int, measured: Measured
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]:
    async def handle_client(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        request = await client_reader.readline()
        backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", backend_port)
        backend_writer.write(request)
        await backend_writer.drain()
        before = time.perf_counter_ns()
        answer = await read_backend(backend_reader)  # stays blocked here after the client has gone
        measured.waits_ns.append(time.perf_counter_ns() - before)
        client_writer.write(answer)
        client_writer.close()
        backend_writer.close()

    return handle_client


async def impatient_client(port: int) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"request\n")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()  # gives up long before the backend answers


async def proxy_scenario(measured: Measured | None = None) -> None:
    """``CLIENTS`` impatient clients of a proxy to a slow backend; ``measured`` gets each handler's backend read."""
    measured = Measured() if measured is None else measured
    t0 = time.perf_counter_ns()
    backend = await asyncio.start_server(slow_backend, "127.0.0.1", 0)
    backend_port = backend.sockets[0].getsockname()[1]
    proxy = await asyncio.start_server(proxy_handler(backend_port, measured), "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    async with backend, proxy:
        await asyncio.gather(*(impatient_client(port) for _ in range(CLIENTS)))
        await asyncio.sleep(SLOW_BACKEND + 0.2)
    measured.wall_ns = time.perf_counter_ns() - t0


# -- threads started from the loop waiting on a shared lock -------------------------------------------------------

LOCK_WORKERS = 6  # half through asyncio.to_thread, half through run_in_executor (the default pool has room for all)
LOCK_SECONDS = 0.6  # how long each worker keeps sending


class MetricsClient:
    """Serializes sends behind one lock, like a naive metrics client; times how long each send waited for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = 0

    def send(self, value: int) -> int:
        before = time.perf_counter_ns()
        with self._lock:
            waited = time.perf_counter_ns() - before
            time.sleep(0.002)  # the "network write", done while holding the lock
            self.sent += value
        return waited


def lock_worker(client: MetricsClient, measured: Measured) -> None:
    waited = 0
    deadline = time.perf_counter() + LOCK_SECONDS
    while time.perf_counter() < deadline:
        sum(range(200))  # a little CPU work between sends
        waited += client.send(1)
    measured.waits_ns.append(waited)


async def lock_scenario(measured: Measured | None = None) -> None:
    """``LOCK_WORKERS`` threads sending through one client; ``measured`` gets each one's waits for the lock."""
    measured = Measured() if measured is None else measured
    client = MetricsClient()  # made while tracing: its lock is the recorder's
    loop = asyncio.get_running_loop()
    work = functools.partial(lock_worker, client, measured)
    t0 = time.perf_counter_ns()
    await asyncio.gather(
        *(asyncio.to_thread(work) for _ in range(LOCK_WORKERS // 2)),
        *(loop.run_in_executor(None, work) for _ in range(LOCK_WORKERS - LOCK_WORKERS // 2)),
    )
    measured.wall_ns = time.perf_counter_ns() - t0


# -- tasks queued during a long collection ------------------------------------------------------------------------

HEAP_OBJECTS = 600_000
FULL_COLLECTIONS = 6


def build_heap() -> list:
    """Many small containers in cycles: a full collection has to traverse them all."""
    heap = []
    for i in range(HEAP_OBJECTS // 2):
        a: list = [i]
        b = {"peer": a}
        a.append(b)
        heap.append(a)
    return heap


async def busy(done: asyncio.Event, measured: Measured) -> None:
    longest = 0
    while not done.is_set():
        sum(range(200))
        before = time.perf_counter_ns()
        await asyncio.sleep(0)  # ready at once: how long until it runs again is its scheduler latency
        longest = max(longest, time.perf_counter_ns() - before)
    measured.longest_resume_ns = max(measured.longest_resume_ns, longest)


async def collector(done: asyncio.Event, measured: Measured) -> None:
    for _ in range(FULL_COLLECTIONS):  # while the busy tasks are ready: each collection holds them up
        await asyncio.sleep(0.1)
        before = time.perf_counter_ns()
        gc.collect()
        measured.waits_ns.append(time.perf_counter_ns() - before)
    done.set()


async def gc_scenario(measured: Measured | None = None) -> None:
    """Three busy tasks and ``FULL_COLLECTIONS`` full collections of a large heap; ``measured`` gets how long each
    of those collections took and the longest time a busy task waited to resume."""
    measured = Measured() if measured is None else measured
    t0 = time.perf_counter_ns()
    heap = build_heap()
    done = asyncio.Event()
    await asyncio.gather(collector(done, measured), *(busy(done, measured) for _ in range(3)))
    del heap
    measured.wall_ns = time.perf_counter_ns() - t0
