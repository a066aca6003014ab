"""Why a suspended asyncio task waits: its await chain, as a stack and a category.

The hot path builds a cheap key from the chain (code object ids and
instruction offsets, innermost last) and looks it up; only a chain never
seen before is turned into frames, interned and classified.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.locks
import asyncio.queues
import asyncio.selector_events
import asyncio.streams
import asyncio.subprocess
import asyncio.tasks
import dis
import inspect
from collections.abc import Iterator
from types import CodeType, CoroutineType, FrameType, GeneratorType
from typing import Any

from ..format.events import CATEGORY_SHIFT, Category, Kind, pack
from .interner import Interner

# Functions whose frame in an await chain tells the category, checked from
# the innermost frame outwards; the first match wins.
_CATEGORY_FUNCTIONS: dict[Category, list[tuple[Any, tuple[str, ...]]]] = {
    Category.NETWORK: [
        (asyncio.streams.StreamReader, ("_wait_for_data", "read", "readline", "readuntil", "readexactly")),
        (asyncio.streams.FlowControlMixin, ("_drain_helper",)),
        (asyncio.streams.StreamWriter, ("drain", "wait_closed", "start_tls")),
        (
            asyncio.selector_events.BaseSelectorEventLoop,
            (
                "sock_recv",
                "sock_recv_into",
                "sock_recvfrom",
                "sock_recvfrom_into",
                "sock_sendall",
                "sock_sendto",
                "sock_connect",
                "sock_accept",
                "_accept_connection2",
            ),
        ),
        (
            asyncio.base_events.BaseEventLoop,
            (
                "getaddrinfo",
                "getnameinfo",
                "create_connection",
                "create_datagram_endpoint",
                "sock_sendfile",
                "start_tls",
            ),
        ),
        (asyncio.base_events.Server, ("serve_forever", "wait_closed")),
    ],
    Category.SYNC: [
        (asyncio.locks.Lock, ("acquire",)),
        (asyncio.locks.Event, ("wait",)),
        (asyncio.locks.Condition, ("wait", "wait_for")),
        (asyncio.locks.Semaphore, ("acquire",)),
        (getattr(asyncio.locks, "Barrier", None), ("wait", "_block", "_wait")),
        (asyncio.queues.Queue, ("get", "put", "join")),
        (asyncio.tasks, ("wait", "_wait", "wait_for", "as_completed", "_wait_for_one", "gather", "shield")),
        (getattr(asyncio, "TaskGroup", None), ("__aexit__", "_aexit")),
    ],
    Category.SLEEP: [(asyncio.tasks, ("sleep",))],
    Category.SYSCALL: [
        (asyncio.subprocess.Process, ("wait", "communicate", "_feed_stdin", "_read_stream", "_noop")),
        (asyncio.threads if hasattr(asyncio, "threads") else None, ("to_thread",)),
        (asyncio.base_events.BaseEventLoop, ("subprocess_exec", "subprocess_shell", "_make_subprocess_transport")),
        (asyncio.base_events.BaseEventLoop, ("shutdown_default_executor",)),
    ],
}

# Futures whose type alone tells the category when no frame does.
_SYNC_FUTURE_TYPES = (asyncio.Task, getattr(asyncio.tasks, "_PyTask", asyncio.Task), asyncio.tasks._GatheringFuture)  # type: ignore[attr-defined]  # private: gather()'s future


def _codes_by_category() -> dict[int, tuple[Category, CodeType]]:
    table: dict[int, tuple[Category, CodeType]] = {}
    for category, entries in _CATEGORY_FUNCTIONS.items():
        for owner, names in entries:
            if owner is None:
                continue
            for name in names:
                func = getattr(owner, name, None)
                func = getattr(func, "__func__", func)
                code = getattr(func, "__code__", None)
                if code is not None:
                    table.setdefault(id(code), (category, code))
    return table


def _suspension_points(code: CodeType) -> int:
    """How many places a coroutine's code can suspend at (each ``await``, ``async for``, ``async with`` part)."""
    return sum(1 for instruction in dis.get_instructions(code) if instruction.opname in ("YIELD_VALUE", "YIELD_FROM"))


def chain_frames(coro: Any) -> Iterator[tuple[FrameType, str | None]]:
    """The frames of an await chain, outermost first, each with its function's qualified name."""
    while coro is not None:
        kind = type(coro)
        if kind is CoroutineType:
            frame, nxt = coro.cr_frame, coro.cr_await
        elif kind is GeneratorType:
            frame, nxt = coro.gi_frame, coro.gi_yieldfrom
        else:  # a Future's iterator, an async generator's asend object, ...
            return
        if frame is None:
            return
        yield frame, getattr(coro, "__qualname__", None)
        coro = nxt


class AwaitChains:
    """Maps an await chain's key to a ready-made TASK_SUSPEND event code (``cache``)."""

    def __init__(self, interner: Interner) -> None:
        self._interner = interner
        self._codes = _codes_by_category()
        self.cache: dict[Any, int] = {}
        # ids of interned coroutine codes with one suspension point: their
        # offset is known without the frame object (made on first access)
        self.one_await: set[int] = set()
        self.looked_at: set[int] = set()  # ids of interned codes whose suspension points were counted

    def code_for(self, coro: Any, waiter: Any) -> int:
        """The TASK_SUSPEND code for a task's chain: its key looked up, the chain defined if new.

        The asyncio hooks call it at every suspension (the C hook builds the
        same key itself), so the walk takes no frame object it can do without.
        """
        key: Any = type(waiter)
        c = coro
        one_await = self.one_await
        while True:
            kind = type(c)
            if kind is CoroutineType:
                cid = id(c.cr_code)
                if cid in one_await:  # one suspension point: its offset is known without the frame
                    key = (key, cid, 0)
                else:
                    frame = c.cr_frame
                    if frame is None:
                        break
                    key = (key, cid, frame.f_lasti)
                c = c.cr_await
            elif kind is GeneratorType:
                frame = c.gi_frame
                if frame is None:
                    break
                key = (key, id(frame.f_code), frame.f_lasti)
                c = c.gi_yieldfrom
            else:
                break
        return self.cache.get(key) or self.define(key, coro, waiter)

    def define(self, key: Any, coro: Any, waiter: Any) -> int:
        """Intern and classify the chain behind a new ``key``; return its TASK_SUSPEND code.

        ``key`` nests, from the inside out: ``type(waiter)``, then for each
        frame of the chain, outermost first, ``(key, id(code), f_lasti)``,
        with 0 for ``f_lasti`` if the code is in ``one_await``. The C hook
        (``_speedups``) makes the same key flat: ``(type(waiter), id(code),
        f_lasti, ...)``, equal to the nested one for a single frame; a chain
        seen by both is defined twice, to the same code. The interner keeps
        the code objects alive, so their ids stay unique.
        """
        chain = list(chain_frames(coro))
        interner = self._interner
        frame_ids = tuple(interner.frame_of(frame, qualname) for frame, qualname in reversed(chain))
        for frame, _ in chain:  # interned now: their ids stay unique
            frame_code = frame.f_code
            if id(frame_code) not in self.looked_at:
                self.looked_at.add(id(frame_code))
                if frame_code.co_flags & inspect.CO_COROUTINE and _suspension_points(frame_code) == 1:
                    self.one_await.add(id(frame_code))
        stack = interner.stack(frame_ids)
        category = self.categorize([frame for frame, _ in chain], waiter)
        code = pack(Kind.TASK_SUSPEND, (stack << CATEGORY_SHIFT) | category)
        self.cache[key] = code
        return code

    def categorize(self, frames: list[FrameType], waiter: Any) -> Category:
        """The category of a wait, from its frames (innermost wins) and the awaited future."""
        if waiter is None:
            return Category.YIELD
        for frame in reversed(frames):
            hit = self._codes.get(id(frame.f_code))
            if hit is not None and hit[1] is frame.f_code:
                return hit[0]
        if isinstance(waiter, _SYNC_FUTURE_TYPES):
            return Category.SYNC
        return Category.OTHER
