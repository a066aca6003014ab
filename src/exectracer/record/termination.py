"""SIGTERM under ``exectracer run``: the trace is finished, then the process dies of the signal as untraced.

Only where SIGTERM's action is the default when the program starts, and only
at the OS level (the C extension's ``term_notify``): Python's ``signal``
module still says ``SIG_DFL``, and a handler the program sets replaces the
tracer's, as it would replace the default. The handler puts the default
action back (a second SIGTERM kills at once, even if the trace cannot be
finished) and wakes a thread of the tracer through a pipe, which finishes
the trace and sends SIGTERM to the process again. A forked child dies of it
at once, as untraced. Without the C extension nothing changes: SIGTERM kills
the process, and the trace ends at its last complete chunk.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from types import ModuleType

from ..tracer_thread import TracerThread


def _native() -> ModuleType | None:
    """The C extension, even where its hooks are switched off (``EXECTRACER_PURE_PYTHON``): no hook is here."""
    try:
        from . import _speedups
    except ImportError:
        return None
    return _speedups if hasattr(_speedups, "term_notify") else None


class FinishOnTerm:
    """Call ``finish()`` on a SIGTERM whose action is the default, then die of it; ``release()`` when done."""

    def __init__(self, finish: Callable[[], None]) -> None:
        self._finish = finish
        self._native = _native()
        self._write_fd = -1
        self._thread: TracerThread | None = None

    def install(self) -> bool:
        """Catch SIGTERM if its action is the default and the C extension is there; whether it is caught."""
        if self._native is None or signal.getsignal(signal.SIGTERM) is not signal.Handlers.SIG_DFL:
            return False
        try:
            read_fd, write_fd = os.pipe()
        except OSError:  # no descriptor left: SIGTERM keeps its default action
            return False
        os.set_blocking(write_fd, False)
        if not self._native.term_notify(write_fd):
            os.close(read_fd)
            os.close(write_fd)
            return False
        self._write_fd = write_fd
        self._thread = TracerThread(target=self._wait, args=(read_fd,), name="exectracer-sigterm", daemon=True)
        self._thread.start()
        return True

    def release(self) -> None:
        """Put SIGTERM's default action back (unless it came: then its thread is finishing and will kill)."""
        if self._write_fd < 0 or self._native is None:
            return
        self._native.term_release()
        os.close(self._write_fd)  # the thread reads the end of the pipe and ends
        self._write_fd = -1

    def _wait(self, read_fd: int) -> None:
        try:
            came = os.read(read_fd, 1)
        finally:
            os.close(read_fd)
        if not came:
            return
        try:
            self._finish()
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # the default action is back: the process dies of it
