"""Share NumPy work between the machine's cores.

Most NumPy loops (gathers, sorts, arithmetic) release the GIL, so threads
working on separate arrays run side by side.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
WORKERS = max(1, min(os.cpu_count() or 1, 8))


def run_all(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Results of ``calls``, run at the same time (the first in this thread), in order."""
    if len(calls) <= 1 or WORKERS == 1:
        return [call() for call in calls]
    futures = [_pool().submit(call) for call in calls[1:]]
    first = calls[0]()
    return [first, *(future.result() for future in futures)]


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(WORKERS - 1, thread_name_prefix="exectracer-analysis")
