"""What makes a flight recorder write a snapshot on its own: a signal, or something slow.

Triggers only ask; :class:`SnapshotFiles` writes the snapshots from a thread
of the tracer's own, so a signal handler or a slow request never waits for
the disk, and a storm of triggers makes at most one snapshot per cooldown.
"""

from __future__ import annotations

import os
import queue
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..record.annotations import region, run_within
from ..tracer_thread import TracerThread
from .naming import trace_file_name

F = TypeVar("F", bound=Callable[..., Any])


class SnapshotFiles:
    """Writes a snapshot into a file each time a trigger asks, from a background thread."""

    def __init__(self, snapshot: Callable[[str], int]) -> None:
        self._snapshot = snapshot
        self._queue: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._last: dict[str, float] = {}  # reason -> when the last snapshot for it was asked (monotonic)
        self._thread = TracerThread(target=self._run, name="exectracer-flight-snapshots", daemon=True)
        self._thread.start()

    def request(self, directory: str, reason: str, cooldown: float = 0.0, label: str | None = None) -> str | None:
        """Ask for a snapshot into ``directory``; the path it will be written to (named with ``label``, default
        ``reason``), or None if one for ``reason`` was asked less than ``cooldown`` s ago.

        Safe in a signal handler (``SimpleQueue.put`` is reentrant).
        """
        now = time.monotonic()
        last = self._last.get(reason)
        if last is not None and now - last < cooldown:
            return None
        self._last[reason] = now
        path = os.path.join(directory, trace_file_name("flight", reason if label is None else label))
        self._queue.put((path, reason))
        return path

    def close(self) -> None:
        """Write the snapshots already asked for, then end the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            path, reason = item
            try:
                size = self._snapshot(path)
                print(
                    f"exectracer: flight recorder snapshot ({reason}) written to {path} ({size:,} bytes)",
                    file=sys.stderr,
                )
            except Exception as exc:  # a trigger never raises into the program
                print(
                    f"exectracer: flight recorder snapshot ({reason}) failed: {type(exc).__name__}: {exc}",
                    file=sys.stderr,
                )


class SnapshotIfSlow:
    """Times a block (``with``/``async with``) or, as a decorator, each call of a function;
    asks for a snapshot when it takes ``threshold`` seconds or more.

    With a ``name``, the block is also an ``exectracer.region`` of that name.
    One object times one block at a time; the decorator makes one per call.
    """

    def __init__(self, request: Callable[[str], object], threshold: float, name: str | None) -> None:
        self._request = request
        self.threshold = threshold
        self.name = name
        self._began = 0.0
        self._region: region | None = None

    def __enter__(self) -> SnapshotIfSlow:
        if self.name is not None:
            self._region = region(self.name).__enter__()
        self._began = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        took = time.perf_counter() - self._began
        if self._region is not None:
            self._region.__exit__()
            self._region = None
        if took >= self.threshold:
            self._request(f"slow-{self.name or 'call'}")

    async def __aenter__(self) -> SnapshotIfSlow:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()

    def __call__(self, func: F) -> F:
        return run_within(func, lambda: SnapshotIfSlow(self._request, self.threshold, self.name))
