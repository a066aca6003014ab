"""Waits on threading's synchronisation: locks, conditions (and so events,
semaphores, barriers, queues, futures) and joins.

``threading.Lock`` and ``threading.RLock`` are replaced while tracing by
classes that wrap a real lock. A free lock is taken with one non-blocking
attempt and nothing is recorded; only a contended acquire is timed. A
release that finds waiters notes who released, so the woken waiter's
THREAD_UNBLOCK names its waker. Locks created before ``start()`` are not
these classes: the sampler still sees threads waiting on them.

Where the C extension is built the classes are ``NativeLock`` and
``NativeRLock``, the same work done by ``_speedups.LockWrapper``; ``Lock``
and ``RLock`` below are their Python reference.
"""

from __future__ import annotations

import _thread
import sys
import threading
import time
import weakref
from typing import Any

from ..format.events import Category
from . import current as _current
from .blocking import Wakers, timed
from .native import speedups
from .patcher import Patcher
from .thread_hooks import THREAD_G_ATTR

SYNC = int(Category.SYNC)
_allocate_lock = _thread.allocate_lock
_RealRLock: Any = getattr(threading, "_CRLock", None) or threading._PyRLock  # type: ignore[attr-defined]
_clock = time.perf_counter_ns
_getframe = sys._getframe


def _current_g() -> int:
    rec = _current.recording
    return rec.registry.current_g() if rec is not None else 0


def _acquire_contended(owner: Lock | RLock, blocking: bool, timeout: float) -> bool:
    """Block on ``owner``'s lock, then record the wait if it was long enough."""
    start = _clock()
    owner._waiters += 1
    try:
        return owner._lock.acquire(blocking, timeout)
    finally:
        owner._waiters -= 1
        end = _clock()
        rec = _current.recording
        if rec is not None and rec.waits is not None and end - start >= rec.waits.threshold_ns:
            rec.waits.record(start, end, SYNC, _getframe(2), owner._releaser)  # (inside Condition.wait, left to it)


class Lock:
    """``threading.Lock`` while tracing: a real lock whose contended acquires are recorded."""

    __slots__ = ("__weakref__", "_lock", "_releaser", "_waiters")

    def __init__(self) -> None:
        self._lock = _allocate_lock()
        self._waiters = 0  # threads blocked in acquire (best effort: not atomic)
        self._releaser = 0  # goroutine that last released it while others waited

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock, like ``_thread.lock.acquire``."""
        if not blocking:
            return self._lock.acquire(blocking, timeout)  # same result and errors as the real lock
        if self._lock.acquire(False):
            return True
        return _acquire_contended(self, blocking, timeout)

    __enter__ = acquire

    def release(self) -> None:
        """Release the lock, noting the releaser if anyone waits for it."""
        if self._waiters:
            self._releaser = _current_g()
        self._lock.release()

    def __exit__(self, *exc: object) -> None:
        if self._waiters:
            self._releaser = _current_g()
        self._lock.release()

    def locked(self) -> bool:
        """Whether the lock is held."""
        return self._lock.locked()

    def _at_fork_reinit(self) -> None:
        self._lock._at_fork_reinit()  # type: ignore[attr-defined]  # private: what threading's own locks do after a fork
        self._waiters = 0

    def __repr__(self) -> str:
        return _lock_repr(self)


class RLock(Lock):
    """``threading.RLock`` while tracing: a real reentrant lock whose contended acquires are recorded."""

    __slots__ = ()

    def __init__(self) -> None:
        self._lock = _RealRLock()
        self._waiters = 0
        self._releaser = 0

    def __getattr__(self, name: str) -> Any:
        # _is_owned, _release_save, _acquire_restore (used by Condition), _recursion_count, ...
        return getattr(self._lock, name)

    def __repr__(self) -> str:
        return _rlock_repr(self)


def _lock_repr(lock: Any) -> str:
    return (
        f"<{'locked' if lock._lock.locked() else 'unlocked'} {type(lock).__module__}.{type(lock).__qualname__}"
        f" object at {id(lock):#x}>"
    )


def _rlock_repr(lock: Any) -> str:
    real = type(lock._lock)
    return repr(lock._lock).replace(
        f"{real.__module__}.{real.__qualname__}", f"{type(lock).__module__}.{type(lock).__qualname__}", 1
    )


_native = speedups()
if _native is not None:

    class NativeLock(_native.LockWrapper):  # type: ignore[name-defined]  # a base mypy cannot resolve: the module is loaded at run time
        """``threading.Lock`` while tracing, in C: a real lock whose contended acquires are recorded."""

        __slots__ = ()
        _make = staticmethod(_allocate_lock)
        __repr__ = _lock_repr

    class NativeRLock(_native.LockWrapper):  # type: ignore[name-defined]  # (as NativeLock)
        """``threading.RLock`` while tracing, in C: a real reentrant lock whose contended acquires are recorded."""

        __slots__ = ()
        _make = _RealRLock
        __repr__ = _rlock_repr


def lock_classes() -> tuple[type, type]:
    """What replaces ``threading.Lock`` and ``threading.RLock``: the C-based classes where built,
    else the Python ones."""
    if _native is not None:
        return NativeLock, NativeRLock
    return Lock, RLock


def install(patcher: Patcher) -> None:
    """Replace threading's lock factories; time Condition.wait and Thread.join."""
    notifiers: Wakers = {}  # weakref.ref(condition) -> its last notifier; gone with the condition

    def forget(ref: weakref.ref) -> None:
        notifiers.pop(ref, None)

    lock, rlock = lock_classes()
    patcher.replace(threading, "Lock", lock)
    patcher.replace(threading, "RLock", rlock)
    orig_notify = threading.Condition.notify

    def notify(cond: threading.Condition, n: int = 1) -> None:
        if cond._waiters:  # type: ignore[attr-defined]
            try:
                notifiers[weakref.ref(cond, forget)] = _current_g()  # a key already there keeps its own reference
            except TypeError:  # not weak-referenceable: a subclass with __slots__
                pass
        orig_notify(cond, n)

    patcher.replace(threading.Condition, "wait", timed(threading.Condition.wait, Category.SYNC, wakers=notifiers))
    patcher.replace(threading.Condition, "notify", notify)
    patcher.replace(threading.Thread, "join", timed(threading.Thread.join, Category.SYNC, waker=_joined))


def _joined(args: tuple) -> int:
    """The joined thread, if it ended: it is what released the joiner."""
    thread = args[0]
    return 0 if thread.is_alive() else getattr(thread, THREAD_G_ATTR, 0)
