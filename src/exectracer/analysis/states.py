"""The goroutine state model: the one state machine every analysis shares.

Each event that changes what a goroutine does is a *transition* into a
state; consecutive transitions of one goroutine bound an *interval* spent in
a state. docs/analysis.md maps every Python situation to a state.

==================  ========================================================
event               the goroutine enters
==================  ========================================================
TASK_READY          runnable (its step is queued on the loop)
TASK_STEP           running
TASK_SUSPEND        blocked by the suspension's category (a bare yield:
                    runnable); a wake-up queued during the step makes the
                    suspension runnable
TASK_DONE           ended
THREAD_CREATE       runnable (started, not yet running)
THREAD_START        running
THREAD_BLOCK        blocked by the wait's category (``ts`` is its start)
THREAD_UNBLOCK      running
GIL_WAIT            runnable from ``ts - arg`` to ``ts`` (an estimate)
LOOP_IDLE_BEGIN     (the loop's thread) blocked on ``network``: the selector
LOOP_IDLE_END       (the loop's thread) running
POOL_WORK_END       (a pool worker) blocked on ``sync``: waiting for work
POOL_WORK_BEGIN     (a pool worker) running
THREAD_END          ended
==================  ========================================================
"""

from __future__ import annotations

import enum
import functools

import numpy as np

from ..format.events import CATEGORY_SHIFT, Category, Kind, Waker
from ..reader import Table, Trace
from .goroutines import Goroutines, group_order


class State(enum.IntEnum):
    """What a goroutine does during an interval."""

    RUNNING = 0
    RUNNABLE = 1
    NETWORK = 2  # blocked, by category from here on
    SYNC = 3
    SLEEP = 4
    SYSCALL = 5
    OTHER = 6
    ENDED = 7  # a transition only: nothing follows it


BLOCKED = (State.NETWORK, State.SYNC, State.SLEEP, State.SYSCALL, State.OTHER)
STATE_NAMES = {s: s.name.lower() for s in State}
NO_STACK = -1
LOOP_IDLE_STACK = -2  # the stack of a loop's thread idle in its selector: no code of its own waits there

_WAIT = 100  # marks kinds whose state comes from their category
_STATE_OF_KIND = np.full(256, -1, dtype=np.int8)
for _kind, _state in {
    Kind.TASK_READY: State.RUNNABLE,
    Kind.TASK_STEP: State.RUNNING,
    Kind.TASK_SUSPEND: _WAIT,
    Kind.TASK_DONE: State.ENDED,
    Kind.THREAD_CREATE: State.RUNNABLE,
    Kind.THREAD_START: State.RUNNING,
    Kind.THREAD_BLOCK: _WAIT,
    Kind.THREAD_UNBLOCK: State.RUNNING,
    Kind.THREAD_END: State.ENDED,
    Kind.GIL_WAIT: State.RUNNING,
    Kind.LOOP_IDLE_BEGIN: State.NETWORK,
    Kind.LOOP_IDLE_END: State.RUNNING,
    Kind.POOL_WORK_BEGIN: State.RUNNING,
    Kind.POOL_WORK_END: State.SYNC,
}.items():
    _STATE_OF_KIND[_kind] = _state

_STATE_OF_CATEGORY = np.full(16, State.OTHER, dtype=np.int8)
for _cat, _state in {
    Category.OTHER: State.OTHER,
    Category.NETWORK: State.NETWORK,
    Category.SYNC: State.SYNC,
    Category.SLEEP: State.SLEEP,
    Category.SYSCALL: State.SYSCALL,
    Category.YIELD: State.RUNNABLE,
}.items():
    _STATE_OF_CATEGORY[_cat] = _state


class StateIntervals:
    """Every goroutine's states over time.

    Columns (NumPy arrays of equal length, grouped by goroutine and in time
    order within one): ``gi`` (dense goroutine index, see
    :class:`Goroutines`), ``state`` (:class:`State`), ``start`` and ``end``
    (absolute ns), ``stack`` (blocked: where it waited; runnable: where it
    resumes; else the goroutine's entry point; -2: a loop's thread idle in
    its selector; -1: unknown) and ``waker`` (blocked and runnable: what made it
    ready, packed like a TASK_READY argument; 0 unknown).
    """

    def __init__(self, trace: Trace, goroutines: Goroutines | None = None) -> None:
        self.goroutines = goroutines if goroutines is not None else Goroutines(trace)
        t = _transitions(trace, self.goroutines)
        self.gi, self.state, self.start, self.end, self.stack, self.waker = _intervals(t, trace.end_ns, self.goroutines)

    def __len__(self) -> int:
        return len(self.gi)

    @functools.cached_property
    def duration(self) -> np.ndarray:
        """``end - start`` of each interval (computed once; do not modify)."""
        return self.end - self.start

    def table(self) -> Table:
        """The intervals as a :class:`Table` with goroutine ids (``g``) and state names."""
        names = np.array([STATE_NAMES[s] for s in State], dtype=object)
        return Table(
            g=self.goroutines.ids[self.gi] if len(self.goroutines) else np.empty(0, np.int64),
            state=names[self.state],
            start_ns=self.start,
            end_ns=self.end,
            stack=self.stack,
            waker=self.waker,
        )


class _Transitions:
    """Transitions grouped by goroutine, in time order within one (``kind`` is the event's)."""

    def __init__(self, gi: np.ndarray, ts: np.ndarray, state: np.ndarray, stack: np.ndarray, waker: np.ndarray, kind: np.ndarray) -> None:
        self.gi, self.ts, self.state, self.stack, self.waker, self.kind = gi, ts, state, stack, waker, kind


def _transitions(trace: Trace, goroutines: Goroutines) -> _Transitions:
    """Gather the events that change a goroutine's state, grouped by goroutine, and give each its state."""
    ev = trace.events
    rows = np.flatnonzero(_STATE_OF_KIND[ev.kind] >= 0)
    g = _loop_events_to_threads(trace, rows, ev.g[rows])
    gi = goroutines.index_of(g).astype(np.int32)
    del g
    known = gi >= 0
    if not known.all():
        rows, gi = rows[known], gi[known]
    del known
    rows = rows[group_order(gi, len(goroutines))]
    gi = np.repeat(np.arange(len(goroutines), dtype=np.int32), np.bincount(gi, minlength=len(goroutines)))  # gi in that order
    kind, arg, ts = ev.kind[rows], ev.arg[rows], ev.ts[rows]
    t = _Transitions(gi, ts, _STATE_OF_KIND[kind], np.full(len(rows), NO_STACK, dtype=np.int32), np.zeros(len(rows), dtype=np.int64), kind)
    del rows
    waits = np.flatnonzero(t.state == _WAIT)
    t.state[waits] = _STATE_OF_CATEGORY[arg[waits] & 0xF]
    t.stack[waits] = arg[waits] >> CATEGORY_SHIFT
    del waits
    t.stack[kind == Kind.LOOP_IDLE_BEGIN] = LOOP_IDLE_STACK
    ready = np.flatnonzero(kind == Kind.TASK_READY)
    t.waker[ready] = arg[ready]
    del ready
    _pack_thread_wakers(t, arg, goroutines)
    _place_gil_waits(t, arg)
    del arg
    _fold_ready_into_step(t)
    return _without_repeats(t)


def _loop_events_to_threads(trace: Trace, rows: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``g`` of the events at ``rows``, where LOOP_IDLE events (whose g is a loop) get the thread that ran the loop then."""
    ev = trace.events
    kind = ev.kind[rows]
    idle = np.flatnonzero((kind == Kind.LOOP_IDLE_BEGIN) | (kind == Kind.LOOP_IDLE_END))
    if len(idle) == 0:
        return g
    starts = np.flatnonzero(ev.kind == Kind.LOOP_START)
    ts = ev.ts[rows[idle]]
    thread = np.zeros(len(idle), dtype=np.int64)
    loops = g[idle]
    for loop in np.unique(loops).tolist():
        mine = loops == loop
        at = starts[ev.g[starts] == loop]
        before = np.searchsorted(ev.ts[at], ts[mine], side="right") - 1
        thread[mine] = np.where(before >= 0, ev.arg[at][np.maximum(before, 0)], 0)
    g[idle] = thread
    return g


def _pack_thread_wakers(t: _Transitions, arg: np.ndarray, goroutines: Goroutines) -> None:
    """A THREAD_UNBLOCK names the goroutine that released it; pack it like a TASK_READY waker."""
    unblock = np.flatnonzero((t.kind == Kind.THREAD_UNBLOCK) & (arg > 0))
    if len(unblock) == 0:
        return
    who = arg[unblock]
    gi = goroutines.index_of(who)
    is_task = np.where(gi >= 0, goroutines.is_task[np.maximum(gi, 0)], False)
    t.waker[unblock] = np.where(is_task, Waker.TASK, Waker.THREAD) | (who << 3)


def _place_gil_waits(t: _Transitions, arg: np.ndarray) -> None:
    """A GIL_WAIT right after its thread's THREAD_UNBLOCK: the thread was runnable for the last ``arg`` ns of the wait.

    The unblock moves back to the estimated start of the GIL wait and
    becomes the runnable transition (it keeps the waker that ended the
    wait); the GIL_WAIT is the return to running.
    """
    gil = np.flatnonzero(t.kind == Kind.GIL_WAIT)
    gil = gil[(gil >= 2) & (arg[gil] > 0)]
    if len(gil) == 0:
        return
    unblock = gil - 1
    ok = (t.kind[unblock] == Kind.THREAD_UNBLOCK) & (t.gi[unblock] == t.gi[gil]) & (t.ts[unblock] == t.ts[gil]) & (t.gi[unblock - 1] == t.gi[gil])
    gil, unblock = gil[ok], unblock[ok]
    t.ts[unblock] = np.maximum(t.ts[gil] - arg[gil], t.ts[unblock - 1])
    t.state[unblock] = State.RUNNABLE


def _fold_ready_into_step(t: _Transitions) -> None:
    """A wake-up queued while the task was still running its step: the task is runnable from the step's end.

    asyncio queues a task's next step the moment its future completes, even
    inside the step that awaits it (a bare yield, a future completed by
    another thread); the TASK_READY then comes before the TASK_SUSPEND. The
    suspension becomes the runnable transition and the TASK_READY a repeat of
    running, which :func:`_without_repeats` drops.
    """
    ready = np.flatnonzero(t.kind == Kind.TASK_READY)
    ready = ready[(ready >= 1) & (ready < len(t.gi) - 1)]
    inside = ready[(t.state[ready - 1] == State.RUNNING) & (t.kind[ready + 1] == Kind.TASK_SUSPEND) & (t.gi[ready - 1] == t.gi[ready]) & (t.gi[ready + 1] == t.gi[ready])]
    t.state[inside + 1] = State.RUNNABLE
    t.waker[inside + 1] = t.waker[inside]
    t.state[inside] = State.RUNNING


def _without_repeats(t: _Transitions) -> _Transitions:
    """Drop a transition into the state the goroutine is already in."""
    n = len(t.gi)
    keep = np.ones(n, dtype=bool)
    np.not_equal(t.state[1:], t.state[:-1], out=keep[1:])
    keep[1:] |= t.gi[1:] != t.gi[:-1]
    if keep.all():
        return t
    return _Transitions(*(_compress(col, keep) for col in (t.gi, t.ts, t.state, t.stack, t.waker, t.kind)))


def _intervals(t: _Transitions, trace_end: int, goroutines: Goroutines) -> tuple[np.ndarray, ...]:
    """Intervals between consecutive transitions of one goroutine; the last one runs to the trace's end."""
    n = len(t.gi)
    last = np.ones(n, dtype=bool)  # the goroutine's last transition
    np.not_equal(t.gi[:-1], t.gi[1:], out=last[:-1])
    end = np.empty(n, dtype=np.int64)
    end[:-1] = t.ts[1:]
    end[last] = trace_end
    np.maximum(end, t.ts, out=end)
    stack = t.stack
    # runnable: where it resumes (the wait before), else its entry point
    entry = goroutines.func_stack.astype(np.int32) if len(goroutines) else np.zeros(0, np.int32)
    runnable = np.flatnonzero((t.state == State.RUNNABLE) & (stack == NO_STACK))
    after_wait = runnable[(runnable >= 1) & ~last[runnable - 1]]
    stack[after_wait] = np.where(stack[after_wait - 1] >= 0, stack[after_wait - 1], NO_STACK)
    # blocked (and runnable) with no stack: its entry point
    unknown = np.flatnonzero((stack == NO_STACK) & (t.state != State.RUNNING))
    stack[unknown] = entry[t.gi[unknown]]
    # blocked: what ended the wait (runnable keeps what made it ready)
    blocked = np.flatnonzero((t.state >= State.NETWORK) & ~last)
    t.waker[blocked] = t.waker[blocked + 1]
    t.waker[(t.state >= State.NETWORK) & last] = 0
    keep = (t.state != State.ENDED) & (end > t.ts)
    return tuple(_compress(col, keep) for col in (t.gi, t.state, t.ts, end, stack, t.waker))


def _compress(column: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``column[keep]``, written over the start of ``column`` (one column's worth of scratch at a time)."""
    kept = column[keep]
    column[: len(kept)] = kept
    return column[: len(kept)]
