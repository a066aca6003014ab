"""Scheduling-heavy asyncio workload: the worst case for a task tracer.

* 100 pairs of tasks (200 tasks) pass a token back and forth through two
  ``asyncio.Queue`` objects;
* 50 clients talk to a loopback echo server, one short line at a time.

Almost no work happens per task step. Run it directly (untraced), or with
``--trace PATH`` to record it with exectracer's default options;
``--loop uvloop`` runs it on uvloop.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

PAIRS = 100
CONNECTIONS = 50


async def ping(inbox: asyncio.Queue, outbox: asyncio.Queue, rounds: int) -> None:
    for i in range(rounds):
        await outbox.put(i)
        await inbox.get()


async def pong(inbox: asyncio.Queue, outbox: asyncio.Queue, rounds: int) -> None:
    for _ in range(rounds):
        item = await inbox.get()
        await outbox.put(item)


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()
    writer.close()


async def client(port: int, messages: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for i in range(messages):
        writer.write(b"ping %d\n" % i)
        await writer.drain()
        await reader.readline()
    writer.close()
    await writer.wait_closed()


async def main(rounds: int, messages: int) -> None:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    jobs = []
    for _ in range(PAIRS):
        a, b = asyncio.Queue(), asyncio.Queue()
        jobs.append(ping(a, b, rounds))
        jobs.append(pong(b, a, rounds))
    jobs += [client(port, messages) for _ in range(CONNECTIONS)]
    await asyncio.gather(*jobs)
    server.close()
    await server.wait_closed()


def run(rounds: int, messages: int, loop: str = "asyncio") -> None:
    if loop == "uvloop":
        import uvloop

        uvloop.run(main(rounds, messages))
    else:
        asyncio.run(main(rounds, messages))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1500, help="ping-pong rounds per pair")
    parser.add_argument("--messages", type=int, default=600, help="echo messages per connection")
    parser.add_argument("--trace", help="record into this trace file")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="the event loop")
    args = parser.parse_args()
    t0 = time.perf_counter()
    if args.trace:
        import exectracer

        with exectracer.trace(args.trace):
            run(args.rounds, args.messages, args.loop)
    else:
        run(args.rounds, args.messages, args.loop)
    print(f"{time.perf_counter() - t0:.3f}", file=sys.stderr)
