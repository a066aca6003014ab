"""Hooks into uvloop's loops: task steps, wake-ups, timers, callbacks and task creation.

uvloop runs its scheduler in C (Cython and libuv): there is no Python
``Handle._run`` and no selector to patch. But ``uvloop.Loop`` (what
``uvloop.new_event_loop()``, ``uvloop.run()`` and uvicorn make) is a Python
subclass of the Cython loop, so its methods can be replaced on the class,
even while a loop runs, and every call made through attribute lookup goes
through the replacement:

* ``call_soon`` / ``call_soon_threadsafe``: the C Task schedules each step
  and each wake-up there, and a Future its done-callbacks. The callback is
  handed to uvloop wrapped: an asyncio ``Handle`` stamped with when and by
  whom it was queued (``asyncio_hooks._ReadyHandle``), run by the same
  runner that replaces ``Handle._run`` on asyncio's loops, which records a
  task's step as [TASK_READY,] TASK_STEP then TASK_SUSPEND or TASK_DONE, and
  another callback as CALLBACK_BEGIN/END.
* ``call_later`` / ``call_at``: the same, as a timer's callback (its wake-ups
  name the timer).
* ``create_task``, ``run_in_executor``, ``run_forever``, ``close``: as on
  asyncio's loops.

What uvloop runs from C without a Python call is not seen: protocol and
transport callbacks on I/O readiness, its internal timers and the time it
waits in libuv's poll. A wake-up queued from such a callback (no step or
callback of ours running on the loop's thread) is named after the outermost
Python function on the stack below the loop: a protocol method
(``data_received``, ...) is I/O readiness, anything else a callback; no
Python function at all (uvloop's C code completed the future of a
``sock_recv``, a connection's set-up, ...) is I/O readiness too (``FROM_C``).
``UNSEEN`` lists what the trace lacks on these loops.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import asyncio.runners
import contextvars
import functools
import sys
from collections.abc import Callable
from types import CodeType, FrameType, FunctionType, ModuleType
from typing import Any, cast

from ..format.events import Waker, pack_waker
from .asyncio_hooks import (
    Shared,
    _ReadyHandle,
    hook_executor,
    hook_lifecycle,
    native_ready_soon,
    step_runner,
    task_creator,
)
from .hook_errors import caught
from .interner import function_name
from .patcher import Patcher
from .stand_in import stand_in

# The name of the I/O waker of a callback uvloop's C code queued with no Python function in between: a future
# completed by its sock_recv, sock_sendall, sock_accept or sock_connect, its connection set-up, its name resolution
FROM_C = "uvloop I/O (handled in C)"

UNSEEN = (
    "uvloop: the loop's idle time (its wait in libuv's poll) is not recorded, so its thread shows as running "
    "between steps (its samples show the wait)",
    "uvloop: callbacks uvloop runs from C (protocols' data_received and other I/O callbacks, its internal timers) "
    "are not recorded as callbacks; a task they wake is woken by I/O named after the protocol method, or "
    f"'{FROM_C}' when no Python function runs (its sock_* calls, connection set-up; derived from the stack)",
    "uvloop: tasks queued to run but not yet run when tracing stops have no TASK_READY",
)

# Protocol methods a transport calls on I/O readiness: a wake-up queued from one was made by I/O
PROTOCOL_METHODS = frozenset(
    {
        "connection_made",
        "connection_lost",
        "data_received",
        "eof_received",
        "datagram_received",
        "error_received",
        "get_buffer",
        "buffer_updated",
        "pause_writing",
        "resume_writing",
        "pipe_data_received",
        "pipe_connection_lost",
        "process_exited",
    }
)


class _TimerHandle(_ReadyHandle):
    """A timer's callback (``call_later``, ``call_at``) as the runner sees it; passes for a Handle."""

    __slots__ = ()


class _CythonPatcher:
    """Replaces the Cython loop's methods, each Python hook put in place as a stand-in that passes for the
    method it replaces (its class, repr, binding and pickling: ``stand_in``)."""

    def __init__(self, patcher: Patcher) -> None:
        self._patcher = patcher

    def replace(self, owner: Any, name: str, value: Any) -> Any:
        original = getattr(owner, name)
        if type(value) is FunctionType and type(original) is not FunctionType:
            functools.update_wrapper(value, original, updated=())
            value = stand_in(original, value)
        return self._patcher.replace(owner, name, value)


def install(patcher: Patcher, hooks: Shared, module: ModuleType) -> bool:
    """Patch ``module.Loop`` (uvloop's) for one recording; False if it cannot be patched."""
    patcher = cast(Patcher, _CythonPatcher(patcher))
    loop_cls = getattr(module, "Loop", None)
    if not isinstance(loop_cls, type) or not all(
        callable(getattr(loop_cls, name, None))
        for name in ("call_soon", "call_soon_threadsafe", "call_later", "call_at", "create_task", "run_forever")
    ):
        return False
    run_forever = hook_lifecycle(patcher, hooks, loop_cls)
    wakers = _Wakers(hooks, _boundaries(run_forever, module))
    _hook_scheduling(patcher, hooks, loop_cls, wakers)
    patcher.replace(loop_cls, "create_task", task_creator(hooks, hooks.interner, loop_cls.create_task))  # type: ignore[attr-defined]
    hook_executor(patcher, hooks, loop_cls)
    hooks.hooked_loops = (*hooks.hooked_loops, loop_cls)
    return True


def _boundaries(run_forever: Callable[..., Any], module: ModuleType) -> frozenset[CodeType]:
    """Code of the functions that run a loop: a stack walked outwards from a callback stops there."""
    functions = [run_forever, getattr(module, "run", None), getattr(asyncio.runners, "run", None)]
    runner = getattr(asyncio.runners, "Runner", None)
    if runner is not None:
        functions.append(runner.run)
    return frozenset(code for code in (getattr(f, "__code__", None) for f in functions) if code is not None)


class _Wakers:
    """Who queues a callback: the running step or callback, another thread, or what uvloop called from C."""

    def __init__(self, hooks: Shared, boundaries: frozenset[CodeType]) -> None:
        self._hooks = hooks
        self._boundaries = self.boundaries = boundaries
        self._named: dict[CodeType, int] = {}  # code of the outermost function -> its waker code
        self._from_c = 0  # the waker code of what uvloop's C code queued itself (FROM_C), once named

    def outside(self, loop: Any, frame: FrameType | None) -> int:
        """The waker when no step or callback of ours runs: another thread's, else what uvloop called from C."""
        if asyncio.events._get_running_loop() is not loop:
            return self._hooks.thread_waker()
        outermost = None
        while frame is not None and frame.f_code not in self._boundaries:
            outermost, frame = frame, frame.f_back
        if frame is None:  # no loop's run below: the loop's thread itself
            return self._hooks.thread_waker()
        if outermost is None:  # uvloop's C code, with no Python function of a callback: I/O it handles itself
            if not self._from_c:
                self._from_c = pack_waker(Waker.IO, self._hooks.interner.string(FROM_C))
            return self._from_c
        code = outermost.f_code
        waker = self._named.get(code)
        if waker is None:
            name = function_name(code, outermost.f_globals.get("__name__"), None)
            kind = Waker.IO if code.co_name in PROTOCOL_METHODS else Waker.CALLBACK
            waker = self._named[code] = pack_waker(kind, self._hooks.interner.string(name))
        return waker


def _hook_scheduling(patcher: Patcher, hooks: Shared, loop_cls: type, wakers: _Wakers) -> None:
    """``call_soon``, ``call_soon_threadsafe``, ``call_later``, ``call_at``: the callback handed over wrapped."""
    clock, local, outside = hooks.clock, hooks.local, wakers.outside
    run = step_runner(hooks, _TimerHandle)
    # the C hooks hand uvloop the callback's own context, which uvloop enters before it calls the runner
    entered_run = step_runner(hooks, _TimerHandle, context_entered=True) if hooks.native is not None else run
    new_context, copy_context, context_type = contextvars.Context, contextvars.copy_context, contextvars.Context
    new_handle, get_frame = object.__new__, sys._getframe

    noted = False

    def handle_for(kind: type, loop: Any, callback: Any, args: tuple, context: Any) -> Any:
        if not noted:  # the first uvloop loop seen: the trace says what it lacks
            note()
        handle: Any = new_handle(kind)
        handle._context = copy_context() if context is None else context
        handle._loop = loop
        handle._callback = callback
        handle._args = args
        handle._cancelled = False
        handle._repr = None
        handle._source_traceback = None
        handle._xt_ts = clock()
        handle._xt_waker = local.cur or outside(loop, get_frame(2))
        return handle

    def wraps(callback: Any, context: Any) -> bool:
        """Whether to hand ``callback`` over wrapped (else uvloop sees it as it is, and raises as it does)."""
        return (context is None or type(context) is context_type) and callable(callback)

    def soon(orig: Callable[..., Any]) -> Callable[..., Any]:
        def call_soon(loop: Any, callback: Any, *args: Any, context: Any = None) -> Any:
            if wraps(callback, context):
                try:
                    handle = handle_for(_ReadyHandle, loop, callback, args, context)
                except Exception:
                    caught("uvloop.call_soon")
                else:
                    return orig(loop, run, handle, context=new_context())
            return orig(loop, callback, *args, context=context)

        return call_soon

    def timer(orig: Callable[..., Any]) -> Callable[..., Any]:
        def call_later(loop: Any, when: Any, callback: Any, *args: Any, context: Any = None) -> Any:
            if wraps(callback, context):
                try:
                    handle = handle_for(_TimerHandle, loop, callback, args, context)
                except Exception:
                    caught("uvloop.call_later")
                else:
                    return orig(loop, when, run, handle, context=new_context())
            return orig(loop, when, callback, *args, context=context)

        return call_later

    def outside_now() -> int:
        """The waker of a callback queued while no step or callback of ours runs (for the C hooks)."""
        running = asyncio.events._get_running_loop()
        return hooks.thread_waker() if running is None else outside(running, get_frame(1))

    def note() -> None:
        nonlocal noted
        if not noted:
            noted = True
            for text in UNSEEN:
                hooks.unseen(text)

    for name, hook, kind, when in (
        ("call_soon", soon, _ReadyHandle, 0),
        ("call_soon_threadsafe", soon, _ReadyHandle, 0),
        ("call_later", timer, _TimerHandle, 1),
        ("call_at", timer, _TimerHandle, 1),
    ):
        orig = getattr(loop_cls, name)
        replacement: Any = hook(orig)
        if hooks.native is not None:
            maker = native_ready_soon(hooks.native, replacement, kind, outside_now, clock)
            replacement = hooks.native.UvSoon(
                fallback=replacement,
                orig=orig,
                runner=entered_run,
                maker=maker,
                noted=note,
                boundaries=tuple(wakers.boundaries),
                running_loop=asyncio.events._get_running_loop,
                thread_waker=hooks.thread_waker,
                outside=outside,
                when=when,
            )
        patcher.replace(loop_cls, name, replacement)
