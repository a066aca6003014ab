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


class ProcFile:
    """A ``/proc`` file kept open, whose descriptor is closed only while it is still this file's.

    A program that closes a descriptor number twice closes, the second time,
    whatever another thread opened under that number in between: rloop 0.5
    does it at every run of a loop (its self-pipe sockets are closed in Rust,
    then again by their Python objects), and the sampler's thread opens
    files while the program runs. The number is then free, and the program's
    next socket may get it: closing "our" file then would close the
    program's socket. So the file keeps the device and inode it was opened
    on, and ``close`` closes the number only if it still holds them; a read
    that fails, or says what this file never says, is a reason to look
    (``mine``). (Between that look and the close another thread could still
    close and reuse the number: the window is a system call wide.)
    """

    __slots__ = ("_key", "fd")

    def __init__(self, path: str | None) -> None:
        """Open ``path`` (None: no file, ``fd`` -1, as when it cannot be opened)."""
        self.fd = open_proc(path) if path is not None else -1
        self._key = (-1, -1)
        if path is not None and self.fd >= 0:
            try:  # by path as well: the number may already be someone else's when fstat runs
                st, by_path = os.fstat(self.fd), os.stat(path)
                if (st.st_dev, st.st_ino) != (by_path.st_dev, by_path.st_ino):
                    self.fd = -1  # not ours by the time we looked: never touch it
                else:
                    self._key = (st.st_dev, st.st_ino)
            except OSError:
                self.close()

    def mine(self) -> bool:
        """Whether the descriptor still holds the file it was opened on."""
        if self.fd < 0:
            return False
        try:
            st = os.fstat(self.fd)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._key

    def close(self) -> None:
        """Close the descriptor if it is still this file's; forget it either way."""
        if self.mine():
            try:
                os.close(self.fd)
            except OSError:
                pass
        self.fd = -1

    def forget(self) -> None:
        """Drop a descriptor found not to be ours any more, without closing it."""
        self.fd = -1


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
