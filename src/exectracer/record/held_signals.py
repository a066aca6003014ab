"""The program's signal handlers held off while the tracer finishes a trace.

A Ctrl-C that comes while ``stop()`` runs would raise ``KeyboardInterrupt``
inside it: the hooks half put back, no END chunk, the last chunks lost.
:func:`handlers_held` puts a recorder of the signals in place of every Python
handler for the length of a block, and runs the handlers for what came once
the block is done, in order, in the same thread: the ``KeyboardInterrupt``
still reaches the program, after the trace is complete.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from .native import speedups

Handler = Callable[[int, FrameType | None], Any]


@contextlib.contextmanager
def handlers_held() -> Iterator[None]:
    """Run no Python signal handler inside the block; run those of the signals that came after it.

    Only the main thread runs Python signal handlers, so elsewhere nothing changes.
    """
    if threading.get_ident() != threading.main_thread().ident:  # not current_thread(): see tracer_thread
        yield
        return
    came: list[tuple[int, FrameType | None]] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        came.append((signum, frame))

    held: dict[int, tuple[Handler, bool]] = {}  # signal number -> the handler held off, whether it restarts calls
    try:
        for number in signal.valid_signals():
            handler = signal.getsignal(number)
            if callable(handler):
                held[int(number)] = (handler, restarts(number))
                signal.signal(number, hold)
        yield
    finally:
        _put_back(held)
        for signum, frame in came:
            held[signum][0](signum, frame)


def restarts(signum: int) -> bool:
    """Whether calls the signal interrupts are restarted (``signal.siginterrupt(signum, False)``): ``signal.signal``
    clears that, so whoever swaps a program's handler must put it back (:func:`put_back`). False where that cannot
    be read (without the C extension, or off Unix)."""
    native = speedups()
    reader = getattr(native, "signal_restarts", None)
    try:
        return bool(reader(signum)) if reader is not None else False
    except OSError:
        return False


def put_back(signum: int, handler: Any, restart: bool) -> None:
    """Make ``handler`` the signal's handler again, restarting the calls it interrupts if it did (:func:`restarts`)."""
    signal.signal(signum, handler)
    if restart:
        signal.siginterrupt(signum, False)


def _put_back(held: dict[int, tuple[Handler, bool]]) -> None:
    """Put the held handlers back, all of them, even if a signal that came meanwhile runs one that raises."""
    raised: BaseException | None = None
    for signum, (handler, restart) in held.items():
        while True:
            try:
                put_back(signum, handler, restart)  # runs the handlers of signals that came, first
                break
            except BaseException as exc:  # a handler put back already raised: the rest go back all the same
                raised = raised or exc
    if raised is not None:
        raise raised
