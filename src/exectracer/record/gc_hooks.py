"""Garbage collections (``gc.callbacks``) and heap figures."""

from __future__ import annotations

import gc
import os
import sys
import time
from typing import Callable

from ..format.events import Kind, pack
from .registry import Registry
from .store import EventStore


class HeapProbe:
    """Reads allocated blocks and, on Linux, the resident set size."""

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        try:
            self._statm: int | None = os.open("/proc/self/statm", os.O_RDONLY)
        except OSError:
            self._statm = None

    def rss(self) -> int:
        """Resident set size in bytes (0 where the OS does not say)."""
        if self._statm is None:
            return 0
        try:
            return int(os.pread(self._statm, 128, 0).split()[1]) * self._page
        except (OSError, ValueError, IndexError):
            return 0

    def events(self, g: int, ts: int) -> tuple[int, ...]:
        """HEAP_BLOCKS and HEAP_RSS events for now."""
        return (pack(Kind.HEAP_BLOCKS, sys.getallocatedblocks()), ts, g, pack(Kind.HEAP_RSS, self.rss()), ts, g)

    def close(self) -> None:
        """Release the /proc file."""
        if self._statm is not None:
            os.close(self._statm)
            self._statm = None


def install(events: EventStore, registry: Registry, heap: HeapProbe) -> Callable[[], None]:
    """Add a ``gc.callbacks`` entry; return the function that removes it."""
    emit = events.extend
    clock = time.perf_counter_ns

    def on_gc(phase: str, info: dict) -> None:
        try:
            ts = clock()
            g = registry.current_g()
            if phase == "start":
                emit((pack(Kind.GC_START, info.get("generation", 0)), ts, g))
            else:
                emit((pack(Kind.GC_END, info.get("collected", 0)), ts, g, pack(Kind.GC_UNCOLLECTABLE, info.get("uncollectable", 0)), ts, g))
                emit(heap.events(0, ts))
        except Exception:
            pass

    gc.callbacks.append(on_gc)

    def remove() -> None:
        try:
            gc.callbacks.remove(on_gc)
        except ValueError:
            pass

    return remove
