"""Waiting for a condition with a deadline, instead of sleeping a fixed time and hoping it came meanwhile.

On a loaded machine anything can be late: a thread that was started, a sample
that was due, a chunk that was full. A test waits for the thing itself, with a
deadline that is generous (it costs nothing when the thing comes fast) and only
there to turn a hang into a failure that says what never came.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from exectracer.record.native import speedups
from exectracer.record.sampler import _frames_reader

DEADLINE = 60.0  # seconds
# sys._current_frames(), with collections held off on 3.11, where one it starts can deadlock (CPython gh-106883)
_current_frames = _frames_reader(speedups())

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    what: str,
    timeout: float = DEADLINE,
    interval: float = 0.005,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Poll ``condition()`` until it is true and return its value; AssertionError naming ``what`` after ``timeout`` s.

    ``sleep``: how to pause between looks (a test may avoid a traced ``time.sleep``).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout} s for {what}")
        sleep(interval)


def in_function(thread: threading.Thread, function: str) -> bool:
    """Whether a frame of ``function`` is on ``thread``'s stack."""
    frame = _current_frames().get(thread.ident)  # type: ignore[arg-type]
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False


def _asleep(thread: threading.Thread) -> bool:
    """Whether the OS says ``thread`` sleeps (true where there is no /proc to ask)."""
    try:
        with open(f"/proc/self/task/{thread.native_id}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return not os.path.isdir("/proc/self/task")
    return stat[stat.rindex(b")") + 2 :][:1] in (b"S", b"D")


def wait_until_blocked(
    thread: threading.Thread,
    function: str,
    timeout: float = DEADLINE,
    looks: int = 3,
    interval: float = 0.01,
    sleep: Callable[[float], object] = time.sleep,
) -> None:
    """Wait until ``thread`` sleeps in a blocking call made from a frame of ``function``.

    It must be seen so ``looks`` times in a row, ``interval`` apart: between
    looks the caller lets go of the GIL, so a thread that only waited for the
    GIL on its way to the call would have taken it and gone on. ``sleep``:
    how to pause between looks (a traced program may keep its own sleeps out
    of the trace with ``threading.Event().wait``).
    """
    deadline = time.monotonic() + timeout
    seen = 0
    while seen < looks:
        if time.monotonic() > deadline:
            raise AssertionError(f"{thread.name} did not block in {function} within {timeout} s")
        seen = seen + 1 if thread.is_alive() and in_function(thread, function) and _asleep(thread) else 0
        sleep(interval)
