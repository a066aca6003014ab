"""Waits on threading's synchronisation: locks, conditions (and so events,
semaphores, barriers, queues, futures) and joins.

``threading.Lock`` and the class ``threading.RLock()`` makes
(``threading._CRLock``, so that ``threading.RLock`` itself is unchanged) are
replaced while tracing by classes that wrap a real lock. A free lock is
taken with one non-blocking attempt and nothing is recorded; only a
contended acquire is timed. A release that finds waiters notes who
released, so the woken waiter's THREAD_UNBLOCK names its waker. Locks
created before ``start()`` are not these classes: the sampler still sees
threads waiting on them.

A lock made while tracing passes for the real one (trio asserts that its
lock's ``__class__`` comes from ``_thread``): its ``__class__`` is the real
lock's type (so ``isinstance(lock, _thread.RLock)`` holds), its repr the
real lock's (with its own address), and ``copy`` and ``pickle`` refuse it
with the real lock's error. ``isinstance(x, threading.Lock)`` (a class from
Python 3.13) holds for real locks while tracing. Only ``type(lock)`` tells.

Where the C extension is built the classes are ``NativeLock`` and
``NativeRLock``, the same work done by ``_speedups.LockWrapper``; ``Lock``
and ``RLock`` below are their Python reference.
"""

from __future__ import annotations

import _thread
import copyreg
import sys
import threading
import time
import weakref
from typing import Any, SupportsIndex

from ..format.events import Category
from . import current as _current
from .blocking import Wakers, timed
from .native import speedups
from .patcher import Patcher
from .thread_hooks import THREAD_G_ATTR

SYNC = int(Category.SYNC)
_allocate_lock = _thread.allocate_lock
_RealLock: type = _thread.LockType
_RealRLock: Any = getattr(threading, "_CRLock", None) or threading._PyRLock  # type: ignore[attr-defined]
_clock = time.perf_counter_ns
_getframe = sys._getframe


def _current_g() -> int:
    rec = _current.recording
    return rec.registry.current_g() if rec is not None else 0


def _acquire_contended(owner: Lock | RLock, blocking: bool, timeout: float, enter: bool = False) -> bool:
    """Block on ``owner``'s lock, then record the wait if it was long enough.

    ``enter``: for ``with lock:``, block in the real lock's ``__enter__``, not in its ``acquire``, as untraced
    (a checker that wraps ``acquire``, as blockbuster does in an event loop, sees what it sees untraced)."""
    start = _clock()
    owner._waiters += 1
    try:
        return owner._lock.__enter__() if enter else owner._lock.acquire(blocking, timeout)
    finally:
        owner._waiters -= 1
        end = _clock()
        rec = _current.recording
        if rec is not None and rec.waits is not None and end - start >= rec.waits.threshold_ns:
            rec.waits.record(start, end, SYNC, _getframe(2), owner._releaser)  # (inside Condition.wait, left to it)


class _LockClass(type):
    """The lock classes' metaclass: ``isinstance`` and ``issubclass`` with one (``threading.Lock`` while
    tracing) hold for the real lock type it passes for too, and the class pickles as the name it is put under
    (``threading.Lock``), which gives the real one where nothing is traced."""

    _real: type
    _replaces: str  # "module:name" (pkgutil.resolve_name's form)

    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, cls._real) or type.__instancecheck__(cls, obj)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls._real) or type.__subclasscheck__(cls, sub)


def _reduce_lock_class(cls: _LockClass) -> tuple[Any, ...]:
    from pkgutil import resolve_name  # only when one is pickled

    return resolve_name, (cls._replaces,)


copyreg.pickle(_LockClass, _reduce_lock_class)


def _reduce_ex(lock: Any, protocol: SupportsIndex) -> Any:
    """What the real lock says to ``pickle`` and ``copy``: it refuses, with its own error."""
    return lock._lock.__reduce_ex__(protocol)


def _reduce(lock: Any) -> Any:
    return lock._lock.__reduce__()


def _lock_repr(lock: Any) -> str:
    """The real lock's repr, with this object's address."""
    text = repr(lock._lock)
    head, at, _ = text.rpartition(" at 0x")
    return f"{head} at {id(lock):#x}>" if at else text


class Lock(metaclass=_LockClass):
    """``threading.Lock`` while tracing: a real lock whose contended acquires are recorded."""

    __slots__ = ("__weakref__", "_lock", "_releaser", "_waiters")
    _real, _replaces = _RealLock, "threading:Lock"
    __class__ = property(lambda self: _RealLock)  # what it passes for (trio checks)
    __reduce_ex__ = _reduce_ex
    __reduce__ = _reduce
    __repr__ = _lock_repr

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

    def __enter__(self) -> bool:
        """Acquire the lock, like ``_thread.lock.__enter__``."""
        if self._lock.acquire(False):
            return True
        return _acquire_contended(self, True, -1, enter=True)

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


class RLock(Lock):
    """``threading.RLock()``'s lock while tracing: a real reentrant lock whose contended acquires are recorded."""

    __slots__ = ()
    _real, _replaces = _RealRLock, "threading:_CRLock"
    __class__ = property(lambda self: _RealRLock)

    def __init__(self) -> None:
        self._lock = _RealRLock()
        self._waiters = 0
        self._releaser = 0

    def __getattr__(self, name: str) -> Any:
        # _is_owned, _release_save, _acquire_restore (used by Condition), _recursion_count, ...
        return getattr(self._lock, name)


_native = speedups()
if _native is not None:

    class NativeLock(_native.LockWrapper, metaclass=_LockClass):  # type: ignore[name-defined]  # a base mypy cannot resolve: the module is loaded at run time
        """``threading.Lock`` while tracing, in C: a real lock whose contended acquires are recorded."""

        __slots__ = ()
        _make = staticmethod(_allocate_lock)
        _real, _replaces = _RealLock, "threading:Lock"
        __class__ = property(lambda self: _RealLock)
        __reduce_ex__ = _reduce_ex
        __reduce__ = _reduce
        __repr__ = _lock_repr

    class NativeRLock(_native.LockWrapper, metaclass=_LockClass):  # type: ignore[name-defined]  # (as NativeLock)
        """``threading.RLock()``'s lock while tracing, in C: a real reentrant lock whose contended acquires are
        recorded."""

        __slots__ = ()
        _make = _RealRLock
        _real, _replaces = _RealRLock, "threading:_CRLock"
        __class__ = property(lambda self: _RealRLock)
        __reduce_ex__ = _reduce_ex
        __reduce__ = _reduce
        __repr__ = _lock_repr


def lock_classes() -> tuple[type, type]:
    """What replaces ``threading.Lock`` and ``threading._CRLock`` (what ``threading.RLock()`` makes): the
    C-based classes where built, else the Python ones."""
    if _native is not None:
        return NativeLock, NativeRLock
    return Lock, RLock


def install(patcher: Patcher) -> None:
    """Replace threading's lock classes; time Condition.wait and Thread.join."""
    notifiers: Wakers = {}  # weakref.ref(condition) -> its last notifier; gone with the condition

    def forget(ref: weakref.ref) -> None:
        notifiers.pop(ref, None)

    lock, rlock = lock_classes()
    patcher.replace(threading, "Lock", lock)
    patcher.replace(threading, "_CRLock", rlock)  # threading.RLock() makes it; RLock itself stays the same
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
