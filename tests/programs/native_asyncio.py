"""A deterministic asyncio program that goes through every path of the task-step and callback hooks.

Traced twice by ``test_native_hooks``, with the C hooks and with the Python
ones: both traces must tell the same story.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import sys
import threading
import types

DEPTH = 80  # deeper than the C hook's chain key goes (64 levels)


async def ping_pong(rounds: int) -> None:
    to_pong: asyncio.Queue = asyncio.Queue()
    to_ping: asyncio.Queue = asyncio.Queue()

    async def pong() -> None:
        for _ in range(rounds):
            await to_pong.get()
            to_ping.put_nowait(None)

    partner = asyncio.create_task(pong(), name="pong")
    for _ in range(rounds):
        to_pong.put_nowait(None)
        await to_ping.get()
    await partner


async def contend(lock: asyncio.Lock) -> None:
    async with lock:
        await asyncio.sleep(0)  # a bare yield, holding the lock


async def fail() -> None:
    await asyncio.sleep(0.001)
    raise ValueError("expected")


async def nested(depth: int, event: asyncio.Event) -> None:
    if depth:
        await nested(depth - 1, event)
    else:
        await event.wait()


@types.coroutine
def legacy(fut: asyncio.Future):
    """A generator-based coroutine: its level of the await chain is a generator."""
    return (yield from fut)


async def through_legacy() -> int:
    fut = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.002, fut.set_result, 7)
    return await legacy(fut)


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.readline())
    await writer.drain()
    writer.close()


async def exchange() -> bytes:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hello\n")
    await writer.drain()
    line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return line


async def sock_exchange() -> bytes:
    """The loop's own socket calls against the echo server: on uvloop its C code completes their futures."""
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    with socket.create_connection(server.sockets[0].getsockname()) as client:
        client.setblocking(False)
        await loop.sock_sendall(client, b"hello\n")
        line = await loop.sock_recv(client, 100)  # the server's task answers after this suspends
    server.close()
    await server.wait_closed()
    return line


def broken_callback() -> None:
    raise RuntimeError("expected from a callback")


async def main() -> None:
    loop = asyncio.get_running_loop()
    errors: list[str] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context["message"]))

    await ping_pong(5)
    lock = asyncio.Lock()
    await asyncio.gather(*(asyncio.create_task(contend(lock), name=f"contender-{i}") for i in range(3)))
    await asyncio.sleep(0.002)
    results = await asyncio.gather(fail(), asyncio.sleep(0.001), return_exceptions=True)
    assert isinstance(results[0], ValueError)

    sleeper = asyncio.create_task(asyncio.sleep(10), name="cancelled")
    await asyncio.sleep(0)
    sleeper.cancel()
    await asyncio.gather(sleeper, return_exceptions=True)

    # the worker's call ends only once this step has suspended (the callback runs after it): had it ended first,
    # the future would be completed from this step, its waker this task, whichever hooks record it
    released = threading.Event()
    loop.call_soon(released.set)
    await loop.run_in_executor(None, released.wait)

    done = asyncio.Event()
    loop.call_soon(functools.partial(print, end=""))
    seen: set = set()
    for _ in range(2):  # builtin methods, named again from the C hooks' cache
        loop.call_soon(seen.add, 1)
        loop.call_soon(seen.discard, 1)
    loop.call_later(0.001, done.set)
    loop.call_soon(broken_callback)
    await done.wait()
    assert len(errors) == 1 and errors[0].startswith("Exception in callback"), errors

    event = asyncio.Event()
    deep = asyncio.create_task(nested(DEPTH, event), name="deep")
    await asyncio.sleep(0.001)
    event.set()
    await deep

    assert await asyncio.create_task(through_legacy(), name="legacy") == 7
    assert await asyncio.create_task(exchange(), name="exchange") == b"hello\n"
    assert await asyncio.create_task(sock_exchange(), name="sockets") == b"hello\n"
    # names close to asyncio's default "Task-N" that are not it: each is kept as the string it is
    for name in ("Task-007", "Task-", "Task-12x", "Task-" + "9" * 18, "Task-\u0661", "T\u00e2sk-1"):
        await loop.create_task(asyncio.sleep(0), name=name)  # named at creation, before 3.12 too


if __name__ == "__main__":
    if sys.argv[1:] == ["--uvloop"]:  # the same program on uvloop
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
