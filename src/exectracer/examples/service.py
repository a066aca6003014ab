"""An asyncio service worth tracing: a TCP server on loopback and the clients it serves.

Each client sends one request at a time over a real socket and waits for
the reply, so the trace shows:

* network waits: clients waiting for replies, handlers waiting for requests;
* sync waits: handlers queue on one ``asyncio.Lock`` that guards the
  metrics and is held across an ``await asyncio.sleep`` (a slow store);
* syscalls: each request's checksum is computed in a worker thread
  (``asyncio.to_thread``);
* GC pauses: a housekeeping task builds reference cycles every
  ``GC_INTERVAL`` seconds and collects them with ``gc.collect()``, which
  stops every task at once;
* annotations: every request is an ``exectracer.task`` with ``region``\\ s
  and ``log`` records, on both the client and the server side.

Run it as ``python -m exectracer.examples.service [--seconds S]``, or traced
with ``exectracer demo`` / ``exectracer run -m exectracer.examples.service``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import hashlib

import exectracer

CLIENTS = 4
THINK_TIME = 0.01  # seconds a client pauses between requests (times its number)
STORE_TIME = 0.002  # seconds the metrics lock is held per request
GC_INTERVAL = 0.5  # seconds between housekeeping collections
PAYLOAD = 16 << 10  # bytes checksummed per request, at most


@dataclasses.dataclass
class Stats:
    """What one run of the service did."""

    clients: int = CLIENTS
    requests: int = 0
    collections: int = 0
    garbage: int = 0  # objects freed by the housekeeping collections


class Node:
    """A doubly linked list node: a chain of them is all reference cycles."""

    def __init__(self, prev: Node | None) -> None:
        self.prev = prev
        self.next: Node | None = None
        if prev is not None:
            prev.next = self


def checksum(key: str, size: int) -> str:
    """The work a request asks for; runs in a worker thread."""
    return hashlib.sha256(key.encode() * (size // len(key) + 1)).hexdigest()[:16]


class Server:
    """Answers ``<key> <size>`` lines with a checksum, counting requests under a lock."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.metrics_lock = asyncio.Lock()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection until the client closes it."""
        while line := await reader.readline():
            key, size = line.decode().split()
            with exectracer.task("serve"), exectracer.region("handle request"):
                digest = await asyncio.to_thread(checksum, key, int(size))
                async with self.metrics_lock:
                    with exectracer.region("update metrics"):
                        self.stats.requests += 1
                        await asyncio.sleep(STORE_TIME)
                writer.write(f"{digest}\n".encode())
                await writer.drain()
        writer.close()
        await writer.wait_closed()


async def client(number: int, port: int, seconds: float) -> None:
    """Send requests one at a time for ``seconds``, pausing between them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    while loop.time() < deadline:
        sent += 1
        key, size = f"client{number}-{sent}", PAYLOAD >> (sent % 4)
        with exectracer.task("request"):
            exectracer.log("request", f"{key} asks for {size} bytes")
            with exectracer.region("send"):
                writer.write(f"{key} {size}\n".encode())
                await writer.drain()
            with exectracer.region("wait for reply"):
                reply = await reader.readline()
            exectracer.log("reply", reply.decode().strip())
        await asyncio.sleep(THINK_TIME * (number + 1))
    writer.close()
    await writer.wait_closed()


async def housekeeping(stats: Stats, stop: asyncio.Event) -> None:
    """Every ``GC_INTERVAL`` seconds, drop a cyclic structure and collect it."""
    while True:
        try:
            await asyncio.wait_for(stop.wait(), GC_INTERVAL)
            return
        except asyncio.TimeoutError:
            pass
        with exectracer.region("housekeeping"):
            head = Node(None)
            tail = head
            for _ in range(20_000):
                tail = Node(tail)
            del head, tail
            stats.garbage += gc.collect()
            stats.collections += 1


async def serve(seconds: float) -> Stats:
    """Start the server, run the clients for ``seconds`` and shut everything down."""
    stats = Stats()
    server = Server(stats)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    janitor = asyncio.create_task(housekeeping(stats, stop), name="housekeeping")
    async with listener:
        await asyncio.gather(
            *(asyncio.create_task(client(n, port, seconds), name=f"client-{n}") for n in range(CLIENTS))
        )
        stop.set()
        await janitor
    return stats


def main(seconds: float = 2.0) -> Stats:
    """Run the service and its clients for about ``seconds``; return what they did."""
    return asyncio.run(serve(seconds))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m exectracer.examples.service", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="how long the clients run (default: 2)")
    done = main(parser.parse_args().seconds)
    print(
        f"served {done.requests} requests from {done.clients} clients; "
        f"{done.collections} collections freed {done.garbage} objects"
    )
