"""Trio, recorded through its own instrumentation API (``trio.abc.Instrument``), in asyncio's events.

Each trio run is a loop (LOOP_CLASS ``trio._core._run.Runner``) and each of
its tasks a goroutine:

* ``task_spawned``: TASK_CREATE (parent: the task, or else the thread, that
  spawned it), TASK_LOOP, TASK_FUNC, TASK_NAME;
* ``task_scheduled``: the task's next TASK_READY, kept until its step and
  naming the waker: the task running then (or the thread that queued the
  ``run_sync_soon`` callback running then); outside any step, the I/O
  manager between the run's I/O wait and the end of its event processing,
  the deadlines after that (a sleep or timeout that expired);
* ``before_task_step``/``after_task_step``: [TASK_READY,] TASK_STEP, then
  TASK_SUSPEND with the await chain and its category (``trio_waits.py``),
  or TASK_DONE, in one append at the end of the step;
* ``task_exited``: TASK_DONE, its outcome taken from ``Runner.task_exited``;
* ``before_io_wait``/``after_io_wait``: LOOP_IDLE_BEGIN/END around a
  blocking I/O wait (not in guest mode: the host loop runs meanwhile);
* ``before_run``/``after_run``: LOOP_START/LOOP_STOP.

trio's own two tasks, ``<init>`` and the one that runs ``run_sync_soon``
callbacks, are the run's machinery, not the program's: their steps are
CALLBACK_BEGIN/END on the loop, like asyncio's own callbacks.

The instrument goes on every run set up while tracing (``setup_runner``), on
the run of the thread that starts tracing, and, through their entry queue,
on runs going in other threads. At stop it is silenced at once and removed
from each run in that run's thread.
"""

from __future__ import annotations

import operator
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import trio

from ..format.events import (
    ARG_SHIFT,
    CALLBACK_SHIFT,
    WAKER_MASK,
    WAKER_SHIFT,
    CallbackSource,
    Kind,
    Outcome,
    Waker,
    pack,
    pack_waker,
)
from .handoff import GilHandoff
from .hook_errors import caught
from .interner import Interner, function_name
from .native import speedups
from .patcher import Patcher
from .registry import Registry, task_name_code
from .sampler import _frames_reader
from .store import EventStore
from .trio_waits import TrioChains

_TASK_CREATE, _TASK_LOOP = int(Kind.TASK_CREATE), int(Kind.TASK_LOOP)
_READY, _STEP = int(Kind.TASK_READY), int(Kind.TASK_STEP)
_CALLBACK_BEGIN, _CALLBACK_END = int(Kind.CALLBACK_BEGIN), int(Kind.CALLBACK_END)
_IDLE_BEGIN, _IDLE_END, _LOOP_STOP = int(Kind.LOOP_IDLE_BEGIN), int(Kind.LOOP_IDLE_END), int(Kind.LOOP_STOP)
_DONE_RETURNED, _DONE_RAISED, _DONE_CANCELLED = (
    pack(Kind.TASK_DONE, o) for o in (Outcome.RETURNED, Outcome.RAISED, Outcome.CANCELLED)
)
_TASK_WAKER, _CALLBACK_WAKER = int(Waker.TASK), int(Waker.CALLBACK)
_SOURCE_OF_WAKER = {int(Waker.IO): int(CallbackSource.IO), int(Waker.TIMER): int(CallbackSource.TIMER)}


def install(
    patcher: Patcher,
    events: EventStore,
    registry: Registry,
    interner: Interner,
    warn: Callable[[str], None],
    handoff: GilHandoff,
) -> TrioHooks | None:
    """Record trio runs for one recording; ``patcher.restore()`` undoes the patches.

    Returns the hooks, whose ``stop`` is to be called just before stopping:
    it records the tasks still queued to run and takes the instrument off
    every run (None: this trio cannot be hooked).
    """
    core: Any = sys.modules.get("trio._core._run")
    queue: Any = sys.modules.get("trio._core._entry_queue")
    missing = [name for owner, name in _NEEDED if _find(core, queue, owner, name) is None]
    if missing:
        warn(f"trio {trio.__version__} cannot be hooked (it has no {', '.join(missing)}): its tasks are not traced")
        return None
    hooks = TrioHooks(events, registry, interner, core, queue, handoff)
    _hook_setup_runner(patcher, hooks, core)
    _hook_task_exited(patcher, hooks, core.Runner)
    _hook_run_sync_soon(patcher, hooks, queue.EntryQueue)
    hooks.attach_running()
    return hooks


# what the hooks use of trio's internals (``trio._core._run``, ``trio._core._entry_queue``)
_NEEDED = (
    ("run", "setup_runner"),
    ("run", "run"),
    ("run", "GLOBAL_RUN_CONTEXT"),
    ("run", "Runner.task_exited"),
    ("run", "Runner.init"),
    ("entry_queue", "EntryQueue.task"),
    ("entry_queue", "EntryQueue.run_sync_soon"),
)


def _find(core: Any, queue: Any, owner: str, path: str) -> Any:
    """The object at ``path`` in trio's run (``owner`` "run") or entry queue module; None if it has none."""
    found = core if owner == "run" else queue
    for part in path.split("."):
        found = getattr(found, part, None)
    return found


class TrioHooks:
    """The trio hooks of one recording, and what they share: where events go, the ids, the await chains, the runs."""

    def __init__(
        self, events: EventStore, registry: Registry, interner: Interner, core: Any, queue: Any, handoff: GilHandoff
    ) -> None:
        self.emit = events.extend
        self.handoff = handoff
        self.clock = time.perf_counter_ns
        self.registry = registry
        self.local = registry.local
        self.get_cur, self.set_cur = _cur_accessors(registry.local)
        self.interner = interner
        self.chains = TrioChains(interner)
        self.core = core
        self.runs: dict[Any, TrioRun] = {}  # each instrumented run (trio's Runner) -> its instrument
        self.active = True
        self.exits = threading.local()  # ``task`` and ``outcome``: what Runner.task_exited is handling
        self.run_sync_soon = queue.EntryQueue.run_sync_soon  # the original: thread-safe entry into a run
        # sys._current_frames, with collections held off where one it starts can deadlock (3.11, the sampler's rule)
        self.current_frames = _frames_reader(speedups())
        self.machinery: dict[Any, int] = {}  # the code of trio's own tasks -> the string id of its name
        for func in (core.Runner.init, queue.EntryQueue.task):
            code = func.__code__
            self.machinery[code] = interner.string(function_name(code, func.__module__, func.__qualname__))
        self.timer_waker = pack_waker(Waker.TIMER, interner.string(f"{core.__name__}.Deadlines.expire"))
        self._io_wakers: dict[type, int] = {}

    def io_waker(self, manager: Any) -> int:
        """The waker code of a run's I/O manager processing the events its wait returned."""
        kind = type(manager)
        waker = self._io_wakers.get(kind)
        if waker is None:
            name = f"{kind.__module__}.{kind.__qualname__}.process_events"
            waker = self._io_wakers[kind] = pack_waker(Waker.IO, self.interner.string(name))
        return waker

    def describe(self, task: Any, g: int, parent: int, ts: int, lid: int) -> None:
        """Emit TASK_CREATE and the events that describe a trio task."""
        out = [_TASK_CREATE | parent << ARG_SHIFT, ts, g, _TASK_LOOP | lid << ARG_SHIFT, ts, g]
        coro = task.coro
        code = getattr(coro, "cr_code", None)
        if code is not None:  # an anyio task group's task runs the function given to start_soon: see wrappers
            out += (self.registry.task_func(coro, code), ts, g)
        out += (task_name_code(self.interner, task.name), ts, g)
        self.emit(out)

    def machinery_name(self, task: Any) -> int:
        """The string id of trio's own task ``task`` (0: a task of the program)."""
        return self.machinery.get(getattr(task.coro, "cr_code", None), 0)

    def done_code(self, task: Any) -> int:
        """The TASK_DONE code of ``task``, exiting now (its outcome as ``Runner.task_exited`` was given it)."""
        exits = self.exits
        if getattr(exits, "task", None) is not task:
            return _DONE_RETURNED  # not through Runner.task_exited: trio's own bookkeeping, never an error
        error = getattr(exits.outcome, "error", None)
        if error is None:
            return _DONE_RETURNED
        return _DONE_CANCELLED if isinstance(error, trio.Cancelled) else _DONE_RAISED

    # -- runs --------------------------------------------------------------

    def attach_running(self) -> None:
        """Instrument the runs already going: the calling thread's at once, the others' from their entry queue."""
        here = getattr(self.core.GLOBAL_RUN_CONTEXT, "runner", None)
        if here is not None:
            try:
                self.attach(here)
            except Exception:
                caught("trio.attach")
        for runner in self._runs_in_other_threads():
            try:
                self.run_sync_soon(runner.entry_queue, self._attach_job, runner)
            except trio.RunFinishedError:
                pass  # it ended meanwhile: nothing to record
            except Exception:
                caught("trio.attach")

    def _runs_in_other_threads(self) -> list[Any]:
        """The runners of the ``trio.run`` calls other threads are in (a guest run has no such frame)."""
        run_code, runner_type, me = self.core.run.__code__, self.core.Runner, threading.get_ident()
        found = []
        for ident, top in self.current_frames().items():
            frame: FrameType | None = top
            while frame is not None and ident != me:
                if frame.f_code is run_code:
                    runner = frame.f_locals.get("runner")
                    if type(runner) is runner_type and runner not in self.runs:
                        found.append(runner)
                    break
                frame = frame.f_back
        return found

    def _attach_job(self, runner: Any) -> None:
        """``attach`` as a callback of the run's entry queue, in its thread; never raises (that would end the run)."""
        try:
            if self.active and runner not in self.runs:
                self.attach(runner)
        except Exception:
            caught("trio.attach")

    def attach(self, runner: Any) -> None:
        """Instrument a run that is going, from its own thread: its tasks are described as they are now."""
        run = TrioRun(self, runner)
        self.runs[runner] = run
        runner.instruments.add_instrument(run)
        try:
            run.adopt(runner)
        except BaseException:
            self.runs.pop(runner, None)
            run.silence()
            _remove(runner, run)
            raise

    def new_run(self, runner: Any) -> None:
        """Instrument a run being set up (in its thread, before it starts)."""
        if self.active:
            run = TrioRun(self, runner)
            self.runs[runner] = run
            runner.instruments.add_instrument(run)

    def stop(self) -> None:
        """Record what is still queued to run, silence every instrument and take it off its run."""
        self.active = False
        me = threading.get_ident()
        for runner, run in list(self.runs.items()):
            try:
                run.finish(here=run.thread == me)
            except Exception:
                caught("trio.stop")
            try:
                if run.thread == me:
                    _remove(runner, run)
                else:
                    self.run_sync_soon(runner.entry_queue, _remove, runner, run)
            except trio.RunFinishedError:
                pass  # it ended meanwhile: the instrument went with it
            except Exception:
                caught("trio.stop")
        self.runs.clear()

    def abandon(self) -> None:
        """In a forked child: record nothing more (the recording is gone), and take the instrument off the run of
        this thread, the only one the child has."""
        self.active = False
        me = threading.get_ident()
        for runner, run in list(self.runs.items()):
            run.silence()
            if run.thread == me:
                _remove(runner, run)
        self.runs.clear()


def _cur_accessors(local: Any) -> tuple[Callable[[Any], int], Callable[[Any, int], None]]:
    """``get(local)`` and ``set(local, value)`` for the hook state's ``cur``: with the C hooks, the functions
    behind its property, called directly (the hooks use it at every step)."""
    prop = getattr(type(local), "cur", None)
    if isinstance(prop, property) and prop.fget is not None and prop.fset is not None:
        return prop.fget, prop.fset
    return operator.attrgetter("cur"), _set_cur


def _set_cur(local: Any, value: int) -> None:
    local.cur = value


def _remove(runner: Any, run: TrioRun) -> None:
    """Take ``run`` off its runner's instruments (in the run's thread: trio's own code reads them unlocked)."""
    try:
        runner.instruments.remove_instrument(run)
    except KeyError:
        pass  # trio already removed it
    except Exception:
        caught("trio.stop")


class TrioRun(trio.abc.Instrument):
    """The instrument on one trio run: its loop id, its tasks' ids, and the step it runs.

    The hooks trio calls are closures made by :func:`_hooks`, stored on the
    instance (trio looks each up by name at every call): their state lives
    in closure cells, cheaper to reach than attributes. ``silence`` drops
    them, leaving the base class's hooks, which do nothing.
    """

    def __init__(self, shared: TrioHooks, runner: Any) -> None:
        self.runner = runner
        self.thread = threading.get_ident()  # the thread the run's steps run in
        self.gs: dict[Any, int] = {}  # task -> goroutine id
        self.machinery: dict[Any, int] = {}  # trio's own task -> the string id of its name
        self.pending: dict[Any, tuple[int, int]] = {}  # task queued to run -> (TASK_READY code, ts)
        hooks, self.adopt, self._finish = _hooks(shared, self)
        vars(self).update(hooks)
        self._hook_names = tuple(hooks)

    def finish(self, here: bool) -> None:
        """Record what is still queued (and, if ``here``, the step running in this thread), then silence the hooks."""
        try:
            self._finish(here)
        finally:
            self.silence()

    def silence(self) -> None:
        """Stop recording: trio calls the base class's hooks from now on."""
        for name in self._hook_names:
            vars(self).pop(name, None)


def _hooks(
    shared: TrioHooks, run: TrioRun
) -> tuple[dict[str, Callable[..., None]], Callable[[Any], None], Callable[[bool], None]]:
    """The instrument's hooks for one run, and the functions that adopt a run already going and finish recording.

    The waker a ``task_scheduled`` names is kept ready-made as a TASK_READY
    code (``ready_code``): the running task's during its step, the run's
    phase between steps (its thread before the first I/O wait, then the I/O
    manager, then the deadlines), and 0 while trio's own task runs a
    callback, whose waker is read from the hook state (``_Woken`` sets it).
    """
    emit, clock, local, registry, handoff = shared.emit, shared.clock, shared.local, shared.registry, shared.handoff
    get_cur, set_cur = shared.get_cur, shared.set_cur
    code_for, describe, done_code, machinery_name = (
        shared.chains.code_for,
        shared.describe,
        shared.done_code,
        shared.machinery_name,
    )
    new_g, thread_g, current_g = registry.new_g, registry.thread_g, registry.current_g
    runner, gs, machinery, pending = run.runner, run.gs, run.machinery, run.pending
    io_code = _READY | shared.io_waker(runner.io_manager) << ARG_SHIFT
    timer_code = _READY | shared.timer_waker << ARG_SHIFT
    lid = 0
    guest = False  # a guest run: its steps run in the host loop's callbacks, each with its own waker code
    prev = 0  # the hook state's waker code outside the run's steps (read at each step in a guest run)
    phase_code = ready_code = 0
    step_g = 0  # the task whose step runs (0: none, or trio's own task)
    callback = 0  # the string id of trio's own task, while its step runs
    start = exited = 0
    ready: tuple[int, int] | None = None  # the TASK_READY (code, ts) of the step running
    idle_from = -1  # len(pending) when the run went idle (-1: not idle)

    def started(ts: int) -> None:
        nonlocal lid, guest, prev, phase_code, ready_code
        guest = bool(getattr(runner, "is_guest", False))
        prev = get_cur(local)
        lid = registry.loop_id(runner)
        thread = thread_g()
        # the first task is made ready by the thread that starts the run
        phase_code = ready_code = _READY | pack_waker(Waker.THREAD, thread) << ARG_SHIFT
        emit((pack(Kind.LOOP_START, thread), ts, lid))

    def before_run() -> None:
        try:
            started(clock())
        except Exception:
            caught("trio.before_run")

    def after_run() -> None:
        try:
            emit((_LOOP_STOP, clock(), lid))
            registry.forget_loop(runner)
            shared.runs.pop(runner, None)
        except Exception:
            caught("trio.after_run")

    def task_spawned(task: Any) -> None:
        try:
            ts = clock()
            sid = machinery_name(task)
            if sid:
                machinery[task] = sid
            else:
                g = gs[task] = new_g()
                describe(task, g, current_g(), ts, lid)
        except Exception:
            caught("trio.task_spawned")

    def task_scheduled(task: Any) -> None:
        try:
            pending[task] = (ready_code or _READY | get_cur(local) << ARG_SHIFT, clock())
        except Exception:
            caught("trio.task_scheduled")

    def before_task_step(task: Any) -> None:
        nonlocal step_g, start, prev, ready, ready_code
        try:
            g = gs.get(task)
            if g is None:
                begin_other(task, clock())
                return
            ready = pending.pop(task, None)
            if guest:
                prev = get_cur(local)
            cur = _TASK_WAKER | g << WAKER_SHIFT
            set_cur(local, cur)
            ready_code = _READY | cur << ARG_SHIFT
            step_g = g
            start = clock()
        except Exception:
            caught("trio.step")

    def begin_other(task: Any, ts: int) -> None:
        """A step of trio's own task (CALLBACK_BEGIN), or of a task never seen before (described now)."""
        nonlocal step_g, callback, start, prev, ready, ready_code
        sid = machinery.get(task) or machinery_name(task)
        prev = get_cur(local)
        if sid:
            machinery[task] = sid
            queued = pending.pop(task, None)
            source = _SOURCE_OF_WAKER.get((queued[0] >> ARG_SHIFT) & WAKER_MASK, 0) if queued else 0
            emit((_CALLBACK_BEGIN | (sid << CALLBACK_SHIFT | source) << ARG_SHIFT, ts, lid))
            set_cur(local, sid << WAKER_SHIFT | _CALLBACK_WAKER)
            callback, step_g, ready_code = sid, 0, 0
        else:
            g = gs[task] = new_g()
            describe(task, g, 0, ts, lid)
            begin_known(task, ts)

    def begin_known(task: Any, ts: int) -> None:
        """A step of a known task, from ``ts`` (the step running when the instrument came, or a first seen task)."""
        nonlocal step_g, start, ready, ready_code
        ready = pending.pop(task, None)
        cur = _TASK_WAKER | gs[task] << WAKER_SHIFT
        set_cur(local, cur)
        ready_code = _READY | cur << ARG_SHIFT
        step_g, start = gs[task], ts

    def after_task_step(task: Any) -> None:
        nonlocal step_g, callback, exited, ready_code
        end = clock()
        try:
            g = step_g
            if not g:
                if callback:  # trio's own task
                    set_cur(local, prev)
                    ready_code = phase_code
                    emit((_CALLBACK_END, end, lid))
                    callback = 0
                return  # else the instrument came during this step, from outside it
            set_cur(local, prev)
            ready_code = phase_code
            step_g = 0
            if exited:
                code, exited = exited, 0
            else:  # still scheduled after its own step: a yield (a checkpoint), it is runnable
                code = code_for(task.coro, task._next_send_fn is not None)
            if ready is None:
                emit((_STEP, start, g, code, end, g))
            else:
                emit((ready[0], ready[1], g, _STEP, start, g, code, end, g))
        except Exception:
            caught("trio.step")

    def task_exited(task: Any) -> None:
        nonlocal exited
        try:
            g = gs.pop(task, None)
            if g is None:
                machinery.pop(task, None)
            elif g == step_g:
                exited = done_code(task)  # recorded with the step, which ends now
            else:
                emit((done_code(task), clock(), g))
            pending.pop(task, None)
        except Exception:
            caught("trio.task_exited")

    def before_io_wait(timeout: float) -> None:
        nonlocal phase_code, ready_code, idle_from
        try:
            phase_code = ready_code = io_code
            now = clock()
            if timeout <= 0:  # a busy run: the tracer's threads get the GIL here, when due (see handoff)
                if now >= handoff.due:
                    handoff.give_way()
            elif not guest:
                if handoff.inline_sampler is not None:
                    handoff.going_idle(now + timeout * 1e9)
                idle_from = len(pending)
                emit((_IDLE_BEGIN, now, lid))
        except Exception:
            caught("trio.io_wait")

    def after_io_wait(timeout: float) -> None:
        nonlocal phase_code, ready_code, idle_from
        try:
            if idle_from >= 0:  # tasks made ready by the I/O events (trio processed them before this hook)
                emit((_IDLE_END | (len(pending) - idle_from) << ARG_SHIFT, clock(), lid))
                idle_from = -1
            phase_code = ready_code = timer_code
        except Exception:
            caught("trio.io_wait")

    def adopt(runner: Any) -> None:
        """Describe a run that is going (from its thread): LOOP_START now, then each task as it is now."""
        ts = clock()
        started(ts)
        tasks = list(runner.tasks)
        for task in tasks:
            sid = machinery_name(task)
            if sid:
                machinery[task] = sid
            else:
                gs[task] = new_g()
        current = getattr(shared.core.GLOBAL_RUN_CONTEXT, "task", None)
        for task in tasks:
            g = gs.get(task)
            if g is None:
                continue
            owner = getattr(task.parent_nursery, "parent_task", None)
            parent = gs.get(owner) or (thread_g() if owner in machinery else 0)
            describe(task, g, parent, ts, lid)
            if task is current:
                continue
            if task._next_send_fn is not None:  # queued to run
                pending[task] = (_READY, ts)
            else:
                emit((code_for(task.coro, False), ts, g))
        if current is None:
            return
        if current in gs:  # the step running now: the one that starts tracing
            begin_known(current, ts)
        else:  # trio's entry queue, running the callback that attaches the instrument
            begin_other(current, ts)

    def finish(here: bool) -> None:
        """Record the tasks queued to run and, if ``here`` (the run's thread), the step running now."""
        for task, (code, ts) in list(pending.items()):
            g = gs.get(task)
            if g:
                emit((code, ts, g))
        if here and (step_g or callback):
            if step_g:
                emit((_STEP, start, step_g) if ready is None else (ready[0], ready[1], step_g, _STEP, start, step_g))
            set_cur(local, prev)

    hooks: dict[str, Callable[..., None]] = {
        "before_run": before_run,
        "after_run": after_run,
        "task_spawned": task_spawned,
        "task_scheduled": task_scheduled,
        "before_task_step": before_task_step,
        "after_task_step": after_task_step,
        "task_exited": task_exited,
        "before_io_wait": before_io_wait,
        "after_io_wait": after_io_wait,
    }
    return hooks, adopt, finish


def _hook_setup_runner(patcher: Patcher, shared: TrioHooks, core: Any) -> None:
    """``setup_runner`` (behind ``trio.run`` and ``trio.lowlevel.start_guest_run``): a new run gets the instrument."""
    orig_setup_runner = core.setup_runner

    def setup_runner(*args: Any, **kwargs: Any) -> Any:
        runner = orig_setup_runner(*args, **kwargs)
        try:
            shared.new_run(runner)
        except Exception:
            caught("trio.setup_runner")
        return runner

    patcher.replace(core, "setup_runner", setup_runner)


def _hook_task_exited(patcher: Patcher, shared: TrioHooks, runner_type: Any) -> None:
    """``Runner.task_exited``: keeps the exiting task's outcome where the instrument's ``task_exited`` finds it."""
    orig_task_exited = runner_type.task_exited  # trio's private bookkeeping, where each task's outcome passes
    exits = shared.exits

    def task_exited(runner: Any, task: Any, outcome: Any) -> None:
        exits.task, exits.outcome = task, outcome
        try:
            orig_task_exited(runner, task, outcome)
        finally:
            exits.task = exits.outcome = None

    patcher.replace(runner_type, "task_exited", task_exited)


class _Woken:
    """A ``run_sync_soon`` callback that, while it runs, names what queued it (a task or a thread) as the waker."""

    __slots__ = ("fn", "local", "waker")

    def __init__(self, fn: Callable[..., object], waker: int, local: Any) -> None:
        self.fn, self.waker, self.local = fn, waker, local

    def __call__(self, *args: Any) -> object:
        local = self.local
        prev = local.cur
        local.cur = self.waker
        try:
            return self.fn(*args)
        finally:
            local.cur = prev


def _hook_run_sync_soon(patcher: Patcher, shared: TrioHooks, entry_queue: Any) -> None:
    """``EntryQueue.run_sync_soon`` (``TrioToken.run_sync_soon``): a callback queued from another thread (a
    ``to_thread`` worker done, ``from_thread``) wakes tasks in the name of that thread."""
    orig_run_sync_soon = shared.run_sync_soon
    local, registry = shared.local, shared.registry

    def run_sync_soon(queue: Any, sync_fn: Any, *args: Any, idempotent: bool = False) -> None:
        if not idempotent:  # idempotent callbacks are told apart by equality: they stay as they are
            try:
                cur = local.cur
                waker = cur if cur & WAKER_MASK == _TASK_WAKER else pack_waker(Waker.THREAD, registry.thread_g())
                sync_fn = _Woken(sync_fn, waker, local)
            except Exception:
                caught("trio.run_sync_soon")
        orig_run_sync_soon(queue, sync_fn, *args, idempotent=idempotent)

    patcher.replace(entry_queue, "run_sync_soon", run_sync_soon)
