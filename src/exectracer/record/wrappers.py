"""Library coroutines that only run what they were given: the task running one is said to start that.

``uvloop.run(main())`` runs its main task in a ``wrapper`` coroutine that
awaits ``main``; ``anyio.run(func)`` on asyncio, in a ``wrapper`` that calls
``func``; an anyio task group, each task in its ``TaskHandle._run_coro``,
which awaits the handle's coroutine. Under ``asyncio.run`` and
``create_task`` (and trio's ``start_soon``), a task's start function is the
program's; these tasks name the program's function too.

What a wrapper runs is read without ``f_locals``, which on 3.11 and 3.12
gives the frame a dict of its locals that keeps them alive (anyio's handle
after its ``del self``, which breaks a cycle): once it started, it is the
coroutine it awaits; before, it is found among what the coroutine refers to
(its frame's locals and cells).
"""

from __future__ import annotations

import gc
import inspect
import os
from types import CellType, CoroutineType, FunctionType, MemberDescriptorType
from typing import Any

# Which wrapper runs what, by the end of its file's path (from its package's directory) and its function's name:
# what to look for among its locals (a coroutine, a function, or an object of a class with that name) and which of
# that object's attributes holds the coroutine
WRAPPERS: dict[tuple[str, str], tuple[str, str | None]] = {
    ("uvloop/__init__.py", "wrapper"): ("coroutine", None),  # uvloop.run's: awaits main
    ("anyio/_backends/_asyncio.py", "wrapper"): ("function", None),  # anyio.run's on asyncio: calls func
    ("anyio/_core/_tasks.py", "_run_coro"): ("TaskHandle", "_coro"),  # anyio 4.14 and newer: a task group's task
}


def wrapped(coro: Any) -> CoroutineType | FunctionType | None:
    """What the library wrapper coroutine ``coro`` runs: a coroutine or a function; None if it is no wrapper."""
    code = getattr(coro, "cr_code", None) if type(coro) is CoroutineType else None
    if code is None:
        return None
    parts = code.co_filename.replace(os.sep, "/").rsplit("/", 3)  # site-packages, dist-packages or a checkout
    wanted = WRAPPERS.get(("/".join(parts[-3:]), code.co_name)) or WRAPPERS.get(("/".join(parts[-2:]), code.co_name))
    if wanted is None:
        return None
    awaited = coro.cr_await
    if type(awaited) is CoroutineType:
        return awaited
    return _among_locals(coro, *wanted)


def _among_locals(coro: CoroutineType, kind: str, attribute: str | None) -> CoroutineType | FunctionType | None:
    """The first of what ``coro``'s frame refers to (its locals, its cells' contents) that is of ``kind``."""
    frame = coro.cr_frame
    if frame is None:
        return None
    for item in gc.get_referents(coro, frame):  # the frame's locals: the coroutine's from 3.11
        if type(item) is CellType:
            try:
                item = item.cell_contents
            except ValueError:  # an empty cell
                continue
        if kind == "coroutine" and type(item) is CoroutineType and item is not coro:
            return item
        if kind == "function" and type(item) is FunctionType:
            return item
        if type(item).__name__ == kind and attribute is not None:
            inner = _plain_attribute(item, attribute)
            return inner if type(inner) is CoroutineType else None
    return None


def _plain_attribute(obj: Any, name: str) -> Any:
    """``obj.name`` if it is a plain attribute (a slot or in the instance's dict), read without running any code of
    the object's class; else None."""
    slot = inspect.getattr_static(type(obj), name, None)
    if isinstance(slot, MemberDescriptorType):
        try:
            return slot.__get__(obj)
        except AttributeError:  # an empty slot
            return None
    return getattr(obj, "__dict__", {}).get(name) if slot is None else None
