"""``/proc`` files read without letting go of the GIL.

A ``/proc`` read takes microseconds, but a thread that releases the GIL
while others run Python waits a switch interval (5 ms) or more to get it
back, or makes a busy event loop hand it over. The tracer's threads read
these files holding the GIL they already have.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .gil import gil_enabled
from .native import speedups


def open_proc(path: str) -> int:
    """An fd for ``path``, or -1 where it cannot be opened."""
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return -1


def start_reader() -> Callable[[int], bytes]:
    """A function reading the first 256 bytes of a file by fd, keeping the GIL (in C, else where ctypes allows)."""
    native = speedups()
    if native is not None and hasattr(native, "pread_start"):
        return native.pread_start
    if gil_enabled():
        try:
            import ctypes

            fn = ctypes.PyDLL(None, use_errno=True).pread  # PyDLL: the call keeps the GIL
            fn.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long)
            fn.restype = ctypes.c_ssize_t
            buf = ctypes.create_string_buffer(256)

            def read(fd: int) -> bytes:
                n = fn(fd, buf, 256, 0)
                if n < 0:
                    raise OSError(ctypes.get_errno(), "cannot read /proc")
                return buf.raw[:n]

            return read
        except Exception:  # noqa: S110 (a probe, not a hook: no ctypes, or no pread in the process's symbols: os.pread below)
            pass
    pread = os.pread  # bound now, before any hook could wrap it
    return lambda fd: pread(fd, 256, 0)
