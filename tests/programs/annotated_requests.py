"""Requests handled by asyncio tasks, annotated with user tasks, regions and log records (``exectracer.task``,
``region``, ``log``): ``main()`` runs ``REQUESTS`` of them at once."""

from __future__ import annotations

import asyncio

import exectracer

REQUESTS = 4
REGIONS = ("parse", "respond")


async def handle(i: int) -> None:
    with exectracer.task("request"):
        with exectracer.region("parse"):
            exectracer.log("http", f"GET /item/{i}")
            await asyncio.sleep(0.01)
        with exectracer.region("respond"):
            await asyncio.sleep(0.02)


async def requests() -> None:
    await asyncio.gather(*(handle(i) for i in range(REQUESTS)))


def main() -> None:
    asyncio.run(requests())
