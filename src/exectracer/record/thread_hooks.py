"""Thread lifecycle: created (and by whom), started, ended, renamed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, cast

from ..format.events import Kind, pack
from .hook_errors import caught
from .patcher import Patcher
from .registry import Registry
from .store import EventStore

THREAD_G_ATTR = "_exectracer_g"  # a Thread's goroutine id, set when it is started


def install(patcher: Patcher, events: EventStore, registry: Registry, active: Any) -> None:
    """Patch ``threading.Thread``; ``active()`` tells whether the recording still runs."""
    emit = events.extend
    clock = time.perf_counter_ns
    thread_cpu = time.thread_time_ns  # its CPU time at its end: what the sampler saw of it since its last sample

    orig_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        try:
            g = registry.new_g()
            setattr(thread, THREAD_G_ATTR, g)
            emit((pack(Kind.THREAD_CREATE, registry.current_g()), clock(), g))
        except Exception:
            caught("thread.start")
        orig_start(thread)

    orig_bootstrap = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def bootstrap_inner(thread: threading.Thread) -> None:
        g = 0
        try:
            if active():
                g = registry.adopt_thread(thread, threading.get_ident(), g=getattr(thread, THREAD_G_ATTR, None))
        except Exception:
            caught("thread.run")
        try:
            orig_bootstrap(thread)
        finally:
            if g and active():
                ts = clock()
                emit((pack(Kind.THREAD_CPU, thread_cpu()), ts, g, Kind.THREAD_END, ts, g))
            if active():
                registry.threads.pop(threading.get_ident(), None)

    name_property: property = vars(threading.Thread)["name"]
    set_original_name = cast(Callable[[threading.Thread, str], None], name_property.fset)

    def set_name(thread: threading.Thread, value: str) -> None:
        set_original_name(thread, value)
        try:
            g = registry.threads.get(thread.ident) if thread.ident is not None else getattr(thread, THREAD_G_ATTR, None)
            if g and active():
                registry.thread_name(g, thread.name)
        except Exception:
            caught("thread.name")

    patcher.replace(threading.Thread, "start", start)
    patcher.replace(threading.Thread, "_bootstrap_inner", bootstrap_inner)
    patcher.replace(threading.Thread, "name", property(name_property.fget, set_name, doc=name_property.__doc__))
