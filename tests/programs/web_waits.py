"""An aiohttp server on loopback with two endpoints that wait in ``asyncio.sleep``, and its clients.

``/sleep`` sleeps; ``/lock`` sleeps holding a lock that every ``/lock``
request takes in turn (the first holds it until all of them have come, so
the others wait on it). ``REQUESTS`` clients ask each endpoint at once; the
program prints the answers it got. ``test_summary_report`` traces it.
"""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import ClientSession, web

REQUESTS = 4  # per endpoint
PAUSE = 0.02  # seconds each handler sleeps


@dataclasses.dataclass
class Shared:
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    all_in: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    arrived: int = 0


SHARED = web.AppKey("shared", Shared)


async def sleep_handler(request: web.Request) -> web.Response:
    await asyncio.sleep(PAUSE)
    return web.Response(text="slept")


async def lock_handler(request: web.Request) -> web.Response:
    shared = request.app[SHARED]
    shared.arrived += 1
    if shared.arrived == REQUESTS:
        shared.all_in.set()
    async with shared.lock:
        await shared.all_in.wait()
        await asyncio.sleep(PAUSE)
    return web.Response(text="locked")


async def main() -> None:
    app = web.Application()
    app[SHARED] = Shared()
    app.router.add_get("/sleep", sleep_handler)
    app.router.add_get("/lock", lock_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with ClientSession() as session:

            async def get(path: str) -> str:
                async with session.get(f"http://127.0.0.1:{port}{path}") as reply:
                    return await reply.text()

            answers = await asyncio.gather(*(get(path) for path in ("/sleep", "/lock") for _ in range(REQUESTS)))
    finally:
        await runner.cleanup()
    print(" ".join(answers))


if __name__ == "__main__":
    asyncio.run(main())
