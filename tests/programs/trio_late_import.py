"""Starts tracing before trio is imported, then imports it and runs it.

Run by ``test_record_trio`` in a fresh interpreter (the test process has
imported trio already). Prints whether trio was imported when tracing
started, then what the run returned.
"""

from __future__ import annotations

import sys

import exectracer


def main(path: str) -> None:
    exectracer.start(path)
    print("trio-imported-at-start" if "trio" in sys.modules else "trio-not-imported-at-start")
    import trio

    async def main() -> int:
        await trio.sleep(0.01)
        return await trio.to_thread.run_sync(lambda: 6)

    print(trio.run(main))
    exectracer.stop()


if __name__ == "__main__":
    main(sys.argv[1])
