"""Share NumPy work between the machine's cores.

Most NumPy loops (gathers, sorts, arithmetic) release the GIL, so threads
working on separate arrays run side by side.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..tracer_thread import TracerThread

T = TypeVar("T")
WORKERS = max(1, min(os.cpu_count() or 1, 8))


def run_all(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Results of ``calls``, run at the same time (the first in this thread), in order.

    The helper threads are the tracer's own: a trace recorded in this
    process leaves them out.
    """
    if len(calls) <= 1 or WORKERS == 1:
        return [call() for call in calls]
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    threads = [TracerThread(target=run, args=(i,), name="exectracer-analysis", daemon=True) for i in range(1, len(calls))]
    for thread in threads:
        thread.start()
    try:
        results[0] = calls[0]()
    finally:
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return results
