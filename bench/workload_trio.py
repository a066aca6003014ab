"""Scheduling-heavy trio workload: the worst case for a task tracer, as ``workload_async.py`` is for asyncio.

* 100 pairs of tasks (200 tasks) pass a token back and forth through two
  memory channels;
* 50 clients talk to a loopback echo server, one short line at a time.

Almost no work happens per task step. Run it directly (untraced), or with
``--trace PATH`` to record it with exectracer's default options
(``--no-thread-waits``: without recording thread waits).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

import trio

PAIRS = 100
CONNECTIONS = 50


async def ping(inbox: trio.MemoryReceiveChannel[int], outbox: trio.MemorySendChannel[int], rounds: int) -> None:
    for i in range(rounds):
        await outbox.send(i)
        await inbox.receive()


async def pong(inbox: trio.MemoryReceiveChannel[int], outbox: trio.MemorySendChannel[int], rounds: int) -> None:
    for _ in range(rounds):
        item = await inbox.receive()
        await outbox.send(item)


async def echo(stream: trio.SocketStream) -> None:
    async with stream:
        while data := await stream.receive_some():
            await stream.send_all(data)


async def client(port: int, messages: int) -> None:
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        for i in range(messages):
            line = b"ping %d\n" % i
            await stream.send_all(line)
            got = b""
            while len(got) < len(line):
                got += await stream.receive_some()


async def main(rounds: int, messages: int) -> None:
    async with trio.open_nursery() as servers:
        (listener,) = await servers.start(functools.partial(trio.serve_tcp, echo, 0, host="127.0.0.1"))
        port = listener.socket.getsockname()[1]
        async with trio.open_nursery() as jobs:
            for _ in range(PAIRS):
                a_send, a_receive = trio.open_memory_channel[int](1)
                b_send, b_receive = trio.open_memory_channel[int](1)
                jobs.start_soon(ping, a_receive, b_send, rounds)
                jobs.start_soon(pong, b_receive, a_send, rounds)
            for _ in range(CONNECTIONS):
                jobs.start_soon(client, port, messages)
        servers.cancel_scope.cancel()


def run(rounds: int, messages: int) -> None:
    trio.run(main, rounds, messages)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1500, help="ping-pong rounds per pair")
    parser.add_argument("--messages", type=int, default=600, help="echo messages per connection")
    parser.add_argument("--trace", help="record into this trace file")
    parser.add_argument("--no-thread-waits", action="store_true", help="trace without recording thread waits")
    args = parser.parse_args()
    t0 = time.perf_counter()
    if args.trace:
        import exectracer

        with exectracer.trace(args.trace, thread_waits=not args.no_thread_waits):
            run(args.rounds, args.messages)
    else:
        run(args.rounds, args.messages)
    print(f"{time.perf_counter() - t0:.3f}", file=sys.stderr)
