"""Allocator settings for the command-line tools that read large traces.

Loading and analysing a trace allocates and frees arrays of tens of megabytes
many times. glibc serves each with a fresh ``mmap`` and returns it on free,
so every new array faults its pages in again; on the machines measured that
first touch was about a third of ``exectracer summary``'s time. Serving them
from the heap and keeping freed memory there lets later arrays reuse pages
already touched; touching part of the heap ahead of time, on another thread,
takes the rest of the first-touch cost off the thread that reads the trace.
Only the CLI's one-shot commands (``summary``, ``pprof``) call this: a
library must not change its host process's allocator, and the long-running
viewer gives memory back.

:func:`collections_paused` turns Python's cyclic garbage collector off while
many acyclic objects are made or walked (the summary's per-goroutine rows,
their JSON): a library may, for the time of one call.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import sys
import threading
from collections.abc import Iterator

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
KEEP_FREED_BYTES = 2**31 - 1  # the largest value mallopt takes
PRETOUCH_PER_FILE_BYTE = 4  # a trace inflates to about six times its size; its first arrays are a good part of that
PRETOUCH_MIN_BYTES = 32 << 20  # less is not worth a thread
PRETOUCH_MAX_BYTES = 1 << 30
HUGE_PAGE = 2 << 20
MADV_HUGEPAGE = 14


@contextlib.contextmanager
def collections_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block (as it was, after it).

    Making a million objects that hold no reference cycles would otherwise
    run a collection every 700 of them, and full ones over everything
    already made, which find nothing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def prepare_for_trace(path: str) -> threading.Thread | None:
    """Set up the heap for reading the trace at ``path``: :func:`keep_freed_memory`, then :func:`pretouch_heap` for
    a few times the file's size. Returns the thread touching the heap, if one was started."""
    libc = _glibc()
    if libc is None or not keep_freed_memory(libc):
        return None
    try:
        size = os.path.getsize(path)
    except OSError:  # the command reports it
        return None
    return pretouch_heap(libc, min(PRETOUCH_PER_FILE_BYTE * size, PRETOUCH_MAX_BYTES, _available_bytes() // 4))


def keep_freed_memory(libc: ctypes.CDLL | None = None) -> bool:
    """Ask glibc to keep large blocks in the heap and not to give freed memory back; whether it agreed."""
    libc = libc or _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_FREED_BYTES))


def pretouch_heap(libc: ctypes.CDLL, nbytes: int) -> threading.Thread | None:
    """Grow the heap by ``nbytes`` now and have a thread write to every page of it, then free it.

    Arrays allocated once it is freed reuse those pages instead of faulting
    in fresh ones one by one on the thread that needs them. Call after
    :func:`keep_freed_memory` (which keeps the freed block in the heap) and
    from the main thread (whose allocations grow the heap that later arrays
    come from). Nothing is started for less than ``PRETOUCH_MIN_BYTES``.
    """
    if nbytes < PRETOUCH_MIN_BYTES:
        return None
    libc.malloc.argtypes, libc.malloc.restype = (ctypes.c_size_t,), ctypes.c_void_p
    libc.madvise.argtypes, libc.madvise.restype = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int), ctypes.c_int
    libc.memset.argtypes, libc.memset.restype = (ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t), ctypes.c_void_p
    libc.free.argtypes, libc.free.restype = (ctypes.c_void_p,), None
    block = libc.malloc(nbytes)
    if not block:
        return None
    start = (
        -(-block // HUGE_PAGE) * HUGE_PAGE
    )  # huge pages where the system offers them, as NumPy asks for its own arrays
    libc.madvise(start, (block + nbytes - start) // HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE)

    def touch() -> None:
        libc.memset(block, 0, nbytes)  # ctypes lets go of the GIL for the call
        libc.free(block)

    thread = threading.Thread(target=touch, name="exectracer-pretouch", daemon=True)
    thread.start()
    return thread


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None  # musl has none


def _available_bytes() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 0
