"""A trio program that crosses threads both ways: a nursery, ``trio.to_thread.run_sync`` and
``trio.from_thread.run_sync`` (which goes through trio's entry queue, whose lock trio checks comes from
``_thread``). Prints what it computed, the same with and without tracing.
"""

from __future__ import annotations

import threading

import trio


async def main() -> list[int]:
    results: list[int] = []
    lock = threading.Lock()

    async def child(i: int) -> None:
        await trio.sleep(0.001 * i)

        def in_thread() -> int:
            with lock:
                return trio.from_thread.run_sync(lambda: i * 10) + 1

        results.append(await trio.to_thread.run_sync(in_thread))

    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(child, i)
    return sorted(results)


if __name__ == "__main__":
    print(trio.run(main))
