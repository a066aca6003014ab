"""Thread waits: a BLOCK/UNBLOCK pair for each call that kept a thread waiting.

Hooks time the call and record it only if it took at least the recording's
``block_threshold``, so calls that return at once (a free lock, a socket with
data ready, a non-blocking socket) cost two clock reads and nothing more.
The stack is taken after the call, from the caller's frame, which has not
moved while the thread waited.
"""

from __future__ import annotations

import functools
import sys
import time
import weakref
from collections.abc import Callable
from threading import get_ident
from types import FrameType, FunctionType
from typing import Any

from ..format.events import ARG_SHIFT, CATEGORY_SHIFT, Category, Kind
from . import current as _current
from .hook_errors import caught
from .native import speedups
from .registry import Registry
from .stand_in import stand_in
from .store import EventStore
from .thread_stacks import FrameStacks, stack_key

BLOCK = int(Kind.THREAD_BLOCK)
UNBLOCK = int(Kind.THREAD_UNBLOCK)
PROCESS_WAIT = int(Kind.PROCESS_WAIT)


class Waits:
    """Records thread waits for one recording."""

    def __init__(
        self, events: EventStore, registry: Registry, stacks: FrameStacks, threshold_ns: int, rows: Any = None
    ) -> None:
        """``rows``: the C hooks' columns, where their ``Timed`` wrappers and locks record the waits
        they can themselves."""
        self._emit = events.extend
        self._threads = registry.threads
        self._thread_g = registry.thread_g
        self._stacks = stacks
        self.threshold_ns = threshold_ns
        self._native = speedups()  # its Timed wrappers record waits there, and know when a call is inside one
        if self._native is not None:
            self._native.set_wait_sink(
                threshold=threshold_ns,
                rows=rows,
                threads=registry.threads,
                thread_g=registry.thread_g,
                of_key=stacks.of_key,
            )

    def close(self) -> None:
        """The recording ends: C wrappers kept by the program stop timing."""
        if self._native is not None:
            self._native.clear_wait_sink()

    def record(self, start: int, end: int, category: int, frame: FrameType | None, waker: int = 0) -> bool:
        """Record that the calling thread waited from ``start`` to ``end`` (ns) at ``frame``.

        A wait within a timed call (``os.waitpid`` in ``Popen.wait``, a lock
        taken back in ``Condition.wait``) is left to that call, which records
        the whole wait: then it returns False.
        """
        try:
            native = self._native
            if native is not None:
                if native.in_timed_call():
                    return False
                if native.record_wait(start, end, category, frame, waker):  # in C, as the Timed wrappers do
                    return True
            key = stack_key(frame)
            if _TIMED_CODE_ID in key:  # the key holds the code id of each frame (a Python timed wrapper's)
                return False
            g = self._threads.get(get_ident())
            if g is None:
                g = self._thread_g()
            if g:
                code = BLOCK | (self._stacks.of_key(key, frame) << CATEGORY_SHIFT | category) << ARG_SHIFT
                self._emit((code, start, g, UNBLOCK | waker << ARG_SHIFT, end, g))
            return True
        except Exception:
            caught("thread_wait")
            return False

    def note_process(self, end: int, pid: int) -> None:
        """The calling thread's wait that ended at ``end`` (just recorded) was for child process ``pid``."""
        try:
            g = self._threads.get(get_ident())
            if g is None:
                g = self._thread_g()
            if g and pid > 0:
                self._emit((PROCESS_WAIT | pid << ARG_SHIFT, end, g))
        except Exception:
            caught("process_wait")


Skip = Callable[[tuple], bool]  # given a long call's arguments: whether it was no wait of the thread (loop_selector's)
WakerOf = Callable[[tuple], int]  # given a long call's arguments: the goroutine that ended the wait
Due = Callable[[tuple], int]  # given a sleep's arguments: nanoseconds it was asked to last
ChildOf = Callable[[tuple], int]  # given a long call's arguments: the pid of the child process it waited for (0 none)
Reaped = Callable[[Any], int]  # given a long call's result (None if it raised): the pid of the child it reaped (0 none)
Wakers = dict  # weakref.ref(an object a call waits on) -> the goroutine that last woke its waiters


def _weak_lookup(wakers: Wakers) -> WakerOf:
    """``wakers``' value for a call's first argument, as the C wrapper looks it up."""

    def waker(args: tuple) -> int:
        try:
            return wakers.get(weakref.ref(args[0]), 0)
        except TypeError:  # not weak-referenceable
            return 0

    return waker


def timed(
    func: Callable,
    category: Category,
    waker: WakerOf | None = None,
    due: Due | None = None,
    *,
    socket_method: bool = False,
    loop_selector: bool = False,
    wakers: Wakers | None = None,
    child: ChildOf | None = None,
    reaped: Reaped | None = None,
) -> Callable:
    """Wrap ``func`` so that calls taking at least the threshold are recorded as waits.

    A call made inside another timed call (``os.waitpid`` in ``Popen.wait``)
    is left to the outer one, which records the whole wait. ``waker`` and
    ``due`` are consulted only for calls that long: ``due``
    feeds the GIL estimate (how late a sleep came back). With
    ``socket_method``, a call on a non-blocking socket (``timeout`` 0, as an
    event loop's are) is passed through untimed: it never waits. With
    ``loop_selector`` (a selector's ``select``), a long call on the running
    event loop's own selector is not recorded: that is the loop's idle
    time, which the asyncio hooks record. ``wakers`` (instead of ``waker``)
    names the waker of a wait on the call's first argument, by a weak
    reference to it (a condition's last notifier): in C, so that such a
    wait is recorded without a Python call. ``child`` names the child
    process a long call waited for (``Popen.wait``'s): a PROCESS_WAIT
    follows its wait. ``reaped`` does the same from the call's result, for
    a wait for any child (``os.wait``): the Python wrapper then, which sees
    the result (the C one does not). The wrapper
    looks up the running recording at each call, so an object that keeps a
    wrapped method after ``stop()`` just calls through. It passes for
    ``func`` (see ``stand_in``): names, doc, repr, ``isinstance``, pickling,
    and it is bound as a method only if ``func`` is.
    """
    cat = int(category)
    simple = (
        waker is None and due is None and child is None
    )  # the C wrapper can then record the wait itself (it looks wakers up too)
    if wakers is not None and waker is None:
        waker = _weak_lookup(wakers)  # for the Python wrapper, and for the C one's Python path
    native = speedups()
    if native is not None and reaped is None:  # the same in C: a short call costs two clock reads, not a Python call

        def record(start: int, end: int, frame: FrameType | None, args: tuple) -> None:
            rec = _current.recording
            if rec is not None and rec.waits is not None:
                _record_call(rec, start, end, cat, frame, args, None, waker, due, child)  # loop_selector: checked in C

        # a lock or condition wait is entered holding a lock: a sample taken there would hold it longer
        samples = category != Category.SYNC
        return native.Timed(
            func, record, time.perf_counter_ns, socket_method, cat if simple else -1, samples, loop_selector, wakers
        )
    skip = running_loop_selector if loop_selector else None
    return _python_timed(func, cat, skip, waker, due, socket_method, child, reaped)


def _python_timed(
    func: Callable,
    cat: int,
    skip: Skip | None,
    waker: WakerOf | None,
    due: Due | None,
    socket_method: bool,
    child: ChildOf | None = None,
    reaped: Reaped | None = None,
) -> Callable:
    """``timed`` in Python: where the C extension is not built or is switched off.

    A Python function's wrapper is a function with its names (``functools.wraps``);
    a builtin's or a method descriptor's, a stand-in that passes for it as the C ``Timed`` does.
    """
    wrapper = _timed_call(func, cat, skip, waker, due, socket_method, child, reaped)
    if type(func) is FunctionType:
        return functools.wraps(func)(wrapper)
    return stand_in(func, wrapper)


def _timed_call(
    func: Callable,
    cat: int,
    skip: Skip | None,
    waker: WakerOf | None,
    due: Due | None,
    socket_method: bool,
    child: ChildOf | None = None,
    reaped: Reaped | None = None,
) -> Callable:
    """The function that calls ``func`` and records the call if it was long (``_python_timed``'s)."""
    clock = time.perf_counter_ns
    getframe = sys._getframe

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if socket_method and args[0].timeout == 0.0:
            return func(*args, **kwargs)
        start = clock()
        result = None
        try:
            result = func(*args, **kwargs)
            return result
        finally:
            end = clock()
            rec = _current.recording
            if rec is not None and rec.waits is not None and end - start >= rec.waits.threshold_ns:
                _record_call(rec, start, end, cat, getframe(1), args, skip, waker, due, child, reaped, result)

    return wrapper


_TIMED_CODE_ID = id(_timed_call(len, 0, None, None, None, False).__code__)  # the code every Python wrapper shares


def running_loop_selector(args: tuple) -> bool:
    """The selector (``args[0]``) is the running event loop's own: its waits are loop idle time."""
    events = sys.modules.get("asyncio.events")  # not imported: no loop runs
    loop = events._get_running_loop() if events is not None else None
    return loop is not None and getattr(loop, "_selector", None) is args[0]


def _record_call(
    rec: _current.Recording,
    start: int,
    end: int,
    cat: int,
    frame: FrameType | None,
    args: tuple,
    skip: Skip | None,
    waker: WakerOf | None,
    due: Due | None,
    child: ChildOf | None = None,
    reaped: Reaped | None = None,
    result: Any = None,
) -> None:
    try:
        if skip is not None and skip(args):
            return
        waits = rec.waits
        if waits is None or not waits.record(start, end, cat, frame, waker(args) if waker is not None else 0):
            return
        if due is not None:
            rec.gil.observe(rec.registry.thread_g(), start + due(args), end)
        if child is not None:
            waits.note_process(end, child(args))
        if reaped is not None:
            waits.note_process(end, reaped(result))
    except Exception:
        caught("thread_wait")
