"""What the recorder replaces while tracing passes for the original, as real libraries need.

First, one test per guarantee over everything ``Patcher.replace`` put in place
in one recording (found through the patcher, so a hook added later is checked
too): names and doc, ``__wrapped__`` and signature, ``isinstance`` and repr,
binding as a method, pickling and copying, the original's own name, and
``stop()`` putting it back. Then the objects made while tracing (locks,
asyncio's handles) and the real cases: trio, anyio on trio, process pools and
``multiprocessing.Pool`` with fork and spawn, a spawned ``multiprocessing``
manager, anyio's worker processes, copies of objects holding locks.
"""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures
import concurrent.futures.thread
import copy
import inspect
import io
import multiprocessing
import multiprocessing.managers
import os
import pickle
import queue
import re
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from time import sleep as sleep_bound_before_tracing
from types import BuiltinFunctionType
from typing import Any

import anyio
import pytest
import trio

import exectracer
from exectracer.record import current

from programs import trio_threads

pytestmark = pytest.mark.recorder
PROGRAMS = Path(__file__).parent / "programs"
PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)
MISSING = object()
ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
assert ssl and subprocess and concurrent.futures.thread  # imported so that their hooks are installed at start
assert multiprocessing.managers  # its registry made before tracing: it holds the original lock factories


@dataclass
class Replaced:
    """One attribute the recorder replaced, and what was seen of it while tracing."""

    owner: Any
    name: str
    original: Any  # what it had before tracing
    value: Any  # what it had while tracing
    pickled: list[Outcome] = field(default_factory=list)  # pickle.dumps(value, protocol), for each protocol
    original_pickled: list[Outcome] = field(default_factory=list)  # the same of the original, its name taken
    own_name_found: Any = MISSING  # what the original's own module.qualname found

    @property
    def label(self) -> str:
        return f"{getattr(self.owner, '__qualname__', None) or self.owner.__name__}.{self.name}"

    @property
    def is_class(self) -> bool:
        """The lock classes: their instances pass for real locks (tested below), not the classes themselves."""
        return isinstance(self.value, type)


@dataclass(frozen=True)
class Outcome:
    """A call's result, or the type of the error it raised."""

    value: Any = None
    error: type[BaseException] | None = None

    @staticmethod
    def of(call: Callable[[], Any]) -> Outcome:
        try:
            return Outcome(value=call())
        except Exception as exc:
            return Outcome(error=type(exc))


def pickles(obj: Any) -> list[Outcome]:
    """``pickle.dumps(obj, protocol)`` for each protocol."""
    return [Outcome.of(lambda p=protocol: pickle.dumps(obj, p)) for protocol in PROTOCOLS]


IMMUTABLE_TYPE = 1 << 8  # Py_TPFLAGS_IMMUTABLETYPE (3.10+): a static or immutable class


def own_name(obj: Any) -> tuple[str, str] | None:
    """The module and qualified name pickle would look ``obj`` up by (None if it has none)."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return (module, qualname) if isinstance(module, str) and isinstance(qualname, str) else None


def find(module: str, qualname: str) -> Any:
    found: Any = sys.modules.get(module, MISSING)
    for part in qualname.split("."):
        found = getattr(found, part, MISSING)
    return found


@pytest.fixture(scope="module")
def replaced() -> list[Replaced]:
    """Everything the recorder replaced in one recording (all hooks on), with what was seen of it meanwhile."""
    exectracer.start(io.BytesIO())
    try:
        seen: dict[tuple[int, str], Replaced] = {}
        for owner, name, original in current.recording._patcher.replaced():
            # replaced twice (a selector's select, by the asyncio hooks and the wait hooks): the first original
            seen.setdefault((id(owner), name), Replaced(owner, name, original, vars(owner)[name]))
        entries = list(seen.values())
        for entry in entries:
            entry.pickled, entry.original_pickled = pickles(entry.value), pickles(entry.original)
            named = own_name(entry.original)
            if named is not None:
                entry.own_name_found = find(*named)
    finally:
        exectracer.stop()
    labels = {entry.label for entry in entries}
    for expected in ("Handle._run", "BaseEventLoop._call_soon", "time.sleep", "posix.read", "socket.recv", "Lock"):
        assert any(label.endswith(expected) for label in labels), f"{expected} not in {sorted(labels)}"
    return entries


def offenders(entries: list[Replaced], broken: Callable[[Replaced], object]) -> list[str]:
    """The entries for which ``broken(entry)`` says what is wrong (a true value)."""
    return [f"{entry.label}: {problem}" for entry in entries if (problem := broken(entry))]


def test_every_replacement_has_the_originals_names_and_doc(replaced):
    def broken(entry: Replaced) -> object:
        names = ("__module__", "__qualname__", "__name__", "__doc__") if callable(entry.original) else ("__doc__",)
        return [
            f"{name} {getattr(entry.value, name, MISSING)!r} != {getattr(entry.original, name, MISSING)!r}"
            for name in names
            if getattr(entry.value, name, MISSING) != getattr(entry.original, name, MISSING)
        ]

    assert offenders([e for e in replaced if not e.is_class], broken) == []


def signature(obj: Any) -> object:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError) as exc:
        return type(exc)


def test_every_replacement_unwraps_to_the_original_and_has_its_signature(replaced):
    def broken(entry: Replaced) -> object:
        if inspect.unwrap(entry.value) is not entry.original:
            return f"unwraps to {inspect.unwrap(entry.value)!r}"
        if signature(entry.value) != signature(entry.original):
            return f"signature {signature(entry.value)} != {signature(entry.original)}"
        return None

    assert offenders([e for e in replaced if callable(e.original) and not e.is_class], broken) == []


def test_every_replacement_passes_isinstance_and_repr_as_the_original(replaced):
    def broken(entry: Replaced) -> object:
        if entry.value.__class__ is not entry.original.__class__ or not isinstance(entry.value, type(entry.original)):
            return f"__class__ {entry.value.__class__!r} != {entry.original.__class__!r}"
        if ADDRESS.sub("0x", repr(entry.value)) != ADDRESS.sub("0x", repr(entry.original)):
            return f"repr {entry.value!r} != {entry.original!r}"
        return None

    assert offenders([e for e in replaced if not e.is_class], broken) == []


def test_every_replacement_is_bound_as_a_method_only_where_the_original_is(replaced):
    def broken(entry: Replaced) -> object:
        binds, original_binds = (
            getattr(type(obj), "__get__", None) is not None for obj in (entry.value, entry.original)
        )
        return binds != original_binds and f"{'is' if binds else 'is not'} a descriptor, unlike the original"

    assert offenders([e for e in replaced if callable(e.original) and not e.is_class], broken) == []


def test_every_replacement_pickles_and_copies_as_the_original(replaced):
    # now that tracing stopped, every name finds its original again: what pickle makes of it untraced
    def broken(entry: Replaced) -> object:
        for protocol, traced, untraced in zip(PROTOCOLS, entry.pickled, pickles(entry.original), strict=True):
            if traced.error is not untraced.error:
                return f"protocol {protocol}: {traced} where the original gives {untraced}"
            if traced.error is None and pickle.loads(traced.value) is not pickle.loads(untraced.value):
                return f"protocol {protocol}: unpickles to {pickle.loads(traced.value)!r}"
        for how in (copy.copy, copy.deepcopy):
            traced, untraced = Outcome.of(partial(how, entry.value)), Outcome.of(partial(how, entry.original))
            if traced.error is not untraced.error or (
                # a method descriptor copies by its class's real method: socket.socket.recv gives _socket's
                traced.error is None and traced.value not in (entry.value, entry.original)
            ):
                return f"{how.__name__}: {traced} where the original gives {untraced}"
        return None

    assert offenders(replaced, broken) == []


def test_timed_builtins_pickle_to_the_same_bytes_as_the_originals():
    originals = [time.sleep, os.read, select.select, socket.socket.recv]
    untraced = [[pickle.dumps(func, protocol) for protocol in PROTOCOLS] for func in originals]
    with exectracer.trace(io.BytesIO()):
        hooked = [time.sleep, os.read, select.select, socket.socket.recv]
        traced = [[pickle.dumps(func, protocol) for protocol in PROTOCOLS] for func in hooked]
        assert [copy.copy(func) for func in hooked[:3]] == hooked[:3]  # as a builtin is, copied unchanged
        assert all(func is not original for func, original in zip(hooked, originals, strict=True))  # the hooks
    assert traced == untraced
    assert all(pickle.loads(data) is func for func, each in zip(originals, traced, strict=True) for data in each)


def test_a_builtin_saved_before_tracing_still_pickles(replaced):
    def broken(entry: Replaced) -> object:
        for protocol, traced in zip(PROTOCOLS, entry.original_pickled, strict=True):
            if traced.error is not None:
                return f"protocol {protocol}: {traced.error.__name__}"
            if pickle.loads(traced.value) is not entry.original:
                return f"protocol {protocol}: unpickles to {pickle.loads(traced.value)!r}"
        return None

    # (a Python function cannot be helped: pickle asks no reduction table for one, docs/recording.md says so)
    builtins = [e for e in replaced if type(e.original) is BuiltinFunctionType]
    assert builtins and offenders(builtins, broken) == []


def test_the_originals_own_name_finds_the_replacement(replaced):
    def broken(entry: Replaced) -> object:
        named = own_name(entry.original)
        if named is None or find(*named) is not entry.original:  # pickle does not take it by that name
            return None
        owner = find(named[0], named[1].rpartition(".")[0]) if "." in named[1] else None
        if isinstance(owner, type) and owner.__flags__ & IMMUTABLE_TYPE and owner is not entry.owner:
            # a method of a class no one can change (uvloop's Cython loop), replaced on the subclass programs use;
            # it pickles as getattr(that class, name): test_every_replacement_pickles_and_copies_as_the_original
            return None
        if entry.own_name_found is not entry.value:
            return f"{'.'.join(named)} found {entry.own_name_found!r}"
        return None

    # (threading.Lock replaces _thread.allocate_lock, which keeps its name: every caller of it, the import system's
    # locks among them, would get the recorder's lock)
    assert offenders([e for e in replaced if not e.is_class], broken) == []
    assert any(e.label == "posix.read" for e in replaced)  # os.read is posix.read while tracing too


def test_stop_puts_every_original_back(replaced):
    assert offenders(replaced, lambda e: getattr(e.owner, e.name) is not e.original and "still replaced") == []


# -- objects made while tracing ---------------------------------------------------------------------------------


def test_locks_made_while_tracing_pass_for_real_locks():
    real_lock, real_rlock = threading.Lock(), threading.RLock()
    lock_factory = threading.Lock
    with exectracer.trace(io.BytesIO()):
        lock, rlock = threading.Lock(), threading.RLock()
        early_isinstance = isinstance(real_lock, threading.Lock) if isinstance(lock_factory, type) else True
        lock_class_pickle = pickle.dumps(threading.Lock)
        assert type(lock) is not type(real_lock)  # the recorder's own class: only type() tells
    for made, real in ((lock, real_lock), (rlock, real_rlock)):
        assert made.__class__ is type(real) and made.__class__.__module__ == "_thread"  # trio's check
        assert isinstance(made, type(real))
        assert repr(made) == ADDRESS.sub(f"{id(made):#x}", repr(real))
        for refuse in (copy.copy, copy.deepcopy, pickle.dumps):
            with pytest.raises(TypeError) as theirs:
                refuse(real)
            with pytest.raises(TypeError) as ours:
                refuse(made)
            assert str(ours.value) == str(theirs.value)
    assert isinstance(lock, _thread.LockType) and isinstance(rlock, _thread.RLock)
    assert early_isinstance  # where threading.Lock is a class (3.13), a real lock is one while tracing
    assert pickle.loads(lock_class_pickle) is threading.Lock  # the class pickles as the name it replaced


def test_an_asyncio_handle_made_while_tracing_passes_for_a_handle():
    def handles() -> tuple[asyncio.Handle, str, list[Outcome]]:
        loop = asyncio.new_event_loop()
        try:
            handle = loop.call_soon(print)
            return handle, repr(handle), pickles(handle)  # (a Handle does not pickle, by protocol its own way)
        finally:
            loop.close()

    untraced = handles()
    with exectracer.trace(io.BytesIO()):
        traced = handles()
    assert traced[0].__class__ is asyncio.Handle and isinstance(traced[0], asyncio.Handle)
    assert traced[1] == untraced[1] == "<Handle print()>"
    assert [outcome.error for outcome in traced[2]] == [outcome.error for outcome in untraced[2]]
    copied = copy.copy(traced[0])
    assert type(copied) is asyncio.Handle and copied._callback is print and not hasattr(copied, "_xt_ts")


def test_a_builtin_in_a_class_body_is_not_bound_to_instances():
    with exectracer.trace(io.BytesIO()):

        class Waiter:
            nap = time.sleep
            ready = select.select

        a, b = socket.socketpair()
        with a, b:
            b.send(b"x")
            assert Waiter().ready([a], [], [], 5) == ([a], [], [])
        assert Waiter().nap(0) is None
        assert Waiter.nap is time.sleep


class Guarded:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rlock = threading.RLock()
        self.queue: queue.Queue[int] = queue.Queue()
        self.event = threading.Event()
        self.items = [1, 2]


def test_copying_objects_that_hold_locks_behaves_as_untraced():
    def copies() -> list[object]:
        guarded = Guarded()
        shallow = copy.copy(guarded)
        deep = Outcome.of(lambda: copy.deepcopy(guarded))
        return [shallow.lock is guarded.lock and shallow.items is guarded.items, deep.error]

    def deep_error(make: Callable[[], object]) -> str:
        try:
            copy.deepcopy(make())
        except TypeError as exc:
            return str(exc)
        return "copied"

    untraced = copies(), [deep_error(make) for make in (threading.Condition, threading.Semaphore, Guarded)]
    with exectracer.trace(io.BytesIO()):
        traced = copies(), [deep_error(make) for make in (threading.Condition, threading.Semaphore, Guarded)]
    assert traced == untraced
    assert untraced[0] == [True, TypeError]


# -- real programs ----------------------------------------------------------------------------------------------


def test_trio_runs_under_tracing_as_untraced():
    expected = trio.run(trio_threads.main)
    with exectracer.trace(io.BytesIO()):
        assert trio.run(trio_threads.main) == expected == [1, 11, 21]


def test_a_trio_program_imported_while_tracing_runs(tmp_path):
    program = str(PROGRAMS / "trio_threads.py")
    untraced = subprocess.run([sys.executable, program], capture_output=True, text=True, timeout=120)
    traced = subprocess.run(
        [sys.executable, "-m", "exectracer", "run", "-o", str(tmp_path / "t.xtrace"), program],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert untraced.returncode == 0, untraced.stderr
    assert traced.returncode == 0, traced.stderr
    assert traced.stdout == untraced.stdout == "[1, 11, 21]\n"


def _with_contended_lock_under_blockbuster() -> str:
    """``with lock:`` in a coroutine, the lock held by another thread, blockbuster watching the loop's thread."""
    from blockbuster import BlockingError, blockbuster_ctx

    lock, held = threading.Lock(), threading.Event()

    def holder() -> None:
        with lock:
            held.set()
            time.sleep(0.3)

    async def main() -> str:
        thread = threading.Thread(target=holder)
        thread.start()
        held.wait()
        try:
            with blockbuster_ctx(), lock:
                pass
        except BlockingError as exc:
            return f"BlockingError: {exc}"
        finally:
            thread.join()
        return "done"

    return asyncio.run(main())


def test_with_lock_waits_where_it_waits_untraced():
    """A contended ``with lock:`` blocks in the real lock's ``__enter__``, as untraced, not in its ``acquire``:
    blockbuster, which refuses a blocking ``acquire`` on an event loop's thread, lets it pass traced as untraced
    (anyio's test suite runs under it); the wait is still recorded."""
    pytest.importorskip("blockbuster")
    expected = _with_contended_lock_under_blockbuster()
    buffer = io.BytesIO()
    with exectracer.trace(buffer):
        assert _with_contended_lock_under_blockbuster() == expected == "done"
    assert exectracer.load(buffer.getvalue()).analysis.profile("sync").total() > 0


def test_anyio_on_trio_crosses_threads_under_tracing():
    async def main() -> list[int]:
        def in_thread(i: int) -> int:
            return anyio.from_thread.run_sync(lambda: i * 2) + 1

        return [await anyio.to_thread.run_sync(in_thread, i) for i in range(3)]

    expected = anyio.run(main, backend="trio")
    with exectracer.trace(io.BytesIO()):
        assert anyio.run(main, backend="trio") == expected == [1, 3, 5]


@pytest.fixture(params=["fork", "spawn"])
def start_method(request: pytest.FixtureRequest) -> Iterator[str]:
    """How the pool starts its processes. Forking while the tracer's threads run is on purpose (3.12+ warns)."""
    if request.param not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {request.param} here")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
        yield request.param


def test_a_process_pool_runs_hooked_builtins(tmp_path, start_method):
    context = multiprocessing.get_context(start_method)
    with exectracer.trace(tmp_path / "t.xtrace"):
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
            slept = pool.submit(time.sleep, 0.1)
            pid = pool.submit(os.getpid)
            slept_early = pool.submit(sleep_bound_before_tracing, 0.01)  # the original, its name taken
            assert slept.result(timeout=60) is None and slept_early.result(timeout=60) is None
            assert pid.result(timeout=60) != os.getpid()
    assert exectracer.load(tmp_path / "t.xtrace").lost.complete


def test_a_multiprocessing_pool_maps_hooked_builtins(tmp_path, start_method):
    with exectracer.trace(tmp_path / "t.xtrace"):
        with multiprocessing.get_context(start_method).Pool(2) as pool:
            assert pool.map(time.sleep, [0.01] * 4) == [None] * 4
            assert pool.map(abs, [-1, -2, 3]) == [1, 2, 3]
    assert exectracer.load(tmp_path / "t.xtrace").lost.complete


def test_anyio_runs_a_hooked_builtin_in_a_worker_process():
    async def main() -> object:
        return await anyio.to_process.run_sync(time.sleep, 0.01)

    with exectracer.trace(io.BytesIO()):
        assert anyio.run(main) is None


def test_a_spawned_multiprocessing_manager_starts_and_serves_locks():
    # the manager's registry, pickled for its server process, holds threading.Lock and threading.RLock themselves
    with exectracer.trace(io.BytesIO()):
        with multiprocessing.get_context("spawn").Manager() as manager:
            lock, shared = manager.RLock(), manager.dict(a=1)
            with lock:
                shared["b"] = 2
            assert dict(shared) == {"a": 1, "b": 2}
