"""Hooks into uvloop's loops: task steps, wake-ups, timers, callbacks and task creation.

uvloop runs its scheduler in C (Cython and libuv): there is no Python
``Handle._run`` and no selector to patch. But ``uvloop.Loop`` (what
``uvloop.new_event_loop()``, ``uvloop.run()`` and uvicorn make) is a Python
subclass of the Cython loop, so its methods can be replaced on the class,
even while a loop runs, and every call made through attribute lookup goes
through the replacement:

* ``call_soon`` / ``call_soon_threadsafe``: the C Task schedules each step
  and each wake-up there, and a Future its done-callbacks. The callback is
  handed to uvloop wrapped in a call stamped with when and by whom it was
  queued (``_QueuedCall``; in C, ``UvCall``), which passes for the callback
  where uvloop shows it. uvloop calls it in the callback's context, and the
  runner that replaces ``Handle._run`` on asyncio's loops runs and records
  it: a task's step as [TASK_READY,] TASK_STEP then TASK_SUSPEND or
  TASK_DONE, another callback as CALLBACK_BEGIN/END. An exception of the
  callback goes back to uvloop, which reports it as untraced.
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
    hook_executor,
    hook_lifecycle,
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
    "uvloop: the loop's idle time (its wait in libuv's poll) is not recorded: between steps its thread shows "
    "as running, or as 'other (est.)' where samples found it asleep (its samples show the wait)",
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


class _QueuedCall:
    """A callback queued on a uvloop loop, stamped with when (``_xt_ts``) and by whom (``_xt_waker``) it was
    queued: uvloop calls it with no arguments, inside the callback's context. The Python twin of the C ``UvCall``.

    Each recording makes its own subclasses (``queued_types``), whose ``__call__`` is the runner made with
    ``queued``: uvloop's call is the runner's, with no frame in between. It passes for its callback where uvloop
    shows it (the repr of its handles, the message of a callback's exception, its debug mode's names): its other
    attributes, repr and str are the callback's.
    """

    __slots__ = ("_args", "_callback", "_loop", "_xt_ts", "_xt_waker")

    def __getattr__(self, name: str) -> Any:
        if name in _QueuedCall.__slots__:  # not set (a copy being made, say): not the callback's
            raise AttributeError(name)
        return getattr(self._callback, name)

    def __repr__(self) -> str:
        return repr(self._callback)

    def __str__(self) -> str:
        return str(self._callback)


def queued_types() -> tuple[Any, Any]:
    """A recording's own classes of queued calls, ``call_soon``'s and a timer's; set ``__call__`` on the first."""
    soon = type("_QueuedCall", (_QueuedCall,), {"__slots__": (), "__module__": __name__})
    return soon, type("_QueuedTimerCall", (soon,), {"__slots__": (), "__module__": __name__})


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
    # the Python runner of the _QueuedCall made here; the C one of the C UvSoon's UvCall
    soon_call, timer_call = queued_types()
    run = step_runner(hooks, timer_call, queued=soon_call, native=False)
    soon_call.__call__ = run  # uvloop calls the runner itself
    native_run = step_runner(hooks, timer_call, queued=soon_call) if hooks.native is not None else run
    new_call = object.__new__
    context_type, get_frame = contextvars.Context, sys._getframe

    noted = False

    def call_for(kind: type, loop: Any, callback: Any, args: tuple) -> Any:
        if not noted:  # the first uvloop loop seen: the trace says what it lacks
            note()
        call: Any = new_call(kind)
        call._loop = loop
        call._callback = callback
        call._args = args
        call._xt_ts = clock()
        call._xt_waker = local.cur or outside(loop, get_frame(2))
        return call

    def wraps(callback: Any, context: Any) -> bool:
        """Whether to hand ``callback`` over wrapped (else uvloop sees it as it is, and raises as it does)."""
        return (context is None or type(context) is context_type) and callable(callback)

    def soon(orig: Callable[..., Any]) -> Callable[..., Any]:
        def call_soon(loop: Any, callback: Any, *args: Any, context: Any = None) -> Any:
            if wraps(callback, context):
                try:
                    call = call_for(soon_call, loop, callback, args)
                except Exception:
                    caught("uvloop.call_soon")
                else:
                    return orig(loop, call, context=context)
            return orig(loop, callback, *args, context=context)

        return call_soon

    def timer(orig: Callable[..., Any]) -> Callable[..., Any]:
        def call_later(loop: Any, when: Any, callback: Any, *args: Any, context: Any = None) -> Any:
            if wraps(callback, context):
                try:
                    call = call_for(timer_call, loop, callback, args)
                except Exception:
                    caught("uvloop.call_later")
                else:
                    return orig(loop, when, call, context=context)
            return orig(loop, when, callback, *args, context=context)

        return call_later

    def note() -> None:
        nonlocal noted
        if not noted:
            noted = True
            for text in UNSEEN:
                hooks.unseen(text)

    for name, hook, when in (
        ("call_soon", soon, 0),
        ("call_soon_threadsafe", soon, 0),
        ("call_later", timer, 1),
        ("call_at", timer, 1),
    ):
        orig = getattr(loop_cls, name)
        replacement: Any = hook(orig)
        if hooks.native is not None:
            replacement = hooks.native.UvSoon(
                fallback=replacement,
                orig=orig,
                runner=native_run,
                clock=clock,
                noted=note,
                boundaries=tuple(wakers.boundaries),
                running_loop=asyncio.events._get_running_loop,
                thread_waker=hooks.thread_waker,
                outside=outside,
                when=when,
            )
        patcher.replace(loop_cls, name, replacement)
