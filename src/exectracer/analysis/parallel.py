"""Share NumPy work between the machine's cores.

Most NumPy loops (gathers, sorts, arithmetic) release the GIL, so threads
working on separate arrays run side by side.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

from ..tracer_thread import TracerThread

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
WORKERS = max(1, min(os.cpu_count() or 1, 8))


@overload
def run_all(calls: tuple[Callable[[], A], Callable[[], B]]) -> tuple[A, B]: ...


@overload
def run_all(calls: tuple[Callable[[], A], Callable[[], B], Callable[[], C]]) -> tuple[A, B, C]: ...


@overload
def run_all(calls: list[Callable[[], T]]) -> list[T]: ...


def run_all(calls: Sequence[Callable[[], Any]]) -> Sequence[Any]:
    """Results of ``calls``, run at the same time (the first in this thread), in order: a tuple for a tuple of calls
    (each result of its own type), a list for a list.

    The helper threads are the tracer's own: a trace recorded in this
    process leaves them out.
    """
    results: list[Any] = [None] * len(calls)
    if len(calls) <= 1 or WORKERS == 1:
        results = [call() for call in calls]
    else:
        _run_side_by_side(calls, results)
    return tuple(results) if isinstance(calls, tuple) else results


def _run_side_by_side(calls: Sequence[Callable[[], Any]], results: list[Any]) -> None:
    """Run ``calls`` in threads of the tracer's own (the first in this one), into ``results``; raise the first error."""
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    threads = [
        TracerThread(target=run, args=(i,), name="exectracer-analysis", daemon=True) for i in range(1, len(calls))
    ]
    for thread in threads:
        thread.start()
    try:
        results[0] = calls[0]()
    finally:
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
