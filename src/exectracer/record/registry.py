"""Ids for what events are about: goroutines (threads and tasks) and event loops.

Assigning an id also emits the events that describe the newcomer, so the
trace defines every goroutine before (or at the same time as) it is used.
"""

from __future__ import annotations

import itertools
import threading
import time
from types import CoroutineType, FunctionType, GeneratorType
from typing import Any

from ..format.events import ARG_SHIFT, MASK64, WAKER_MASK, WAKER_SHIFT, Kind, Waker, pack
from ..tracer_thread import is_tracer_thread
from .interner import Interner
from .store import EventStore
from .wrappers import wrapped

_DEFAULT_TASK_NAME = "Task-"
_DEFAULT_PREFIX_LEN = len(_DEFAULT_TASK_NAME)
_TASK_CREATE, _TASK_LOOP, _TASK_NAME = int(Kind.TASK_CREATE), int(Kind.TASK_LOOP), int(Kind.TASK_NAME)
_TASK_WAKER = int(Waker.TASK)


class HookState(threading.local):
    """What the calling thread is doing, as the hooks need it.

    ``cur``: the waker code of the task step or callback it runs (0: none);
    ``io``: ids of the handles its loop's last select made ready;
    ``creating``: (coroutine, parent goroutine, time) while create_task runs;
    ``last_work``: the id of the last thread pool work item it submitted.
    """

    cur = 0
    last_work = 0
    io: frozenset | set = frozenset()
    creating: tuple | None = None


class Registry:
    """Goroutine and loop ids, shared by every hook of one recording."""

    def __init__(
        self,
        events: EventStore,
        interner: Interner,
        own_threads: set[int],
        tasks: Any = None,
        local: HookState | None = None,
    ) -> None:
        """``tasks`` and ``local``: the task id map and hook state the C hooks share
        (by default a dict and a HookState)."""
        self._emit = events.extend
        self._interner = interner
        self._own = own_threads
        self.new_g = itertools.count(1).__next__  # a fresh goroutine id
        self._next_loop = itertools.count(1).__next__
        self.threads: dict[int, int] = {}  # threading ident -> g (0: a TracerThread)
        self.tasks: dict[int, int] = {} if tasks is None else tasks  # id(task) -> g
        self.loops: dict[int, int] = {}  # id(loop) -> loop id
        self._loop_refs: dict[int, Any] = {}  # keeps id(loop) unique while known
        self.task_funcs: dict[
            int, int
        ] = {}  # id(code) of a coroutine -> its TASK_FUNC code (the interner keeps the code)
        self.local = HookState() if local is None else local

    # -- threads -------------------------------------------------------------

    def thread_g(self) -> int:
        """The goroutine id of the calling thread (0 for the tracer's own threads)."""
        ident = threading.get_ident()
        g = self.threads.get(ident)
        if g is None:
            # not threading.current_thread(): for a thread threading does not
            # know, that would register a dummy Thread the program could see
            thread = threading._active.get(ident)  # type: ignore[attr-defined]
            g = self.adopt_thread(thread, ident)
        return g

    def adopt_thread(self, thread: threading.Thread | None, ident: int, g: int | None = None) -> int:
        """Register a running thread and emit its start (``g``: an id given when it was created).

        ``thread`` is None for a thread that ``threading`` does not know.
        """
        if ident in self._own:
            return 0
        if is_tracer_thread(ident):
            self.threads[ident] = 0  # remembered: one of ours (a debug server's request thread) calling hooks
            return 0
        if g is None:
            g = self.new_g()
        self.threads[ident] = g
        ts = time.perf_counter_ns()
        native = (
            threading.get_native_id() if ident == threading.get_ident() else getattr(thread, "native_id", None) or 0
        )
        self._emit((pack(Kind.THREAD_START, native), ts, g, pack(Kind.THREAD_IDENT, ident), ts, g))
        self.thread_name(g, thread.name if thread is not None else f"thread-{ident}", ts)
        if thread is None:
            return g
        target = getattr(thread, "_target", None)
        code = getattr(target, "__code__", None) or getattr(getattr(target, "__func__", None), "__code__", None)
        if code is None and type(thread).run is not threading.Thread.run:
            code = type(thread).run.__code__
        if code is not None:
            module = getattr(target, "__module__", None) or type(thread).__module__
            qualname = getattr(target, "__qualname__", None) if target is not None else type(thread).run.__qualname__
            frame = self._interner.frame(code, code.co_firstlineno, module, qualname)
            self._emit((pack(Kind.THREAD_FUNC, self._interner.stack((frame,))), ts, g))
        return g

    def thread_name(self, g: int, name: str, ts: int | None = None) -> None:
        """Record a thread's (new) name."""
        self._emit((pack(Kind.THREAD_NAME, self._interner.string(str(name))), ts or time.perf_counter_ns(), g))

    # -- loops ---------------------------------------------------------------

    def loop_id(self, loop: Any) -> int:
        """The id of an event loop (or a trio run), registering it (as started now, if it runs) if new."""
        lid = self.loops.get(id(loop))
        if lid is None:
            lid = self._next_loop()
            self.loops[id(loop)] = lid
            self._loop_refs[id(loop)] = loop
            ts = time.perf_counter_ns()
            name = self._interner.string(f"{type(loop).__module__}.{type(loop).__qualname__}")
            self._emit((pack(Kind.LOOP_CLASS, name), ts, lid))
            is_running = getattr(loop, "is_running", None)  # an asyncio loop's; a trio run's hooks emit their own
            if is_running is not None and is_running():
                self._emit((pack(Kind.LOOP_START, self.thread_g()), ts, lid))
        return lid

    def known_loops(self) -> list[Any]:
        """The event loops seen so far and not closed."""
        return list(self._loop_refs.values())

    def forget_loop(self, loop: Any) -> None:
        """Drop a closed loop so its id can't be confused with a later object's."""
        self.loops.pop(id(loop), None)
        self._loop_refs.pop(id(loop), None)

    # -- tasks ---------------------------------------------------------------

    def current_g(self) -> int:
        """The goroutine the caller runs in: the running task's if any, else the thread's."""
        cur = self.local.cur
        if cur & WAKER_MASK == _TASK_WAKER:
            return cur >> WAKER_SHIFT
        return self.thread_g()

    def task_g(self, task: Any, parent: int = 0, ts: int | None = None, coro: Any = None) -> int:
        """The goroutine id of ``task``, registering it (with its description) if new."""
        g = self.tasks.get(id(task))
        if g is None:
            creating = self.local.creating
            if creating is not None and not parent and not task.done() and _coro_of(task) is creating[0]:
                coro, parent, ts = creating  # seen from inside create_task, before it returned
            g = self.new_g()
            self.tasks[id(task)] = g
            self.describe_task(task, g, parent, ts or time.perf_counter_ns(), coro)
        return g

    def task_name(self, g: int, name: str) -> None:
        """Record a task's (new) name."""
        self._emit((task_name_code(self._interner, name), time.perf_counter_ns(), g))

    def describe_task(self, task: Any, g: int, parent: int, ts: int, coro: Any = None) -> None:
        """Emit TASK_CREATE and the events that describe a task (``coro``: its coroutine, if known)."""
        out = [_TASK_CREATE | parent << ARG_SHIFT, ts, g]
        loop = getattr(task, "_loop", None)
        if loop is not None:
            out += (_TASK_LOOP | (self.loops.get(id(loop)) or self.loop_id(loop)) << ARG_SHIFT, ts, g)
        if coro is None and not task.done():  # get_coro() of a finished eager task crashes 3.12.1
            coro = _coro_of(task)
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        if code is not None:
            out += (self.task_func(coro, code), ts, g)
        out += (task_name_code(self._interner, task.get_name()), ts, g)
        self._emit(out)

    def task_func(self, coro: Any, code: Any) -> int:
        """The TASK_FUNC code of a task whose coroutine (or generator) runs ``code``, defining it if new: for a
        library's wrapper (``wrappers``), that of what it runs (not kept for the wrapper's code)."""
        func = self.task_funcs.get(id(code))
        if func is None:
            inner = wrapped(coro)
            if type(inner) is CoroutineType:
                return self.task_func(inner, inner.cr_code)
            module: str | None
            qualname: str | None
            if type(inner) is FunctionType:
                code, module, qualname = inner.__code__, inner.__module__, inner.__qualname__
            else:
                module, qualname = _module_of(coro), getattr(coro, "__qualname__", None)
            func = self.task_funcs.get(id(code))
            if func is None:
                frame = self._interner.frame(code, code.co_firstlineno, module, qualname)
                func = self.task_funcs[id(code)] = pack(Kind.TASK_FUNC, self._interner.stack((frame,)))
        return func

    def forget_task(self, task: Any) -> None:
        """Drop a finished task's id mapping."""
        self.tasks.pop(id(task), None)


def _module_of(coro: Any) -> str | None:
    """The name of the module whose code a coroutine's (or generator's) function is."""
    frame = (
        getattr(coro, "cr_frame", None)
        if type(coro) is CoroutineType
        else getattr(coro, "gi_frame", None)
        if type(coro) is GeneratorType
        else None
    )
    return frame.f_globals.get("__name__") if frame is not None else None


def _coro_of(task: Any) -> Any:
    get_coro = getattr(task, "get_coro", None)
    return get_coro() if get_coro is not None else None


def task_name_code(interner: Interner, name: str) -> int:
    """The TASK_NAME code for ``name``; asyncio's default "Task-N" is stored as -N.

    The code is given as its 64 bits unsigned: the event store takes events as
    unsigned integers (see ``store.EventStore.take``), and the file holds the same bits.
    """
    if type(name) is not str:
        name = str(name)
    if name.startswith(_DEFAULT_TASK_NAME):
        suffix = name[_DEFAULT_PREFIX_LEN:]
        if suffix.isdigit() and suffix.isascii() and len(suffix) < 18 and suffix[0] != "0":
            return (_TASK_NAME | -int(suffix) << ARG_SHIFT) & MASK64
    return _TASK_NAME | interner.string(name) << ARG_SHIFT
