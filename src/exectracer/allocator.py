"""Allocator settings for the command-line tools that read large traces.

Loading and analysing a trace allocates and frees arrays of tens of megabytes
many times. glibc serves each with a fresh ``mmap`` and returns it on free,
so every new array faults its pages in again; on the machines measured that
first touch was about a third of ``exectracer summary``'s time. Serving them
from the heap and keeping freed memory there lets later arrays reuse pages
already touched. Only the CLI's one-shot commands (``summary``, ``pprof``)
call this: a library must not change its host process's allocator, and the
long-running viewer gives memory back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
KEEP_FREED_BYTES = 2**31 - 1  # the largest value mallopt takes


def keep_freed_memory() -> bool:
    """Ask glibc to keep large blocks in the heap and not to give freed memory back; whether it agreed."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_FREED_BYTES))
