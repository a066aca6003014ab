"""Starts tracing before asyncio, ssl, subprocess and concurrent.futures are imported, then uses them.

Run by ``test_late_imports`` in a fresh interpreter (pytest itself imports
asyncio). Prints one JSON object: what was imported when tracing started,
and what the hooks looked like while it ran and after it stopped.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import selectors
import socket
import sys
import threading

import exectracer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for its support package
from support.waiting import wait_until_blocked

LATE = ("asyncio", "ssl", "subprocess", "concurrent.futures.thread")


def wait_in_selector(sock: socket.socket) -> None:
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        sel.select(timeout=60)  # a thread wait at this line, not inside any hook


def main(path: str) -> None:
    exectracer.start(path)
    report = {"imported_at_start": [name for name in LATE if name in sys.modules]}
    import asyncio
    import subprocess
    import time

    report["loader_restored"] = (
        type(asyncio.__loader__).__name__ == type(asyncio.__spec__.loader).__name__ == "SourceFileLoader"
        and type(asyncio.__spec__) is importlib.machinery.ModuleSpec
        and asyncio.__spec__._initializing is False
    )
    report["hooked"] = hasattr(asyncio.events.Handle._run, "__wrapped__")  # a hook passes for it, but wraps it

    async def pooled() -> None:
        await asyncio.gather(asyncio.sleep(0.01), asyncio.to_thread(time.sleep, 0.02))

    asyncio.run(pooled())
    left, right = socket.socketpair()
    waiter = threading.Thread(target=wait_in_selector, args=(left,), name="selecting")
    waiter.start()
    wait_until_blocked(waiter, "wait_in_selector", sleep=threading.Event().wait)
    right.send(b"x")
    waiter.join()
    subprocess.run([sys.executable, "-c", "import time; time.sleep(0.05)"], check=True)
    exectracer.stop()
    report["restored"] = not hasattr(asyncio.events.Handle._run, "__wrapped__") and not hasattr(
        subprocess.Popen.wait, "__wrapped__"
    )
    report["finders_left"] = [
        type(finder).__name__ for finder in sys.meta_path if type(finder).__name__ == "ImportHooks"
    ]
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
