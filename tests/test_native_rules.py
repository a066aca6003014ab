"""Rules written twice, in the C hooks (``_speedups``) and in the Python ones, compared on generated inputs.

test_native_hooks compares whole recordings of one program; here each rule
is fed many generated inputs, in one process, with both sides built as a
recording builds them (``asyncio_hooks.install`` with and without the C
store, ``blocking.Waits``), sharing one interner so that their ids agree:

* the await chain's key and the code of a step's end (StepRunner against
  ``handle_run`` and ``AwaitChains``), on generated chains of coroutines
  and generators;
* the TASK_NAME code of a task's name, asyncio's "Task-N" parsed in C
  (TaskCreator against ``create_task`` and ``task_name_code``);
* the name, source and waker of a plain callback (StepRunner against
  ``run_callback`` and ``CallbackNames``);
* the stack key of a thread's wait (``record_wait`` against
  ``Waits.record`` and ``thread_stacks.stack_key``);
* which events of a dropped chunk a flight recorder keeps
  (``kept_positions`` against ``alive._kept_positions``), past
  test_alive's inputs: any kind byte, 64-bit codes, large goroutine ids.
"""

from __future__ import annotations

import array
import asyncio
import collections
import contextlib
import contextvars
import functools
import io
import math
import sys
import types
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exectracer.format import planes
from exectracer.format.events import WAKER_MASK, Kind, Waker, pack, pack_waker
from exectracer.live.alive import _OF_TASK_TABLE, _WANTED, _kept_positions
from exectracer.record import asyncio_hooks, native
from exectracer.record.await_chain import AwaitChains
from exectracer.record.blocking import Waits
from exectracer.record.handoff import GilHandoff
from exectracer.record.interner import Interner
from exectracer.record.patcher import Patcher
from exectracer.record.registry import Registry
from exectracer.record.store import ListStore
from exectracer.record.thread_stacks import FrameStacks

speedups = native.speedups()
pytestmark = [
    pytest.mark.recorder,
    pytest.mark.skipif(speedups is None, reason="the C hooks are not built or are switched off"),
]

G = 7  # the goroutine id of the tasks below


@dataclass
class Hooks:
    """asyncio's hooks as one recording installs them, with the C hooks or the Python ones."""

    handle_run: Any
    create_task: Any
    registry: Registry
    store: Any


def install(interner: Interner, c: bool) -> Hooks:
    """The hooks a recording would install (the C ones if ``c``), taken off asyncio's classes again at once."""
    assert speedups is not None
    store = speedups.Rows() if c else ListStore()
    registry = Registry(
        store,
        interner,
        set(),
        tasks=speedups.TaskIds() if c else None,
        local=native.hook_state(speedups) if c else None,
    )
    patcher = Patcher()
    try:
        asyncio_hooks.install(
            patcher, store, registry, interner, lambda message: None, GilHandoff(), rows=store if c else None
        )
        hooks = Hooks(
            vars(asyncio.events.Handle)["_run"], vars(asyncio.base_events.BaseEventLoop)["create_task"], registry, store
        )
    finally:
        patcher.restore()
    assert (type(hooks.handle_run).__name__ == "StepRunner") == c
    return hooks


def events(store: Any) -> list[tuple[int, int, int]]:
    """The (code, ts, g) of each event in a store, taken out of it."""
    payload, n, _ = store.take()
    columns = np.frombuffer(payload, dtype="<u8").reshape(3, n)
    return list(zip(*(column.tolist() for column in columns), strict=True))


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A loop that never runs: futures, handles and tasks need one."""
    made = asyncio.new_event_loop()
    yield made
    made.close()


# -- await chains ------------------------------------------------------------------------------------


async def one(inner: Any) -> Any:  # one suspension point: its offset is 0 in a key once AwaitChains has seen it
    return await inner


async def two(inner: Any, first: bool) -> Any:
    if first:
        return await inner
    return await inner


@types.coroutine
def legacy(inner: Any) -> Any:  # a generator level
    return (yield from inner)


@types.coroutine
def bare() -> Any:  # a bare yield: the task waits on nothing (asyncio.sleep(0))
    yield


LEVELS = {
    "one": one,
    "first": lambda inner: two(inner, True),
    "second": lambda inner: two(inner, False),
    "legacy": legacy,
}
WAITERS = ("future", "python future", "gathering future", "bare")
OUTCOMES = ("suspended", "returned", "raised", "cancelled")


def waiter_of(kind: str, loop: asyncio.AbstractEventLoop) -> Any:
    if kind == "future":
        return asyncio.Future(loop=loop)
    if kind == "python future":  # its __await__ is a generator: one more level
        return asyncio.futures._PyFuture(loop=loop)  # type: ignore[attr-defined]
    if kind == "gathering future":  # SYNC by its type
        return asyncio.tasks._GatheringFuture([], loop=loop)  # type: ignore[attr-defined]
    return bare()


def suspended(levels: list[str], waiter: str, loop: asyncio.AbstractEventLoop) -> tuple[Any, Any]:
    """A coroutine suspended in a chain of ``levels`` (outermost first) down to ``waiter``, and what it waits on."""
    inner = waiter_of(waiter, loop)
    for level in reversed(levels):
        inner = LEVELS[level](inner)
    yielded = inner.send(None)
    return inner, yielded


def noop(task: Any) -> None:
    """A step callback that does not run the task: its chain stays as built."""


def task_of(coro: Any, waiter: Any, outcome: str) -> Any:
    """A task (asyncio's Python Task, never scheduled) at the end of a step that left it ``outcome``."""
    task = asyncio.tasks._PyTask.__new__(asyncio.tasks._PyTask)  # type: ignore[attr-defined]
    task._coro, task._log_destroy_pending = coro, False
    task._fut_waiter = waiter if outcome == "suspended" else None
    if outcome != "suspended":
        task._state = asyncio.futures._CANCELLED if outcome == "cancelled" else asyncio.futures._FINISHED  # type: ignore[attr-defined]
        task._exception = ValueError("expected") if outcome == "raised" else None
    return task


def flat(key: Any) -> tuple:
    """An await chain's key, flat: Python's nests ((type(waiter), code, offset), code, offset), the C hook's is flat."""
    if isinstance(key, tuple) and key and isinstance(key[0], tuple):
        return flat(key[0]) + key[1:]
    return key


@contextlib.contextmanager
def defined_keys() -> Iterator[list[tuple[AwaitChains, Any]]]:
    """The keys AwaitChains.define is called with, by either side, while this lasts."""
    seen: list[tuple[AwaitChains, Any]] = []
    define = AwaitChains.define

    def spy(chains: AwaitChains, key: Any, coro: Any, waiter: Any) -> int:
        seen.append((chains, key))
        return define(chains, key, coro, waiter)

    with mock.patch.object(AwaitChains, "define", spy):
        yield seen


def run_step(hooks: Hooks, handle: Any, task: Any) -> list[tuple[int, int, int]]:
    hooks.registry.tasks[id(task)] = G
    hooks.handle_run(handle)
    return [(code, g, ts if code & 0xFF == Kind.TASK_READY else 0) for code, ts, g in events(hooks.store)]


level = st.sampled_from(sorted(LEVELS))
step = st.tuples(
    st.lists(level, min_size=1, max_size=6), st.sampled_from(WAITERS), st.sampled_from(OUTCOMES), st.booleans()
)


@given(st.lists(step, min_size=1, max_size=6))
@settings(max_examples=150, deadline=None)
def test_a_step_ends_with_the_same_code_and_the_chain_has_the_same_key(
    loop: asyncio.AbstractEventLoop, steps: list
) -> None:
    """Steps of tasks with generated await chains, one after another (later ones meet chains and codes seen before)."""
    interner = Interner()
    with defined_keys() as seen:
        python, c = install(interner, c=False), install(interner, c=True)
        for levels, waiter, outcome, stamped in steps:
            coro, waiting_on = suspended(levels, waiter, loop)
            try:
                task = task_of(coro, waiting_on, outcome)
                handle_type = asyncio_hooks._ReadyHandle if stamped else asyncio.events.Handle
                handle: Any = handle_type(types.MethodType(noop, task), (), loop, contextvars.copy_context())
                if stamped:  # queued by call_soon: the step is TASK_READY, then TASK_STEP
                    handle._xt_ts, handle._xt_waker = 12345, 3 << 3 | 1
                seen.clear()
                python_events = run_step(python, handle, task)
                python_keys = [flat(key) for _, key in seen]
                seen.clear()
                c_events = run_step(c, handle, task)
                c_keys = [flat(key) for _, key in seen]
            finally:
                coro.close()
            assert c_events == python_events, (levels, waiter, outcome)
            assert c_keys == python_keys, (levels, waiter, outcome)


@pytest.mark.parametrize("depth", [63, 64, 65, 80])
def test_chains_past_the_c_keys_depth_get_the_same_code(loop: asyncio.AbstractEventLoop, depth: int) -> None:
    """The C hook's keys go 64 levels deep; a deeper chain's code comes from AwaitChains.code_for."""
    interner = Interner()
    python, c = install(interner, c=False), install(interner, c=True)
    for _ in range(2):  # defined, then found again
        coro, waiting_on = suspended(["one", "legacy"] * (depth // 2) + ["second"] * (depth % 2), "future", loop)
        try:
            task = task_of(coro, waiting_on, "suspended")
            handle = asyncio.events.Handle(types.MethodType(noop, task), (), loop, contextvars.copy_context())
            python_events, c_events = run_step(python, handle, task), run_step(c, handle, task)
        finally:
            coro.close()
        assert c_events == python_events
        assert c_events[-1][0] & 0xFF == Kind.TASK_SUSPEND


# -- task names --------------------------------------------------------------------------------------


async def nothing() -> None:
    return None


NAMES = [
    "Task-",
    "Task-0",
    "Task-00",
    "Task-01",
    "Task-1",
    "Task-99999999999999999",
    "Task-100000000000000000",
    "Task-1a",
    "task-1",
    "Task-+1",
    "Task- 1",
    "Task-１２",
    "Task-٣",
    "Task-1\n",
    " Task-1",
]
name = st.one_of(st.sampled_from(NAMES), st.from_regex(r"\ATask-[0-9]{0,20}\Z"), st.text(max_size=24), st.integers())


@given(st.lists(name, min_size=1, max_size=5))
@settings(max_examples=100, deadline=None)
def test_a_new_task_is_described_alike_and_its_name_coded_alike(loop: asyncio.AbstractEventLoop, names: list) -> None:
    """TASK_CREATE, TASK_LOOP, TASK_FUNC and TASK_NAME; a default-looking name "Task-N" is stored as -N
    (in C, parsed there)."""
    interner = Interner()
    described = []
    for c in (False, True):
        hooks = install(interner, c)
        for given_name in names:
            coro = nothing()
            try:
                task = hooks.create_task(loop, coro, name=given_name)
                task._log_destroy_pending = False
            finally:
                coro.close()
        described.append([(code, g) for code, _, g in events(hooks.store)])
    assert described[1] == described[0]
    assert sum(1 for code, _ in described[0] if code & 0xFF == Kind.TASK_NAME) == len(names)


# -- plain callbacks ---------------------------------------------------------------------------------


def plain() -> None:
    return None


class Owner:
    def method(self) -> None:
        return None

    @classmethod
    def class_method(cls) -> None:
        return None

    @staticmethod
    def static_method() -> None:
        return None


CALLBACKS: list[tuple[Callable[..., Any], tuple]] = [
    (plain, ()),
    (lambda: None, ()),
    (Owner().method, ()),
    (Owner().method, ()),  # another instance, the same function
    (Owner.class_method, ()),
    (Owner.static_method, ()),
    (functools.partial(plain), ()),
    (len, ("abc",)),
    (math.sqrt, (4.0,)),
    (set().add, (1,)),
    (set().discard, (1,)),  # uvicorn's done-callback
    ({}.get, ("key",)),
    ([].append, (1,)),
    (collections.deque().append, (1,)),
    (array.array("b").append, (1,)),
    (io.StringIO().write, ("x",)),
    (str.upper, ("x",)),
    (sys.getrecursionlimit, ()),
    (contextvars.copy_context, ()),
]
SOURCES = ("soon", "timer", "io")


@given(st.lists(st.tuples(st.integers(0, len(CALLBACKS) - 1), st.sampled_from(SOURCES)), min_size=1, max_size=12))
@settings(max_examples=100, deadline=None)
def test_a_plain_callback_gets_the_same_name_and_source(loop: asyncio.AbstractEventLoop, calls: list) -> None:
    """CALLBACK_BEGIN's name and source (soon, timer, I/O) and CALLBACK_END, one callback after another
    (names are cached)."""
    interner = Interner()
    recorded = []
    for c in (False, True):
        hooks = install(interner, c)
        for index, source in calls:
            callback, args = CALLBACKS[index]
            context = contextvars.copy_context()
            handle: asyncio.Handle
            if source == "timer":
                handle = asyncio.events.TimerHandle(0.0, callback, args, loop, context)
            else:
                handle = asyncio.events.Handle(callback, args, loop, context)
            hooks.registry.local.io = {id(handle)} if source == "io" else set()
            hooks.handle_run(handle)
        hooks.registry.local.io = set()
        recorded.append([(code, g) for code, _, g in events(hooks.store)])
    assert recorded[1] == recorded[0]
    kinds = [code & 0xFF for code, _ in recorded[0]]
    assert kinds.count(Kind.CALLBACK_BEGIN) == kinds.count(Kind.CALLBACK_END) == len(calls)


QUEUERS = (None, 0, pack_waker(Waker.THREAD, 3), pack_waker(Waker.TASK, G), pack_waker(Waker.IO, 5))  # None: unstamped
OWN_WAKERS = {"soon": Waker.CALLBACK, "timer": Waker.TIMER, "io": Waker.IO}


def note_waker(local: Any, seen: list[int]) -> None:
    seen.append(local.cur)


@given(st.lists(st.tuples(st.sampled_from(SOURCES), st.sampled_from(QUEUERS)), min_size=1, max_size=8))
@settings(max_examples=100, deadline=None)
def test_a_plain_callback_wakes_on_behalf_of_what_queued_it(loop: asyncio.AbstractEventLoop, calls: list) -> None:
    """While a callback queued with ``call_soon`` runs, the waker is its handle's (what queued it), if stamped;
    a timer's, an I/O readiness callback's or an unstamped one's is the callback itself."""
    interner = Interner()
    seen: list[list[int]] = []
    for c in (False, True):
        hooks = install(interner, c)
        wakers: list[int] = []
        callback = functools.partial(note_waker, hooks.registry.local, wakers)
        for source, queued_by in calls:
            context = contextvars.copy_context()
            handle: asyncio.Handle
            if source == "timer":
                handle = asyncio.events.TimerHandle(0.0, callback, (), loop, context)
            elif queued_by is None:
                handle = asyncio.events.Handle(callback, (), loop, context)
            else:  # as the call_soon hook queues it
                handle = asyncio_hooks._ReadyHandle(callback, (), loop, context)
                handle._xt_ts, handle._xt_waker = 0, queued_by
            hooks.registry.local.io = {id(handle)} if source == "io" else set()
            hooks.handle_run(handle)
        hooks.registry.local.io = set()
        events(hooks.store)
        seen.append(wakers)
    assert seen[1] == seen[0]
    for (source, queued_by), waker in zip(calls, seen[0], strict=True):
        if source == "soon" and queued_by:
            assert waker == queued_by
        else:
            assert waker & WAKER_MASK == OWN_WAKERS[source]


# -- thread waits ------------------------------------------------------------------------------------


def at_depth(depth: int, then: Callable[[], None]) -> None:
    if depth:
        at_depth(depth - 1, then)
    else:
        then()


@given(st.lists(st.tuples(st.integers(0, 150), st.integers(0, 5), st.integers(0, 1 << 40)), min_size=1, max_size=5))
@settings(max_examples=60, deadline=None)
def test_a_wait_recorded_in_c_has_the_python_stack_key_and_events(waits: list) -> None:
    """Waits at generated depths (past thread_stacks.MAX_DEPTH, 128 frames, where both cut the stack)."""
    assert speedups is not None
    interner = Interner()
    python_store, c_rows = ListStore(), speedups.Rows()
    python_registry, c_registry = Registry(ListStore(), interner, set()), Registry(ListStore(), interner, set())
    python_stacks, c_stacks = FrameStacks(interner), FrameStacks(interner)
    keys: dict[str, list[tuple]] = {"python": [], "c": []}

    def spy(side: str, of_key: Callable[[tuple, Any], int]) -> Callable[[tuple, Any], int]:
        def looked_up(key: tuple, frame: Any) -> int:
            keys[side].append(key)
            return of_key(key, frame)

        return looked_up

    python_stacks.of_key = spy("python", python_stacks.of_key)  # type: ignore[method-assign,assignment]
    python_waits = Waits(python_store, python_registry, python_stacks, 0)
    python_waits._native = None  # its Python path: what records a wait where the C module is not built
    try:
        speedups.set_wait_sink(
            threshold=0,
            rows=c_rows,
            threads=c_registry.threads,
            thread_g=c_registry.thread_g,
            of_key=spy("c", c_stacks.of_key),
        )
        for depth, category, waker in waits:

            def both(category: int = category, waker: int = waker) -> None:
                frame = sys._getframe(1)  # the same frame, at the same instruction, for both
                assert python_waits.record(100, 200, category, frame, waker)
                assert speedups.record_wait(100, 200, category, frame, waker)

            at_depth(depth, lambda: both())
    finally:
        speedups.clear_wait_sink()
    assert keys["c"] == list(
        dict.fromkeys(keys["python"])
    )  # the C hook asks for a key's stack once, then finds it in its table
    blocks = (Kind.THREAD_BLOCK, Kind.THREAD_UNBLOCK)
    assert events(c_rows) == [event for event in events(python_store) if event[0] & 0xFF in blocks]


# -- a flight recorder's dropped chunks ---------------------------------------------------------------


@given(
    st.lists(st.tuples(st.integers(0, 255), st.integers(-(1 << 55), (1 << 55) - 1), st.integers(0, 4)), max_size=300),
    st.lists(st.integers(0, (1 << 62) - 1), min_size=5, max_size=5, unique=True),
    st.sets(st.integers(0, 4)),
    st.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_the_kept_positions_are_the_python_ones_for_any_kind_and_goroutine(
    chunk: list, ids: list, live: set, views: bool
) -> None:
    assert speedups is not None
    codes = array.array("q", [pack(kind, arg) for kind, arg, _ in chunk])
    gs = array.array("q", [ids[g] for _, _, g in chunk])
    alive = {ids[g] for g in live}
    columns: tuple[Any, Any] = (memoryview(codes), memoryview(gs)) if views else (codes, gs)
    assert speedups.kept_positions(*columns, _WANTED, _OF_TASK_TABLE, alive) == _kept_positions(*columns, alive)


@given(st.lists(st.integers(0, (1 << 64) - 1), max_size=3 * 200).map(lambda values: values[: len(values) // 3 * 3]))
@settings(max_examples=200, deadline=None)
def test_byte_planes_are_the_python_ones_for_any_events(values: list) -> None:
    """Events as byte planes (format/planes.py): the C module's transform and its inverse, and the writer's
    compression of the transform in one call."""
    raw = array.array("Q", values).tobytes()
    stored = planes.python_to_planes(raw)
    assert planes.to_planes(raw) == stored
    assert planes.from_planes(stored) == raw == planes.python_from_planes(stored)
    if hasattr(speedups, "compress_whole"):
        assert zlib.decompress(speedups.compress_whole(raw, 1, planes=True)) == stored


def test_the_byte_planes_are_made_in_c() -> None:
    assert planes.to_planes is not planes.python_to_planes
    assert planes.from_planes is not planes.python_from_planes


def test_byte_planes_of_a_payload_that_is_no_whole_events_are_refused_alike() -> None:
    transforms = [planes.to_planes, planes.from_planes, planes.python_to_planes, planes.python_from_planes]
    if hasattr(speedups, "compress_whole"):
        transforms.append(functools.partial(speedups.compress_whole, level=1, planes=True))
    for transform in transforms:
        with pytest.raises(ValueError, match="not a whole number of 24-byte events"):
            transform(b"\0" * 25)
