"""Why a suspended trio task waits: its await chain, as a stack and a category.

Every trio wait ends in one of trio's traps (``wait_task_rescheduled``,
``cancel_shielded_checkpoint``, which yield to the run loop); the chain is
recorded down to the trap, without it, so that its innermost frame is the
function that chose to wait, as with asyncio (whose chains end at a
Future). The functions in the chain say what it waits for. The category comes
from the *outermost* frame of a known trio function (``open_tcp_stream``
waits on its connection attempts' nursery: a network wait, not a sync one;
``Process.wait`` waits on a pidfd: a syscall, not a network wait).

As in ``await_chain.py``, the hot path builds a cheap key from the chain
(code ids and instruction offsets) and looks it up; only a chain never
seen before is turned into frames, interned and classified. This module
reads trio only from ``sys.modules``: it imports nothing the program has not.
"""

from __future__ import annotations

import dis
import inspect
import sys
from collections.abc import Callable, Iterator
from types import CodeType, CoroutineType, FrameType, GeneratorType
from typing import Any

from ..format.events import CATEGORY_SHIFT, Category, Kind, pack
from .interner import Interner

# (module, attribute path) of trio functions whose frame in an await chain
# tells the category; the outermost match wins. Missing ones (another trio
# version, another platform) are skipped.
_CATEGORY_FUNCTIONS: dict[Category, list[tuple[str, tuple[str, ...]]]] = {
    Category.NETWORK: [
        ("trio.lowlevel", ("wait_readable", "wait_writable", "wait_overlapped", "wait_kevent")),
        ("trio._core._run", ("TheIOManager.wait_readable", "TheIOManager.wait_writable")),
        (
            "trio._socket",
            (
                "_SocketType.recv",  # one wrapper's code for every simple socket method: recv*, send*
                "_SocketType._nonblocking_helper",
                "_SocketType.accept",
                "_SocketType.connect",
                "_SocketType.sendto",
                "_SocketType.wait_writable",
                "getaddrinfo",
                "getnameinfo",
            ),
        ),
        (
            "trio",
            (
                "SocketStream.send_all",
                "SocketStream.receive_some",
                "SocketStream.wait_send_all_might_not_block",
                "SocketListener.accept",
                "SSLStream.do_handshake",
                "SSLStream.receive_some",
                "SSLStream.send_all",
                "SSLStream.unwrap",
                "SSLStream.aclose",
                "SSLStream.wait_send_all_might_not_block",
                "SSLListener.accept",
                "DTLSChannel.do_handshake",
                "DTLSChannel.send",
                "DTLSChannel.receive",
                "DTLSEndpoint.serve",
                "open_tcp_stream",
                "open_tcp_listeners",
                "open_ssl_over_tcp_stream",
                "open_ssl_over_tcp_listeners",
                "open_unix_socket",
                "serve_tcp",
                "serve_ssl_over_tcp",
                "serve_listeners",
            ),
        ),
        # anyio on trio: its own functions whose inner waits are not what they wait for (a connection's
        # attempts wait on events and task groups; a TLS stream on locks). Named by the modules that define them:
        # ``anyio`` itself imports them on first use, and the recorder must not make it (see ``_defined``).
        (
            "anyio._core._sockets",
            (
                "connect_tcp",
                "connect_unix",
                "getaddrinfo",
                "getnameinfo",
                "wait_readable",
                "wait_writable",
                "wait_socket_readable",
                "wait_socket_writable",
            ),
        ),
        ("anyio.streams.tls", ("TLSStream.receive", "TLSStream.send", "TLSStream.wrap", "TLSStream.unwrap")),
    ],
    Category.SYNC: [
        (
            "trio",
            (
                "Event.wait",
                "Lock.acquire",
                "StrictFIFOLock.acquire",
                "Semaphore.acquire",
                "CapacityLimiter.acquire",
                "CapacityLimiter.acquire_on_behalf_of",
                "Condition.acquire",
                "Condition.wait",
                "MemorySendChannel.send",
                "MemoryReceiveChannel.receive",
            ),
        ),
        ("trio.lowlevel", ("ParkingLot.park",)),
        ("trio._channel", ("RecvChanWrapper.receive",)),
        ("trio._core", ("wait_all_tasks_blocked",)),
        ("trio._core._run", ("NurseryManager.__aexit__", "Nursery.start", "Nursery._nested_child_finished")),
    ],
    Category.SLEEP: [("trio", ("sleep", "sleep_until", "sleep_forever"))],
    Category.SYSCALL: [
        ("trio.to_thread", ("run_sync",)),
        ("trio", ("Process.wait", "run_process", "open_file")),
        ("trio.lowlevel", ("open_process",)),
        ("anyio._core._subprocesses", ("run_process", "open_process")),  # anyio on trio: reads its pipes inside
    ],
}


# trio's traps: coroutines with one suspension point, where every wait ends (as a ``_real_async_yield`` generator)
_TRAPS = (
    "wait_task_rescheduled",
    "cancel_shielded_checkpoint",
    "permanently_detach_coroutine_object",
    "temporarily_detach_coroutine_object",
    "_real_async_yield",
)


def _trap_codes() -> dict[int, CodeType]:
    """``id(code) -> code`` of trio's traps."""
    traps = sys.modules.get("trio._core._traps")
    funcs = (getattr(traps, name, None) for name in _TRAPS)
    codes = (getattr(func, "__code__", None) for func in funcs)
    return {id(code): code for code in codes if isinstance(code, CodeType)}


def _codes_by_category() -> dict[int, tuple[Category, CodeType]]:
    """``id(code) -> (category, code)`` for the functions of ``_CATEGORY_FUNCTIONS`` the modules imported now have."""
    table: dict[int, tuple[Category, CodeType]] = {}
    for category, entries in _CATEGORY_FUNCTIONS.items():
        for module_name, paths in entries:
            for path in paths:
                func = _defined(module_name, path)
                func = getattr(func, "__func__", func)
                code = getattr(func, "__code__", None)
                if isinstance(code, CodeType):
                    table.setdefault(id(code), (category, code))
    return table


def _defined(module_name: str, path: str) -> Any:
    """``module_name.path`` if that module is imported and defines it, else None; found without running any of the
    program's code: no module's ``__getattr__`` (anyio's and trio's import or warn from theirs) and no descriptor (a
    static or class method is found as its ``staticmethod`` or ``classmethod`` object)."""
    found: Any = sys.modules.get(module_name)
    for part in path.split("."):
        if found is None:
            return None
        found = inspect.getattr_static(found, part, None)
    return found


def _modules_missing() -> set[str]:
    """The modules ``_CATEGORY_FUNCTIONS`` names that are not imported (anyio, say)."""
    return {name for entries in _CATEGORY_FUNCTIONS.values() for name, _ in entries if name not in sys.modules}


def _suspension_points(code: CodeType) -> int:
    """How many places a coroutine's code can suspend at."""
    return sum(1 for instruction in dis.get_instructions(code) if instruction.opname in ("YIELD_VALUE", "YIELD_FROM"))


def chain_frames(coro: Any, traps: dict[int, CodeType]) -> Iterator[tuple[FrameType, str | None]]:
    """The frames of an await chain down to a trap (not included), outermost first, each with its function's
    qualified name."""
    while coro is not None:
        kind = type(coro)
        if kind is CoroutineType:
            frame, nxt = coro.cr_frame, coro.cr_await
        elif kind is GeneratorType:
            frame, nxt = coro.gi_frame, coro.gi_yieldfrom
        else:
            return
        if frame is None or traps.get(id(frame.f_code)) is frame.f_code:
            return
        yield frame, getattr(coro, "__qualname__", None)
        coro = nxt


class TrioChains:
    """Maps a trio task's await chain to a ready-made TASK_SUSPEND event code (``cache``)."""

    def __init__(self, interner: Interner) -> None:
        self._interner = interner
        self._codes = _codes_by_category()
        self._modules_missing = _modules_missing()  # a module named in the table imported later: it is read again
        self._traps = _trap_codes()  # alive in trio's modules: their ids stay unique
        self.cache: dict[Any, int] = {}
        # ids of interned coroutine codes with one suspension point: their offset is known without the frame
        self.one_await: set[int] = set(self._traps)
        self._looked_at: set[int] = set(self._traps)
        self.code_for = _code_for(self.cache, self.one_await, self._traps, self.define)
        """``code_for(coro, runnable)``: the TASK_SUSPEND code for the chain of ``coro`` (``runnable``: the task is
        queued again, a yield). The hooks call it at every step; a closure, for its tables' sake."""

    def define(self, key: Any, coro: Any, runnable: bool) -> int:
        """Intern and classify the chain behind a new ``key``; return its TASK_SUSPEND code.

        The interner keeps the chain's code objects alive, so their ids in
        ``key`` stay unique.
        """
        chain = list(chain_frames(coro, self._traps))
        interner = self._interner
        frame_ids = tuple(interner.frame_of(frame, qualname) for frame, qualname in reversed(chain))
        for frame, _ in chain:
            frame_code = frame.f_code
            if id(frame_code) not in self._looked_at:
                self._looked_at.add(id(frame_code))
                if frame_code.co_flags & inspect.CO_COROUTINE and _suspension_points(frame_code) == 1:
                    self.one_await.add(id(frame_code))
        if self._modules_missing and any(name in sys.modules for name in self._modules_missing):
            self._codes, self._modules_missing = _codes_by_category(), _modules_missing()
        category = Category.YIELD if runnable else self.categorize([frame for frame, _ in chain])
        code = pack(Kind.TASK_SUSPEND, (interner.stack(frame_ids) << CATEGORY_SHIFT) | category)
        self.cache[key] = code
        return code

    def categorize(self, frames: list[FrameType]) -> Category:
        """The category of a wait from its frames, outermost first: the first known trio function's."""
        for frame in frames:
            hit = self._codes.get(id(frame.f_code))
            if hit is not None and hit[1] is frame.f_code:
                return hit[0]
        return Category.OTHER


def _code_for(
    cache: dict[Any, int], one_await: set[int], traps: dict[int, CodeType], define: Callable[[Any, Any, bool], int]
) -> Callable[[Any, bool], int]:
    """:meth:`TrioChains.code_for`: the chain's key looked up, the chain defined if new.

    The key nests, from the outside in: ``runnable``, then for each frame
    down to the trap ``(key, id(code), f_lasti)``, with 0 for ``f_lasti`` if
    the code is in ``one_await`` (so no frame object is made for it).
    """

    def code_for(coro: Any, runnable: bool) -> int:
        key: Any = runnable
        c = coro
        while True:
            kind = type(c)
            if kind is CoroutineType:
                cid = id(c.cr_code)
                if cid in one_await:  # one suspension point: its offset is known without the frame
                    if cid in traps:  # the chain ends here
                        break
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
        return cache.get(key) or define(key, coro, runnable)

    return code_for
