"""Tasks waiting for a child process: asyncio's ``Process.wait`` (and ``communicate``, which ends with it).

A task that awaits the exit of a child process that has not ended yet
waits on a future of the process's transport (asyncio's
``BaseSubprocessTransport``), which the loop resolves once it saw the child
exit (in newer Pythons, once its pipes closed too): the task's wait ends with the TASK_READY that
resolving it makes. The hook wraps the steps that resolve them
(``_call_connection_lost``; ``_process_exited`` in older Pythons): for
each task woken there, a PROCESS_WAIT naming the child's pid follows,
by that task, right after its TASK_READY and before its next step; readers
take it for the task's wait that ended last at or before it. The tasks are
found by the futures' callbacks (each a task's wake-up, bound to the task):
no frame of the tracer enters the task's own stack.

uvloop's subprocess transports are its own (no such step): a task's wait
for a child there is not named.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..format.events import ARG_SHIFT, Kind
from .hook_errors import caught
from .patcher import Patcher
from .registry import Registry
from .store import EventStore

PROCESS_WAIT = int(Kind.PROCESS_WAIT)


def install(
    patcher: Patcher, events: EventStore, registry: Registry, base_subprocess: ModuleType, active: Callable[[], bool]
) -> None:
    """Wrap the steps of ``base_subprocess.BaseSubprocessTransport`` (``asyncio.base_subprocess``) that can wake the
    tasks waiting for the process: ``_call_connection_lost``, or ``_process_exited`` in older Pythons."""
    transport = getattr(base_subprocess, "BaseSubprocessTransport", None)
    for name in ("_process_exited", "_call_connection_lost"):
        original = getattr(transport, name, None)
        if original is not None:
            patcher.replace(transport, name, _waking(original, events, registry, active))


def _waking(
    original: Callable[..., Any], events: EventStore, registry: Registry, active: Callable[[], bool]
) -> Callable[..., Any]:
    emit = events.extend
    clock = time.perf_counter_ns

    def step(self: Any, *args: Any, **kwargs: Any) -> Any:
        waiting = _waiting_tasks(self) if active() else []
        try:
            return original(self, *args, **kwargs)
        finally:
            if waiting:
                try:
                    code = PROCESS_WAIT | int(self._pid) << ARG_SHIFT
                    now = clock()
                    for waiter, task in waiting:
                        if waiter.done():  # resolved by this step: the task was woken here
                            emit((code, now, registry.task_g(task)))
                except Exception:
                    caught("asyncio.process_wait")

    return step


def _waiting_tasks(transport: Any) -> list[tuple[Any, Any]]:
    """``(future, task)`` of each task waiting for ``transport``'s process to exit (the owner of a wake-up callback of
    one of its exit futures)."""
    try:
        pid = getattr(transport, "_pid", None)
        if not isinstance(pid, int) or pid <= 0:
            return []
        found = []
        for waiter in getattr(transport, "_exit_waiters", None) or ():
            if waiter.done():
                continue
            for callback, _ in getattr(waiter, "_callbacks", None) or ():
                task = getattr(callback, "__self__", None)
                if task is not None and callable(getattr(task, "get_coro", None)):  # a task's wake-up
                    found.append((waiter, task))
        return found
    except Exception:
        caught("asyncio.process_wait")
        return []
