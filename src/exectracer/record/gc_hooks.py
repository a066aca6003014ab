"""Garbage collections (``gc.callbacks``) and heap figures."""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable

from ..format.events import Kind, pack
from .hook_errors import caught
from .procfs import ProcFile, start_reader
from .registry import Registry
from .store import EventStore

MAX_HEAP_SHARE = 0.001  # of the time of the threads that read the heap figures, at most


class HeapProbe:
    """Reads allocated blocks and, on Linux, the resident set size.

    Read at the end of each collection (on the collecting thread) and every
    ``heap_interval`` (on the writer's thread). ``sys.getallocatedblocks()``
    walks every pool of the heap holding the GIL, about 1.5 ms in a web
    server's process here, so a reading is taken only once the last one is
    ``1 / MAX_HEAP_SHARE`` times its cost ago. The resident set size is read
    with the GIL kept (see ``procfs``).
    """

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._statm = ProcFile("/proc/self/statm")  # closed only if still ours (see ProcFile)
        self._read = start_reader()
        self.next_ns = 0  # perf_counter ns: no reading before this, unless forced

    def rss(self) -> int:
        """Resident set size in bytes (0 where the OS does not say)."""
        if self._statm.fd < 0:
            return 0
        try:
            return int(self._read(self._statm.fd).split()[1]) * self._page
        except (OSError, ValueError, IndexError):
            if not self._statm.mine():  # closed by the program, its number maybe reused: leave it alone
                self._statm.forget()
            return 0

    def events(self, g: int, ts: int, force: bool = False) -> tuple[int, ...]:
        """HEAP_BLOCKS and HEAP_RSS events at ``ts``; none if the last reading is too recent for its cost,
        unless ``force``."""
        if ts < self.next_ns and not force:
            return ()
        start = time.perf_counter_ns()
        blocks, rss = sys.getallocatedblocks(), self.rss()
        self.next_ns = start + int((time.perf_counter_ns() - start) / MAX_HEAP_SHARE)
        return (pack(Kind.HEAP_BLOCKS, blocks), ts, g, pack(Kind.HEAP_RSS, rss), ts, g)

    def close(self) -> None:
        """Release the /proc file."""
        self._statm.close()


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
                emit(
                    (
                        pack(Kind.GC_END, info.get("collected", 0)),
                        ts,
                        g,
                        pack(Kind.GC_UNCOLLECTABLE, info.get("uncollectable", 0)),
                        ts,
                        g,
                    )
                )
                emit(heap.events(0, ts))
        except Exception:
            caught("gc.callback")

    gc.callbacks.append(on_gc)

    def remove() -> None:
        try:
            gc.callbacks.remove(on_gc)
        except ValueError:
            pass

    return remove
