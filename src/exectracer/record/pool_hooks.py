"""Thread pools: when work is submitted, and when a worker picks it up and finishes it.

``concurrent.futures.thread._WorkItem`` is the unit every ThreadPoolExecutor
queues (asyncio's ``run_in_executor`` and ``to_thread`` included). Its
constructor runs in the submitting thread or task (POOL_SUBMIT), its ``run``
in the worker (POOL_WORK_BEGIN/END): the gap is the work's queueing time.
"""

from __future__ import annotations

import itertools
import time
from types import ModuleType
from typing import Any

from ..format.events import ARG_SHIFT, Kind
from .hook_errors import caught
from .patcher import Patcher
from .registry import Registry
from .store import EventStore

_ID_ATTR = "_exectracer_work_id"


def install(patcher: Patcher, events: EventStore, registry: Registry, cf_thread: ModuleType) -> None:
    """Patch the work item class of ``cf_thread`` (``concurrent.futures.thread``); ``patcher.restore()`` undoes it."""
    emit = events.extend
    clock = time.perf_counter_ns
    next_id = itertools.count(1).__next__
    work_item = cf_thread._WorkItem
    orig_init = work_item.__init__
    orig_run = work_item.run
    SUBMIT, BEGIN, END = int(Kind.POOL_SUBMIT), int(Kind.POOL_WORK_BEGIN), int(Kind.POOL_WORK_END)

    def init(item: Any, *args: Any, **kwargs: Any) -> None:
        orig_init(item, *args, **kwargs)
        try:
            wid = next_id()
            setattr(item, _ID_ATTR, wid)
            registry.local.last_work = wid
            emit((SUBMIT | wid << ARG_SHIFT, clock(), registry.current_g()))
        except Exception:
            caught("pool.submit")

    def run(item: Any) -> None:
        wid = getattr(item, _ID_ATTR, 0)
        g = 0
        if wid:
            try:
                g = registry.thread_g()
                emit((BEGIN | wid << ARG_SHIFT, clock(), g))
            except Exception:
                caught("pool.run")
                g = 0
        try:
            orig_run(item)
        finally:
            if g:
                emit((END | wid << ARG_SHIFT, clock(), g))

    patcher.replace(work_item, "__init__", init)
    patcher.replace(work_item, "run", run)
