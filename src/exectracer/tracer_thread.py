"""The tracer's own threads: a recording leaves them out, and signals never land on them.

The recorder, the live endpoints and the analysis all start threads of
their own; making them :class:`TracerThread` keeps them out of any trace
recorded in the same process. Each starts with every signal it can block
blocked, for its whole life (and the threads it starts inherit that mask):
a signal sent to the process then reaches one of the program's threads, as
untraced, so that a program waiting for a blocked signal (``sigwait``,
``sigwaitinfo``) gets it. This module depends on nothing of exectracer, so
every side can import it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["TracerThread", "signals_blocked"]

# raised by the kernel on the thread that faulted: blocking them would kill the process
# without running its handlers (faulthandler's), so they stay unblocked
_FAULTS: set[int] = {
    getattr(signal, name)
    for name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS")
    if hasattr(signal, name)
}
_UNBLOCKABLE: set[int] = {getattr(signal, name) for name in ("SIGKILL", "SIGSTOP") if hasattr(signal, name)}


def _blockable() -> set[int]:
    return {int(signum) for signum in signal.valid_signals()} - _FAULTS - _UNBLOCKABLE


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Block every signal a thread can block in the calling thread, and restore its mask after.

    A thread started inside inherits the mask. Where ``pthread_sigmask`` does
    not exist (Windows), nothing changes.
    """
    sigmask = getattr(signal, "pthread_sigmask", None)
    if sigmask is None:
        yield
        return
    previous = sigmask(signal.SIG_BLOCK, _blockable())
    try:
        yield
    finally:
        sigmask(signal.SIG_SETMASK, previous)


class TracerThread(threading.Thread):
    """A thread of the tracer itself (the writer's, the sampler's, a debug server's, a snapshot writer's,
    an analysis helper): never recorded, and started with every blockable signal blocked."""

    def start(self) -> None:
        """Start the thread with the signals blocked (the calling thread's mask is restored after)."""
        with signals_blocked():
            super().start()
