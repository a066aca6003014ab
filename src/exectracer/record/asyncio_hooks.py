"""Hooks into asyncio's pure-Python scheduler: steps, wake-ups, callbacks, idle time.

Patched at class level, so loops created before tracing started are covered:

* ``Handle._run``: every callback a loop runs. A task's step (its callback is
  bound to the task) is recorded as TASK_STEP and then TASK_SUSPEND (with
  the await chain and why) or TASK_DONE; anything else as CALLBACK_BEGIN/END.
* ``BaseEventLoop._call_soon``: a task's step or wake-up being scheduled is
  TASK_READY, naming what was running at that moment (the waker).
* ``BaseEventLoop.create_task``: TASK_CREATE with the creating goroutine and
  the events that describe the task, and eager first steps (3.12+).
* ``BaseEventLoop.run_forever`` / ``close``: LOOP_START / LOOP_STOP.
* ``BaseSelectorEventLoop._process_events`` and the selectors' ``select``:
  which handles I/O readiness queued, and LOOP_IDLE_BEGIN/END around blocking selects;
  a busy loop's ``select(0)`` also gives way to the tracer's threads when
  they are due, or takes the due sample itself (see ``handoff``); a
  blocking one hands the sampler's ticks back.
* ``BaseEventLoop.run_in_executor``: marks futures whose wait is a ``syscall``.

Every hook swallows its own errors: the program never sees them. Each
passes for the method it replaced (see ``stand_in``).
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.events
import asyncio.selector_events
import asyncio.tasks
import contextvars
import functools
import selectors
import time
import weakref
from asyncio import format_helpers
from collections.abc import Callable
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any, SupportsIndex

from ..format.events import (
    ARG_SHIFT,
    CALLBACK_SHIFT,
    CATEGORY_MASK,
    WAKER_MASK,
    WAKER_SHIFT,
    CallbackSource,
    Category,
    Kind,
    Outcome,
    Waker,
    pack,
    pack_waker,
)
from .await_chain import AwaitChains
from .handoff import NEVER, GilHandoff
from .hook_errors import caught
from .interner import Interner, function_name
from .native import speedups
from .patcher import Patcher
from .registry import Registry, task_name_code
from .store import EventStore

_get_running_loop = asyncio.events._get_running_loop


def _task_classes() -> tuple[type, ...]:
    return tuple({asyncio.Task, asyncio.tasks._PyTask})  # type: ignore[attr-defined]  # private: the Python Task


class _ReadyHandle(asyncio.events.Handle):
    """A Handle that remembers when it was queued (``_xt_ts``) and by whom (``_xt_waker``).

    It passes for a Handle: its ``__class__`` is ``Handle`` (so are its repr
    and ``isinstance``), ``pickle`` and ``copy`` take it as one; only
    ``type()`` tells.
    """

    _xt_ts: int
    _xt_waker: int
    __slots__ = ("_xt_ts", "_xt_waker")
    __class__ = property(lambda self: asyncio.events.Handle)

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        """A Handle's reduction, without the stamps (pickle checks the class it names is ``__class__``)."""
        reduced = object.__reduce_ex__(self, protocol)  # (an error, as a Handle's, for protocols 0 and 1)
        if not (isinstance(reduced, tuple) and len(reduced) > 2 and reduced[1][:1] == (_ReadyHandle,)):
            return reduced
        dict_state, slots = reduced[2] if isinstance(reduced[2], tuple) else (reduced[2], None)
        if slots is not None:
            slots = {name: value for name, value in slots.items() if name not in _ReadyHandle.__slots__}
        return (reduced[0], (asyncio.events.Handle, *reduced[1][1:]), (dict_state, slots), *reduced[3:])


class _QuietLoop:
    """Just what ``Handle.__init__`` and the ``_call_soon`` hook ask of a loop (not in debug mode)."""

    _debug = False

    def __init__(self) -> None:
        self._ready: list = []

    def get_debug(self) -> bool:
        return False


def _builds_handles_like_asyncio(call_soon: Callable[..., Any]) -> bool:
    """Whether ``call_soon``, filling a handle's fields itself, makes the same handle as ``Handle.__init__``
    on this Python.

    Checked once, field by field, when the hooks are installed: on a Python
    whose ``Handle`` changed, the hook goes back to calling ``Handle.__init__``.
    """
    try:
        loop: Any = _QuietLoop()
        context = contextvars.copy_context()
        ours, theirs = call_soon(loop, print, (1,), context), _ReadyHandle(print, (1,), loop, context)
        names = {name for cls in asyncio.events.Handle.__mro__ for name in getattr(cls, "__slots__", ())} - {
            "__weakref__",
            "__dict__",
        }
        return bool(names) and all(getattr(ours, name) is getattr(theirs, name) for name in names)
    except Exception:
        return False


class CallbackNames:
    """String ids for the functions behind loop callbacks, cached per function."""

    def __init__(self, interner: Interner) -> None:
        self._interner = interner
        self.cache: dict[Any, int] = {}  # keyed by a method's function, a function's code, or (type, name)

    def name_id(self, cb: Any) -> int:
        """The string id of ``module.qualname`` of a callback."""
        kind = type(cb)
        if kind is MethodType:
            key = cb.__func__
        elif kind is FunctionType:
            key = cb.__code__
        elif kind is functools.partial:
            return self.name_id(cb.func)
        else:
            key = (kind, getattr(cb, "__qualname__", None) or getattr(cb, "__name__", None) or kind.__qualname__)
        sid = self.cache.get(key)
        if sid is None:
            sid = self.cache[key] = self._interner.string(self._describe(cb))
        return sid

    @staticmethod
    def _describe(cb: Any) -> str:
        func = getattr(cb, "__func__", cb)
        code = getattr(func, "__code__", None)
        if code is not None:
            return function_name(code, getattr(func, "__module__", None), getattr(func, "__qualname__", None))
        if (
            isinstance(cb, BuiltinFunctionType)
            and cb.__self__ is not None
            and not isinstance(cb.__self__, type(asyncio))
        ):
            owner = type(cb.__self__)
            return f"{owner.__module__}.{owner.__qualname__}.{cb.__name__}"
        name = getattr(cb, "__qualname__", None) or getattr(cb, "__name__", None) or type(cb).__qualname__
        module = getattr(cb, "__module__", None)
        return f"{module}.{name}" if module else name


def install(
    patcher: Patcher,
    events: EventStore,
    registry: Registry,
    interner: Interner,
    warn: Callable[[str], None],
    handoff: GilHandoff,
    rows: Any = None,
    unseen: Callable[[str], None] = lambda note: None,
) -> Shared:
    """Patch asyncio for one recording; ``patcher.restore()`` undoes it all.

    With ``rows`` (a ``_speedups.Rows`` the writer drains), ``Handle._run``,
    ``call_soon``, ``create_task`` and ``_process_events`` are hooked by the
    C versions of the hooks below, which store their events there; without,
    by the Python ones.

    ``unseen`` is told, once each, what the recorder cannot see (a loop no
    hook sees). Returns what the hooks share (other loops' hooks use it too);
    call its ``before_stop`` just before stopping: it records the tasks that
    are ready but have not run yet.
    """
    hooks = Shared(events, registry, interner, rows, unseen)
    _hook_steps(patcher, hooks)
    _hook_call_soon(patcher, hooks)
    _hook_create_task(patcher, hooks, interner)
    _hook_loop_lifecycle(patcher, hooks, warn)
    _hook_io(patcher, hooks, handoff)
    _hook_executor(patcher, hooks)
    return hooks


class Shared:
    """What the asyncio hooks of one recording share: where events go, the ids, the await chains."""

    def __init__(
        self, events: EventStore, registry: Registry, interner: Interner, rows: Any, unseen: Callable[[str], None]
    ) -> None:
        self.unseen = unseen
        self.hooked_loops: tuple[type, ...] = (asyncio.base_events.BaseEventLoop,)  # loops whose tasks are seen
        # warns if the loop running in the calling thread is one no hook sees (set once the hooks are in)
        self.check_running_loop: Callable[[], None] = lambda: None
        self.interner = interner
        self.emit = events.extend
        self.clock = time.perf_counter_ns
        self.registry = registry
        self.local = registry.local
        self.tasks = registry.tasks
        self.loops = registry.loops
        self.chains = AwaitChains(interner)
        self.names = CallbackNames(interner)
        self.executor_futures: weakref.WeakSet[Any] = weakref.WeakSet()  # run_in_executor's: their waits are syscalls
        self.wrapper_type = _step_wrapper_type()  # the C task schedules its steps through it
        self.step_callback_types: set[type] = {
            BuiltinFunctionType,
            MethodType,
        }  # the callbacks that may be a task's step
        if self.wrapper_type is not None:
            self.step_callback_types.add(self.wrapper_type)
        self.rows = rows
        self.native = speedups() if rows is not None else None  # the C hooks, where they store into rows

    def end_code(self, task: Any) -> int:
        """The event code for a step that left ``task`` done, or runnable after a bare yield."""
        if task.done():
            self.tasks.pop(id(task), None)
            if task.cancelled():
                return _DONE_CANCELLED
            # ``_exception``, not ``exception()``: that would mark it retrieved
            return _DONE_RETURNED if task._exception is None else _DONE_RAISED
        return self.chains.code_for(task._coro, None)

    def thread_waker(self) -> int:
        """The waker code of the calling thread, when no task step or callback runs in it."""
        try:
            return pack_waker(Waker.THREAD, self.registry.thread_g())
        except Exception:
            caught("asyncio.call_soon")
            return 0

    def before_stop(self) -> None:
        """Record the tasks queued to run that have not run yet."""
        _record_still_ready(self)


_STEP = int(Kind.TASK_STEP)
_READY = int(Kind.TASK_READY)
_DONE_CANCELLED, _DONE_RETURNED, _DONE_RAISED = (
    pack(Kind.TASK_DONE, o) for o in (Outcome.CANCELLED, Outcome.RETURNED, Outcome.RAISED)
)
_CALLBACK_BEGIN, _CALLBACK_END = int(Kind.CALLBACK_BEGIN), int(Kind.CALLBACK_END)
_IDLE_BEGIN, _IDLE_END = int(Kind.LOOP_IDLE_BEGIN), int(Kind.LOOP_IDLE_END)
_TASK_WAKER = int(Waker.TASK)
_CATEGORY_BITS = CATEGORY_MASK << ARG_SHIFT  # a TASK_SUSPEND code's category
_SYSCALL_BITS = int(Category.SYSCALL) << ARG_SHIFT


def _hook_steps(patcher: Patcher, hooks: Shared) -> None:
    """``Handle._run``: a task's step as [TASK_READY,] TASK_STEP then its suspension or end;
    other callbacks as CALLBACK_BEGIN/END."""
    patcher.replace(asyncio.events.Handle, "_run", step_runner(hooks, asyncio.events.TimerHandle))


def step_runner(
    hooks: Shared, timer_handle: type, queued: type | None = None, native: bool = True
) -> Callable[[Any], None]:
    """What runs a handle and records it (the C ``StepRunner`` unless ``native`` is false, else ``handle_run``);
    a handle of type ``timer_handle`` is a timer's callback.

    With ``queued``, it runs the calls a loop that keeps its own queue calls (uvloop's): a ``queued`` object (or a
    ``timer_handle``) stamped as a ``_ReadyHandle`` is, run inside the context the loop entered, an exception of
    the callback raised to the loop (which reports it) once the run is recorded. The C runner made so (with
    ``context_entered``) runs the C ``UvCall``; ``handle_run`` is its Python twin."""
    emit, clock, local, tasks, loops = hooks.emit, hooks.clock, hooks.local, hooks.tasks, hooks.loops
    task_g, loop_id = hooks.registry.task_g, hooks.registry.loop_id
    step_callback_types, end_code, executor_futures = hooks.step_callback_types, hooks.end_code, hooks.executor_futures
    code_for, names = hooks.chains.code_for, hooks.names
    name_cache = names.cache
    task_classes = _task_classes()
    is_task_type: dict[type, bool] = {}
    ready_handle: type[Any] = _ReadyHandle if queued is None else queued
    orig_run = asyncio.events.Handle._run
    loop_reports = queued is not None  # the loop runs us in the callback's context and reports its exception

    def handle_run(handle: Any) -> None:
        """Replaces ``Handle._run``: runs the callback as asyncio does, and records it."""
        cb = handle._callback
        if type(cb) in step_callback_types:
            task = cb.__self__
            known = is_task_type.get(type(task))
            if known is None:
                known = is_task_type[type(task)] = isinstance(task, task_classes)
            if known:
                g = tasks.get(id(task)) or task_g(task)
                prev = local.cur
                local.cur = _TASK_WAKER | g << WAKER_SHIFT
                start = clock()
                error = None
                try:
                    if loop_reports:
                        cb(*handle._args)
                    else:
                        handle._context.run(cb, *handle._args)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    if loop_reports:
                        error = exc
                    else:
                        report_callback_error(handle, exc)
                finally:
                    local.cur = prev
                try:  # one append per step: ready (if known), step start, step end
                    waiter = task._fut_waiter
                    if waiter is None:
                        code = end_code(task)
                    else:  # suspended
                        code = code_for(task._coro, waiter)
                        if not code & _CATEGORY_BITS and waiter in executor_futures:
                            code |= _SYSCALL_BITS
                    if type(handle) is ready_handle:
                        emit(
                            (
                                _READY | handle._xt_waker << ARG_SHIFT,
                                handle._xt_ts,
                                g,
                                _STEP,
                                start,
                                g,
                                code,
                                clock(),
                                g,
                            )
                        )
                    else:
                        emit((_STEP, start, g, code, clock(), g))
                except Exception:
                    caught("asyncio.step")
                if error is not None:
                    raise error
                return
        run_callback(handle, cb)

    def run_callback(handle: Any, cb: Any) -> None:
        """Runs a callback that is not a task's step, as asyncio does, recorded as CALLBACK_BEGIN/END."""
        try:
            loop = handle._loop
            lid = loops.get(id(loop)) or loop_id(loop)
            kind = type(cb)
            sid = name_cache.get(cb.__func__ if kind is MethodType else cb.__code__ if kind is FunctionType else None)
            if sid is None:
                sid = names.name_id(cb)
            waker = sid << WAKER_SHIFT
            if type(handle) is timer_handle:
                source, waker = _SOURCE_TIMER, waker | _WAKER_TIMER
            elif not loop_reports and id(handle) in local.io:
                source, waker = _SOURCE_IO, waker | _WAKER_IO
            else:  # it wakes on behalf of what queued it, if known (a thread, a task, an I/O or timer callback)
                source = _SOURCE_SOON
                waker = (handle._xt_waker if type(handle) is ready_handle else 0) or waker | _WAKER_CALLBACK
        except Exception:
            caught("asyncio.callback")
            if loop_reports:
                cb(*handle._args)
            else:
                orig_run(handle)
            return
        prev = local.cur
        local.cur = waker
        emit((_CALLBACK_BEGIN | (sid << CALLBACK_SHIFT | source) << ARG_SHIFT, clock(), lid))
        error = None
        try:
            if loop_reports:
                cb(*handle._args)
            else:
                handle._context.run(cb, *handle._args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if loop_reports:
                error = exc
            else:
                report_callback_error(handle, exc)
        finally:
            local.cur = prev
            emit((_CALLBACK_END, clock(), lid))
        if error is not None:
            raise error

    run: Any = handle_run
    if hooks.native is not None and native:
        chains = hooks.chains
        run = hooks.native.StepRunner(
            fallback=handle_run,
            run_callback=run_callback,
            step_types=step_callback_types,
            task_classes=task_classes,
            is_task_type=is_task_type,
            tasks=tasks,
            task_g=task_g,
            local=local,
            rows=hooks.rows,
            one_await=chains.one_await,
            chain_cache=chains.cache,
            define_chain=chains.define,
            executor_futures=executor_futures,
            ready_type=_ReadyHandle,  # what the C runner reads of a handle (a queued call it gets as such)
            report_error=report_callback_error,
            clock=clock,
            code_for=code_for,
            task_type=asyncio.Task,
            step_wrapper_type=hooks.wrapper_type,
            loops=loops,
            loop_id=loop_id,
            name_cache=name_cache,
            name_id=names.name_id,
            timer_type=timer_handle,
            looked_at=chains.looked_at,
            context_entered=loop_reports,
        )
    return run


_SOURCE_TIMER, _SOURCE_IO, _SOURCE_SOON = int(CallbackSource.TIMER), int(CallbackSource.IO), int(CallbackSource.SOON)
_WAKER_TIMER, _WAKER_IO, _WAKER_CALLBACK = int(Waker.TIMER), int(Waker.IO), int(Waker.CALLBACK)


# the slots the C ReadySoon fills, in its order
READY_SLOTS = (
    "_context",
    "_loop",
    "_callback",
    "_args",
    "_cancelled",
    "_repr",
    "_source_traceback",
    "_xt_ts",
    "_xt_waker",
)


def _hook_call_soon(patcher: Patcher, hooks: Shared) -> None:
    """``BaseEventLoop._call_soon``: each handle remembers when it was queued and by whom (for TASK_READY)."""
    clock, local, thread_waker = hooks.clock, hooks.local, hooks.thread_waker
    ready_handle = _ReadyHandle
    new_handle = object.__new__
    fill_directly = True  # until the check below says otherwise

    def call_soon(loop: Any, callback: Any, args: Any, context: Any) -> Any:
        """Replaces ``BaseEventLoop._call_soon``: queues the handle as asyncio does, stamped."""
        handle: Any
        # Handle.__init__'s work without its call (a loop's get_debug() returns its _debug)
        if fill_directly and context is not None and not loop._debug:
            handle = new_handle(ready_handle)
            handle._context = context
            handle._loop = loop
            handle._callback = callback
            handle._args = args
            handle._cancelled = False
            handle._repr = None
            handle._source_traceback = None
        else:
            handle = ready_handle(callback, args, loop, context)
            if handle._source_traceback:
                del handle._source_traceback[-1]
        handle._xt_ts = clock()
        handle._xt_waker = local.cur or thread_waker()
        loop._ready.append(handle)
        return handle

    fill_directly = _builds_handles_like_asyncio(call_soon)
    soon: Any = call_soon
    if hooks.native is not None:
        soon = native_ready_soon(hooks.native, call_soon, ready_handle, thread_waker, clock)
        soon.fill_directly = fill_directly and _builds_handles_like_asyncio(soon)
    patcher.replace(asyncio.base_events.BaseEventLoop, "_call_soon", soon)


def native_ready_soon(
    native: Any, fallback: Callable[..., Any], ready_type: type, thread_waker: Callable[[], int], clock: Any
) -> Any:
    """The C twin of ``fallback``, which queues a ``ready_type`` handle stamped with when and by whom it was queued
    (asyncio's ``_call_soon``; uvloop's ``call_soon`` and timers): ``fallback`` runs where C cannot."""
    return native.ReadySoon(
        fallback=fallback,
        ready_type=ready_type,
        slots=tuple(getattr(ready_type, name) for name in READY_SLOTS),
        thread_waker=thread_waker,
        clock=clock,
    )


def _hook_create_task(patcher: Patcher, hooks: Shared, interner: Interner) -> None:
    """``create_task``: TASK_CREATE with its creator and the task's description, and eager first steps (3.12+)."""
    base = asyncio.base_events.BaseEventLoop
    patcher.replace(base, "create_task", task_creator(hooks, interner, base.create_task))
    _hook_set_task_name(patcher, hooks)


def task_creator(hooks: Shared, interner: Interner, orig_create_task: Callable[..., Any]) -> Callable[..., Any]:
    """A loop's ``create_task`` (``orig_create_task``) recording the task it makes (C ``TaskCreator``, else Python)."""
    emit, clock, local, tasks, registry, chains, end_code = (
        hooks.emit,
        hooks.clock,
        hooks.local,
        hooks.tasks,
        hooks.registry,
        hooks.chains,
        hooks.end_code,
    )
    task_g = registry.task_g

    def create_task(loop: Any, coro: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            ts = clock()
            parent = registry.current_g()
            prev_creating = local.creating
            local.creating = (coro, parent, ts)
        except Exception:
            caught("asyncio.create_task")
            return orig_create_task(loop, coro, *args, **kwargs)
        try:
            task: Any = orig_create_task(loop, coro, *args, **kwargs)
        finally:
            local.creating = prev_creating
        try:
            g = tasks.get(id(task)) or task_g(task, parent, ts, coro)
            if task.done() or task._fut_waiter is not None:
                eager_step(task, coro, g, ts)
        except Exception:
            caught("asyncio.create_task")
        return task

    def eager_step(task: Any, coro: Any, g: int, ts: int) -> None:
        """Record the first step of a task that ran inside ``create_task`` (an eager task)."""
        code = end_code(task) if task._fut_waiter is None else chains.code_for(coro, task._fut_waiter)
        emit((Kind.TASK_EAGER, ts, g, _STEP, ts, g, code, clock(), g))

    create: Any = create_task
    if hooks.native is not None:
        create = hooks.native.TaskCreator(
            fallback=create_task,
            create_task=orig_create_task,
            tasks=tasks,
            local=local,
            threads=registry.threads,
            thread_g=registry.thread_g,
            new_g=registry.new_g,
            loops=hooks.loops,
            loop_id=registry.loop_id,
            task_funcs=registry.task_funcs,
            task_func=registry.task_func,
            name_code=functools.partial(task_name_code, interner),
            eager_step=eager_step,
            rows=hooks.rows,
            clock=clock,
        )
    return create


def _hook_set_task_name(patcher: Patcher, hooks: Shared) -> None:
    """Before 3.12, ``create_task(name=...)`` names the task after making it: TASK_NAME."""
    tasks, registry = hooks.tasks, hooks.registry
    orig_set_task_name = getattr(asyncio.tasks, "_set_task_name", None)
    if orig_set_task_name is not None:

        def set_task_name(task: Any, name: Any) -> None:
            orig_set_task_name(task, name)
            try:
                g = tasks.get(id(task))
                if g and name is not None:
                    registry.task_name(g, task.get_name())
            except Exception:
                caught("asyncio.task_name")

        patcher.replace(asyncio.tasks, "_set_task_name", set_task_name)


def _hook_loop_lifecycle(patcher: Patcher, hooks: Shared, warn: Callable[[str], None]) -> None:
    """``run_forever`` and ``close``: LOOP_START/LOOP_STOP; a warning for loops these hooks cannot see."""
    base = asyncio.base_events.BaseEventLoop
    hook_lifecycle(patcher, hooks, base)
    _hook_loop_check(patcher, hooks, warn)


def hook_lifecycle(patcher: Patcher, hooks: Shared, cls: type) -> Callable[[Any], None]:
    """``cls.run_forever`` and ``cls.close``: LOOP_START/LOOP_STOP, and the loop's id forgotten once closed.

    Returns the new ``run_forever``: its frame is below every callback the loop runs.
    """
    emit, clock, registry = hooks.emit, hooks.clock, hooks.registry
    orig_run_forever, orig_close = cls.run_forever, cls.close  # type: ignore[attr-defined]

    def run_forever(loop: Any) -> None:
        try:
            lid = registry.loop_id(loop)
            emit((pack(Kind.LOOP_START, registry.thread_g()), clock(), lid))
        except Exception:
            caught("asyncio.loop_start")
            lid = 0
        try:
            orig_run_forever(loop)
        finally:
            if lid:
                emit((Kind.LOOP_STOP, clock(), lid))

    def close(loop: Any) -> None:
        orig_close(loop)
        registry.forget_loop(loop)

    patcher.replace(cls, "run_forever", run_forever)
    patcher.replace(cls, "close", close)
    return run_forever


def _hook_loop_check(patcher: Patcher, hooks: Shared, warn: Callable[[str], None]) -> None:
    """A warning, and a note in the trace, for each class of loop these hooks cannot see."""
    warned: set[type] = set()

    def check_loop(loop: Any) -> None:
        """Warn once per loop class that no hook sees (not asyncio's, not uvloop's once its hooks are in)."""
        kind = type(loop)
        if loop is not None and kind not in warned and not isinstance(loop, hooks.hooked_loops):
            warned.add(kind)
            warn(
                f"event loops of type {kind.__module__}.{kind.__qualname__} cannot be hooked; "
                "their tasks and callbacks are not traced (threads, GC and annotations still are)"
            )
            hooks.unseen(
                f"{kind.__module__}.{kind.__qualname__} event loops: their tasks, callbacks and idle time "
                "(the loop's thread shows as running while it runs them)"
            )

    orig_set_event_loop = asyncio.events.set_event_loop

    def set_event_loop(loop: Any) -> None:
        orig_set_event_loop(loop)
        check_loop(loop)

    patcher.replace(asyncio.events, "set_event_loop", set_event_loop)
    patcher.replace(asyncio, "set_event_loop", set_event_loop)
    runner = getattr(asyncio, "Runner", None)
    if runner is not None and hasattr(runner, "_lazy_init"):
        orig_lazy_init = runner._lazy_init

        def lazy_init(self: Any) -> None:
            orig_lazy_init(self)
            check_loop(self._loop)

        patcher.replace(runner, "_lazy_init", lazy_init)
    hooks.check_running_loop = lambda: check_loop(_get_running_loop())


def _hook_io(patcher: Patcher, hooks: Shared, handoff: GilHandoff) -> None:
    """Which handles a select made ready (``_process_events``), and the loop's idle time in the selectors' ``select``.

    A busy loop's ``select(0)`` also gives way to the tracer's threads when
    they are due (see ``handoff``); a blocking one hands the sampler's
    ticks back.
    """
    emit, clock, local, loops, loop_id = hooks.emit, hooks.clock, hooks.local, hooks.loops, hooks.registry.loop_id
    orig_process_events = asyncio.selector_events.BaseSelectorEventLoop._process_events  # type: ignore[attr-defined]

    def process_events(loop: Any, event_list: Any) -> None:
        if event_list:
            try:
                io = set()
                for key, _mask in event_list:
                    data = key.data
                    if type(data) is tuple:
                        for handle in data:
                            if handle is not None:
                                io.add(id(handle))
                local.io = io
            except Exception:
                caught("asyncio.process_events")
        orig_process_events(loop, event_list)

    process: Any = process_events
    if hooks.native is not None:
        process = hooks.native.IoReady(fallback=process_events, process_events=orig_process_events, local=local)
    patcher.replace(asyncio.selector_events.BaseSelectorEventLoop, "_process_events", process)

    def wrap_select(orig_select: Callable[..., Any]) -> Callable[..., Any]:
        def select(selector: Any, timeout: float | None = None) -> Any:
            if timeout is not None and timeout <= 0:
                if clock() >= handoff.due:
                    try:
                        handoff.give_way()
                    except Exception:
                        caught("asyncio.select")
                return orig_select(selector, timeout)
            loop = _get_running_loop()
            if loop is None or getattr(loop, "_selector", None) is not selector:
                return orig_select(selector, timeout)
            lid = loops.get(id(loop)) or loop_id(loop)
            now = clock()
            if handoff.inline_sampler is not None:
                try:
                    handoff.going_idle(now + timeout * 1e9 if timeout is not None else NEVER)
                except Exception:
                    caught("asyncio.select")
            emit((_IDLE_BEGIN, now, lid))
            ready = []
            try:
                ready = orig_select(selector, timeout)
            finally:
                emit((_IDLE_END | len(ready) << ARG_SHIFT, clock(), lid))
            return ready

        return select

    for cls_name in ("SelectSelector", "PollSelector", "EpollSelector", "DevpollSelector", "KqueueSelector"):
        cls = getattr(selectors, cls_name, None)
        if cls is not None and "select" in vars(cls):
            patcher.replace(cls, "select", wrap_select(vars(cls)["select"]))


def _hook_executor(patcher: Patcher, hooks: Shared) -> None:
    """``run_in_executor``: its futures' waits are ``syscall``; TASK_AWAITS_WORK names the pool work item."""
    hook_executor(patcher, hooks, asyncio.base_events.BaseEventLoop)


def hook_executor(patcher: Patcher, hooks: Shared, cls: type) -> None:
    """``cls.run_in_executor``: its futures' waits are ``syscall``; TASK_AWAITS_WORK names the pool work item."""
    emit, clock, local, executor_futures = hooks.emit, hooks.clock, hooks.local, hooks.executor_futures
    orig_run_in_executor = cls.run_in_executor  # type: ignore[attr-defined]

    def run_in_executor(loop: Any, executor: Any, func: Any, *args: Any) -> Any:
        local.last_work = 0
        fut = orig_run_in_executor(loop, executor, func, *args)
        try:
            executor_futures.add(fut)
            cur = local.cur
            if local.last_work and cur & WAKER_MASK == _TASK_WAKER:  # a task submitted it, to a thread pool we see
                emit((pack(Kind.TASK_AWAITS_WORK, local.last_work), clock(), cur >> WAKER_SHIFT))
        except Exception:
            caught("asyncio.run_in_executor")
        return fut

    patcher.replace(cls, "run_in_executor", run_in_executor)


def _record_still_ready(hooks: Shared) -> None:
    """TASK_READY for the tasks queued to run that have not run yet (called just before stopping)."""
    for loop in hooks.registry.known_loops():
        for handle in list(getattr(loop, "_ready", ())):
            cb = handle._callback
            if type(handle) is _ReadyHandle and not handle._cancelled and type(cb) in hooks.step_callback_types:
                g = hooks.tasks.get(id(cb.__self__))
                if g:
                    hooks.emit((_READY | handle._xt_waker << ARG_SHIFT, handle._xt_ts, g))


def report_callback_error(handle: Any, exc: BaseException) -> None:
    """Hand an exception from a callback to the loop's handler, as ``Handle._run`` does."""
    loop = handle._loop
    try:
        source = format_helpers._format_callback_source(handle._callback, handle._args, debug=loop.get_debug())  # type: ignore[call-arg]  # 3.12+
    except TypeError:  # before 3.12 there is no ``debug`` argument
        source = format_helpers._format_callback_source(handle._callback, handle._args)
    context = {"message": f"Exception in callback {source}", "exception": exc, "handle": handle}
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    loop.call_exception_handler(context)


@functools.cache
def _step_wrapper_type() -> type | None:
    """The private type the C Task wraps its steps in (None without the C accelerator).

    Found by creating a task on a fresh loop that never runs, so this works
    even while another loop runs in the calling thread.
    """
    seen: list[type] = []
    loop = asyncio.SelectorEventLoop()

    def spy(callback: Any, args: Any, context: Any) -> Any:
        seen.append(type(callback))
        return asyncio.events.Handle(callback, args, loop, context)

    loop._call_soon = spy  # type: ignore[attr-defined]  # private: the loop's own queueing

    async def nothing() -> None:
        return None

    coro = nothing()
    try:
        task = asyncio.Task(coro, loop=loop)
        task._log_destroy_pending = False  # type: ignore[attr-defined]  # private: no 'destroyed but pending' warning
    finally:
        coro.close()
        loop.close()
    return next((kind for kind in seen if kind.__name__ == "TaskStepMethWrapper"), None)
