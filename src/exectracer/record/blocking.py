"""Thread waits: a BLOCK/UNBLOCK pair for each call that kept a thread waiting.

Hooks time the call and record it only if it took at least the recording's
``block_threshold``, so calls that return at once (a free lock, a socket with
data ready, a non-blocking socket) cost two clock reads and nothing more.
The stack is taken after the call, from the caller's frame, which has not
moved while the thread waited.
"""

from __future__ import annotations

import functools
import sys
import time
from types import FrameType
from typing import Any, Callable

from ..format.events import CATEGORY_SHIFT, Category, Kind, pack
from . import recorder as _recorder
from .interner import Interner
from .registry import Registry
from .thread_stacks import FrameStacks

BLOCK = int(Kind.THREAD_BLOCK)
UNBLOCK = int(Kind.THREAD_UNBLOCK)


class Waits:
    """Records thread waits for one recording."""

    def __init__(self, events: list[int], registry: Registry, interner: Interner, threshold_ns: int) -> None:
        self._emit = events.extend
        self._registry = registry
        self.stacks = FrameStacks(interner)
        self.threshold_ns = threshold_ns

    def record(self, start: int, end: int, category: int, frame: FrameType | None, waker: int = 0) -> None:
        """Record that the calling thread waited from ``start`` to ``end`` (ns) at ``frame``."""
        try:
            g = self._registry.thread_g()
            if g:
                code = pack(BLOCK, self.stacks.of(frame) << CATEGORY_SHIFT | category)
                self._emit((code, start, g, pack(UNBLOCK, waker), end, g))
        except Exception:
            pass


def current_waits() -> Waits | None:
    """The running recording's wait recorder, if it records thread waits."""
    rec = _recorder._current
    return rec.waits if rec is not None else None


def timed(func: Callable, category: Category) -> Callable:
    """Wrap ``func`` so that calls taking at least the threshold are recorded as waits.

    The wrapper looks up the running recording at each call, so an object
    that keeps a wrapped method after ``stop()`` just calls through.
    """
    clock = time.perf_counter_ns
    cat = int(category)
    getframe = sys._getframe

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return func(*args, **kwargs)
        finally:
            end = clock()
            rec = _recorder._current
            if rec is not None and rec.waits is not None and end - start >= rec.waits.threshold_ns:
                rec.waits.record(start, end, cat, getframe(1))

    return wrapper
