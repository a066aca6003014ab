"""User annotations, like Go's ``runtime/trace``: tasks, regions and logs.

Each checks one module global first, so it costs next to nothing while
tracing is off.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import itertools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..format.events import ARG_SHIFT, Kind
from . import current as _current
from .hook_errors import caught
from .native import speedups

F = TypeVar("F", bound=Callable[..., Any])

_user_task: contextvars.ContextVar[int] = contextvars.ContextVar("exectracer_user_task", default=0)
_next_task_id = itertools.count(1).__next__
# event kinds as plain ints: an IntEnum member costs a lookup at each use
_USER_TASK_NAME = int(Kind.USER_TASK_NAME)
_USER_TASK_PARENT = int(Kind.USER_TASK_PARENT)
_USER_TASK_BEGIN = int(Kind.USER_TASK_BEGIN)
_USER_TASK_END = int(Kind.USER_TASK_END)
_REGION_BEGIN = int(Kind.REGION_BEGIN)
_REGION_TASK = int(Kind.REGION_TASK)
_REGION_END = int(Kind.REGION_END)
_LOG_CATEGORY = int(Kind.LOG_CATEGORY)
_LOG_MESSAGE = int(Kind.LOG_MESSAGE)
_LOG_TASK = int(Kind.LOG_TASK)


class task:
    """A logical operation that may span tasks and threads (Go's ``trace.NewTask``).

    Use as ``with exectracer.task("checkout"):`` or call ``end()`` yourself.
    The task becomes the current one in this context (``contextvars``), so
    tasks created inside it, and tasks nested in it, name it as their parent.
    """

    __slots__ = ("_ended", "_token", "id", "name", "parent_id")

    def __init__(self, name: str) -> None:
        self.name = name
        self.parent_id = _user_task.get()
        self._ended = False
        self._token: contextvars.Token | None = None
        rec = _current.recording
        if rec is None:
            self.id = 0
            return
        self.id = _next_task_id()
        ts = time.perf_counter_ns()
        g = rec.registry.current_g()
        sid = rec.interner.string(str(name))
        rec.events.extend(
            (
                _USER_TASK_NAME | sid << ARG_SHIFT,
                ts,
                self.id,
                _USER_TASK_PARENT | self.parent_id << ARG_SHIFT,
                ts,
                self.id,
                _USER_TASK_BEGIN | self.id << ARG_SHIFT,
                ts,
                g,
            )
        )
        self._token = _user_task.set(self.id)

    def end(self) -> None:
        """Mark the task finished (once; later calls do nothing)."""
        if self._ended:
            return
        self._ended = True
        if self._token is not None:
            try:
                _user_task.reset(self._token)
            except ValueError:  # ended from another context
                pass
        rec = _current.recording
        if rec is not None and self.id:
            rec.events.extend((_USER_TASK_END | self.id << ARG_SHIFT, time.perf_counter_ns(), rec.registry.current_g()))

    def __enter__(self) -> task:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()


class _PythonRegion:
    """``region``'s entering and leaving where the C hooks are not in use."""

    __slots__ = ("_g", "_sid", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._g = 0
        self._sid = 0

    def __enter__(self) -> region:
        rec = _current.recording
        if rec is not None:
            try:
                ts = time.perf_counter_ns()
                g = rec.registry.current_g()
                sid = rec.interner.string(str(self.name))
            except Exception:  # a name that cannot be made text: the region is left out
                caught("region")
                return self  # type: ignore[return-value]
            out = [_REGION_BEGIN | sid << ARG_SHIFT, ts, g]
            parent = _user_task.get()
            if parent:
                out += (_REGION_TASK | parent << ARG_SHIFT, ts, g)
            rec.events.extend(out)
            self._g, self._sid = g, sid
        return self  # type: ignore[return-value]

    def __exit__(self, *exc: object) -> None:
        rec = _current.recording
        if rec is not None and self._g:
            rec.events.extend((_REGION_END | self._sid << ARG_SHIFT, time.perf_counter_ns(), self._g))
        self._g = 0


_native = speedups()
# with the C hooks, regions store their events in C too (Recorder tells it where: ``annotation_sink``)
_RegionBase: Any = _native.Region if _native is not None else _PythonRegion


class region(_RegionBase):
    """A timed span within one thread or asyncio task (Go's ``trace.WithRegion``).

    A context manager (``with``/``async with``) and a decorator for sync and async functions.
    """

    __slots__ = ()

    async def __aenter__(self) -> region:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()

    def __call__(self, func: F) -> F:
        name = self.name
        return run_within(func, lambda: region(name))


def annotation_sink(recorder: _current.Recording | None) -> None:
    """Point the C regions at ``recorder``'s events (None: at nothing); nothing to do without the C hooks."""
    if _native is None:
        return
    if recorder is None or recorder.rows is None:
        _native.clear_annotation_sink()
        return
    registry = recorder.registry
    _native.set_annotation_sink(
        rows=recorder.rows,
        threads=registry.threads,
        thread_g=registry.thread_g,
        strings=recorder.interner.strings,
        intern=recorder.interner.string,
        user_task=_user_task,
    )


def run_within(func: F, context: Callable[[], contextlib.AbstractContextManager]) -> F:
    """``func`` (sync or async) made to run each call inside a new ``context()``."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with context():
                return await func(*args, **kwargs)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with context():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def log(category: str, message: str) -> None:
    """Record a message under a category, in the current goroutine and user task."""
    log_in_task(_user_task.get(), category, message)


def log_in_task(task_id: int, category: str, message: str) -> None:
    """``log``, in the user task ``task_id`` (0: none) rather than the current one: for integrations that end a
    task from another context than the one it began in (an OpenTelemetry span ended elsewhere)."""
    rec = _current.recording
    if rec is None:
        return
    ts = time.perf_counter_ns()
    g = rec.registry.current_g()
    intern = rec.interner.string
    out = [
        _LOG_CATEGORY | intern(str(category)) << ARG_SHIFT,
        ts,
        g,
        _LOG_MESSAGE | intern(str(message)) << ARG_SHIFT,
        ts,
        g,
    ]
    if task_id:
        out += (_LOG_TASK | task_id << ARG_SHIFT, ts, g)
    rec.events.extend(out)
