"""Starts tracing, with trio imported, while the collector runs at almost every allocation and always finds a
``threading.local`` in its garbage.

Run by ``test_record_trio`` in a fresh interpreter, under a deadline. Looking
for trio runs in other threads reads ``sys._current_frames()``; on 3.11 a
collection started inside it (by the frame objects it makes) that frees a
``threading.local`` deadlocks the interpreter (CPython gh-106883). Prints
``started`` and ``stopped`` when tracing started and stopped, then exits.
"""

from __future__ import annotations

import gc
import sys
import threading

import trio  # noqa: F401  (imported before tracing starts: the trio hooks go in at start)

import exectracer


class Local(threading.local):
    """A thread-local the collector frees: clearing one walks the interpreter's threads."""


def garbage(phase: str, info: dict) -> None:
    """After each collection, leave a cycle holding a ``threading.local`` for the next one."""
    if phase == "stop":
        local = Local()
        local.me = local


def main(path: str) -> None:
    done = threading.Event()
    threads = [threading.Thread(target=done.wait, name=f"idle-{i}") for i in range(4)]  # frames to read
    for thread in threads:
        thread.start()
    gc.callbacks.append(garbage)
    gc.set_threshold(1)
    try:
        exectracer.start(path, sample_interval=0)  # the sampler reads frames safely already
        print("started", flush=True)
        exectracer.stop()
        print("stopped", flush=True)
    finally:
        gc.set_threshold(700)
        gc.callbacks.remove(garbage)
        done.set()
        for thread in threads:
            thread.join()


if __name__ == "__main__":
    main(sys.argv[1])
