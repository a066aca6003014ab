"""The tracer's own threads: unseen by the program and by any recording, and signals never land on them.

The recorder, the live endpoints and the analysis all start threads of
their own. A :class:`TracerThread` is started with ``_thread``, not
``threading``: the program's ``threading.enumerate()`` and
``threading.active_count()`` do not list it, as untraced, and threading's
own bookkeeping (``threading._active``, its shutdown and fork handling)
never holds it. A recording leaves it out (:func:`is_tracer_thread`). It
never calls ``threading.current_thread()``, which would register a dummy
``Thread`` the program could see.

Each starts with every signal it can block blocked, for its whole life (and
the threads it starts inherit that mask): a signal sent to the process then
reaches one of the program's threads, as untraced, so that a program waiting
for a blocked signal (``sigwait``, ``sigwaitinfo``) gets it.

This module depends on nothing of exectracer, so every side can import it.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

__all__ = ["TracerThread", "is_tracer_thread", "signals_blocked"]

# raised by the kernel on the thread that faulted: blocking them would kill the process
# without running its handlers (faulthandler's), so they stay unblocked
_FAULTS: set[int] = {
    getattr(signal, name)
    for name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS")
    if hasattr(signal, name)
}
_UNBLOCKABLE: set[int] = {getattr(signal, name) for name in ("SIGKILL", "SIGSTOP") if hasattr(signal, name)}

_running: set[int] = set()  # the idents of the tracer threads running in this process


def is_tracer_thread(ident: int | None = None) -> bool:
    """Whether the thread ``ident`` (by default the calling thread) is one of the tracer's."""
    return (threading.get_ident() if ident is None else ident) in _running


_blockable_signals: set[int] | None = None


def _blockable() -> set[int]:
    global _blockable_signals
    if _blockable_signals is None:
        _blockable_signals = {int(signum) for signum in signal.valid_signals()} - _FAULTS - _UNBLOCKABLE
    return _blockable_signals


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Block every signal a thread can block in the calling thread, and restore its mask after.

    A thread started inside inherits the mask. Where ``pthread_sigmask`` does
    not exist (Windows), nothing changes. ``_signal``'s function, not ``signal``'s, whose wrapper makes an enum of
    every signal of the mask it returns (0.4 ms each time: each start of a process's recording starts three threads).
    """
    sigmask = getattr(getattr(signal, "_signal", signal), "pthread_sigmask", None)
    if sigmask is None:
        yield
        return
    previous = sigmask(signal.SIG_BLOCK, _blockable())
    try:
        yield
    finally:
        sigmask(signal.SIG_SETMASK, previous)


class TracerThread:
    """A thread of the tracer itself (the writer's, the sampler's, a debug server's, a snapshot writer's,
    an analysis helper): never recorded, never listed by ``threading``, started with every blockable signal
    blocked. What it offers of ``threading.Thread``: ``start``, ``join``, ``is_alive``, ``name``, ``ident``,
    ``native_id``.
    It is always a daemon: the interpreter does not wait for it at exit."""

    def __init__(
        self,
        target: Callable[..., object],
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        name: str = "exectracer",
        daemon: bool = True,
    ) -> None:
        self.name = name
        self.daemon = True  # whatever was asked: nothing waits for it at exit
        self.ident: int | None = None
        self.native_id: int | None = None
        self._target, self._args, self._kwargs = target, tuple(args), dict(kwargs or {})
        self._done = _thread.allocate_lock()  # held while it runs
        self._pid: int | None = None  # the process that started it: a forked child has no such thread

    def start(self) -> None:
        """Start the thread with the signals blocked (the calling thread's mask is restored after);
        return once it runs."""
        if self._pid is not None:
            raise RuntimeError("threads can only be started once")
        started = _thread.allocate_lock()
        started.acquire()
        self._done.acquire()
        self._pid = os.getpid()
        with signals_blocked():
            _thread.start_new_thread(self._bootstrap, (started,))
        started.acquire()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the thread ends, or ``timeout`` seconds."""
        if self._pid is None:
            raise RuntimeError("cannot join thread before it is started")
        if self._pid != os.getpid():  # a forked child: the thread was not copied
            return
        if self.ident == threading.get_ident():
            raise RuntimeError("cannot join current thread")
        if self._done.acquire(True, -1 if timeout is None else max(timeout, 0)):
            self._done.release()

    def is_alive(self) -> bool:
        """Whether the thread runs (never in a forked child)."""
        return self._pid == os.getpid() and self._done.locked()

    def __repr__(self) -> str:
        state = "started" if self.is_alive() else "stopped" if self._pid is not None else "initial"
        return f"<TracerThread({self.name}, {state} {self.ident})>"

    def _bootstrap(self, started: Any) -> None:
        self.ident = ident = _thread.get_ident()
        self.native_id = _thread.get_native_id()
        _running.add(ident)
        started.release()
        try:
            self._target(*self._args, **self._kwargs)
        except BaseException:  # as threading prints an exception no one caught, unless the interpreter is gone
            if sys is not None and sys.stderr is not None:
                print(f"Exception in exectracer thread {self.name}:", file=sys.stderr)
                traceback.print_exc()
        finally:
            _running.discard(ident)
            self._target = self._args = self._kwargs = None  # type: ignore[assignment]  # no cycle through them
            self._done.release()
