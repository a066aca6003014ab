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

    held: dict[int, Handler] = {}  # signal number -> the handler held off
    try:
        for number in signal.valid_signals():
            handler = signal.getsignal(number)
            if callable(handler):
                held[int(number)] = handler
                signal.signal(number, hold)
        yield
    finally:
        _put_back(held)
        for signum, frame in came:
            held[signum](signum, frame)


def _put_back(held: dict[int, Handler]) -> None:
    """Put the held handlers back, all of them, even if a signal that came meanwhile runs one that raises."""
    raised: BaseException | None = None
    for signum, handler in held.items():
        while True:
            try:
                signal.signal(signum, handler)  # runs the handlers of signals that came, first
                break
            except BaseException as exc:  # a handler put back already raised: the rest go back all the same
                raised = raised or exc
    if raised is not None:
        raise raised
