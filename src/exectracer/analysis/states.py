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
                    runnable), refined by what ended the wait (see
                    ``_file_by_waker``); a wake-up queued during the step
                    makes the suspension runnable
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

Events that fit no goroutine's states (a damaged trace: a lost chunk held
the LOOP_START or the TASK_CREATE they need) are left out and counted in
``StateIntervals.anomalies``, which the summary and every reader report.

Then the samples (:func:`sampled_waits`): a thread found sleeping in the OS
by consecutive samples, having used no CPU time between them, was blocked
from the first of them to the last. Where the events say it was running
then (it waited in a call no hook covers), that part becomes
``other_estimated``.
"""

from __future__ import annotations

import enum
import functools
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..format.events import (
    CATEGORY_MASK,
    CATEGORY_SHIFT,
    WAKER_MASK,
    WAKER_SHIFT,
    Category,
    Kind,
    ThreadState,
    Waker,
)
from ..table import Table, kind_lookup, kinds_mask
from ..trace_data import NONE, TraceData, lookup
from .blocks import blocks
from .cpu import samples
from .goroutines import Goroutines, group_order
from .parallel import WORKERS, run_all


class State(enum.IntEnum):
    """What a goroutine does during an interval."""

    RUNNING = 0
    RUNNABLE = 1
    NETWORK = 2  # blocked, by category from here on
    SYNC = 3
    SLEEP = 4
    SYSCALL = 5
    OTHER = 6
    OTHER_ESTIMATED = 7  # a thread blocked in a wait no hook saw, estimated from samples (see sampled_waits)
    ENDED = 8  # a transition only: nothing follows it


BLOCKED = (State.NETWORK, State.SYNC, State.SLEEP, State.SYSCALL, State.OTHER, State.OTHER_ESTIMATED)
STATE_NAMES = {s: s.name.lower() for s in State}
NO_STACK = -1
LOOP_IDLE_STACK = -2  # the stack of a loop's thread idle in its selector: no code of its own waits there
MIN_PART_ROWS = 1 << 20  # fewer transitions per half are not worth a thread
MAX_PACK_MOVES = 4096  # dropping more rows than this copies whole columns
MAX_MERGED_GROUPS = 4096  # more goroutines: one sort of all events, not two sorts merged goroutine by goroutine

LoopStarts = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]  # each LOOP_START's time, loop and thread

# what does not fit the state machine, by the key StateIntervals.anomalies counts it under
IDLE_OF_NO_THREAD = "loop idle events of a loop not started"
OF_NO_GOROUTINE = "state events of a goroutine the trace does not name"
AFTER_END = "state events of a goroutine after its end"
ANOMALIES = (IDLE_OF_NO_THREAD, OF_NO_GOROUTINE, AFTER_END)

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
_STATE_OF_WAIT_BYTE = _STATE_OF_CATEGORY[np.arange(256) & CATEGORY_MASK]  # by the low byte of a wait's argument

# What a task's wait filed as other or sync by its await chain was for, by what ended it (-1: the chain's stays)
_STATE_OF_WAKER = np.full(WAKER_MASK + 1, -1, dtype=np.int8)
_STATE_OF_WAKER[Waker.IO] = State.NETWORK  # a callback of the selector's: a socket or pipe became ready
_STATE_OF_WAKER[Waker.THREAD] = State.SYSCALL  # another thread: work done outside the loop (a pool, a driver's thread)
_STATE_OF_WAKER[Waker.TASK] = State.SYNC  # another task: a lock, event, queue or future it completed


class StateIntervals:
    """Every goroutine's states over time.

    Columns (NumPy arrays of equal length, grouped by goroutine and in time
    order within one): ``gi`` (dense goroutine index, see
    :class:`Goroutines`), ``state`` (:class:`State`), ``start`` and ``end``
    (absolute ns), ``stack`` (blocked: where it waited; runnable: where it
    resumes; else the goroutine's entry point; -2: a loop's thread idle in
    its selector; -1: unknown) and ``waker`` (blocked and runnable: what made it
    ready, packed like a TASK_READY argument; 0 unknown).

    ``anomalies``: how many events fit no goroutine's states (a damaged
    trace), by what was wrong (:data:`ANOMALIES`; only those that occurred).
    """

    def __init__(self, trace: TraceData, goroutines: Goroutines | None = None) -> None:
        self.goroutines = goroutines if goroutines is not None else Goroutines(trace)
        t, unplaced = _gathered(trace, self.goroutines)
        halves = _halves(t.gi)
        homes = _home_threads(trace, self.goroutines)
        # the first of two halves packs its intervals against the cut and the second from it: together one slice
        parts = run_all(
            [
                functools.partial(
                    _part_intervals,
                    t.part(rows),
                    _ends(trace, self.goroutines),
                    self.goroutines,
                    homes,
                    i == 0 and len(halves) == 2,
                )
                for i, rows in enumerate(halves)
            ]
        )
        after_end = sum(ended for _, ended in parts)
        kept = [count for count, _ in parts]
        counts = (*unplaced, after_end)
        self.anomalies: dict[str, int] = {name: int(c) for name, c in zip(ANOMALIES, counts, strict=True) if c}
        cut = halves[0].stop
        first, last = (cut - kept[0], cut + kept[1]) if len(halves) == 2 else (0, kept[0])
        rows = slice(first, last)
        self.gi: NDArray[np.int32] = t.gi[rows]
        self.state: NDArray[np.int8] = t.state[rows]
        self.start: NDArray[np.int64] = t.ts[rows]
        self.end: NDArray[np.int64] = t.arg[rows]
        self.stack: NDArray[np.int32] = t.stack[rows]
        self.waker: NDArray[np.int64] = t.waker[rows]
        self._add_sampled_waits(trace)

    def __len__(self) -> int:
        return len(self.gi)

    def _add_sampled_waits(self, trace: TraceData) -> None:
        """Make the running parts of threads that :func:`sampled_waits` found blocked ``other_estimated``."""
        waits = sampled_waits(trace, self.goroutines)
        if len(waits[0]):
            columns = (self.gi, self.state, self.start, self.end, self.stack, self.waker)
            self.gi, self.state, self.start, self.end, self.stack, self.waker = _with_waits(columns, *waits)

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
    """Transitions grouped by goroutine, in time order within one.

    ``kind`` and ``arg`` are the event's; once the states are assigned,
    ``arg``'s memory holds the intervals' ends.
    """

    def __init__(
        self,
        gi: NDArray[np.int32],
        ts: NDArray[np.int64],
        state: NDArray[np.int8],
        stack: NDArray[np.int32],
        waker: NDArray[np.int64],
        kind: NDArray[np.uint8],
        arg: NDArray[np.int64],
    ) -> None:
        self.gi, self.ts, self.state, self.stack, self.waker, self.kind, self.arg = (
            gi,
            ts,
            state,
            stack,
            waker,
            kind,
            arg,
        )

    def part(self, rows: slice) -> _Transitions:
        """The transitions at ``rows``, sharing memory with these."""
        return _Transitions(
            self.gi[rows],
            self.ts[rows],
            self.state[rows],
            self.stack[rows],
            self.waker[rows],
            self.kind[rows],
            self.arg[rows],
        )


def _grouped_rows(
    trace: TraceData, goroutines: Goroutines
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """The rows of the events that change a goroutine's state, grouped by goroutine (time order within one),
    how many of them each goroutine has, and how many were left out as :data:`IDLE_OF_NO_THREAD` and
    :data:`OF_NO_GOROUTINE`.

    Two halves of the events are worked on side by side. With few enough
    goroutines each half is also grouped on its own and the two are merged
    goroutine by goroutine; with more, one sort groups all events.
    """
    n = len(goroutines)
    gi = np.empty(len(trace.events), dtype=np.int32)
    loops = _loop_starts(trace)
    halves = _event_halves(len(gi))
    merge = len(halves) == 2 and n <= MAX_MERGED_GROUPS
    parts = run_all([functools.partial(_group_part, trace, goroutines, loops, gi, rows, merge) for rows in halves])
    counts = np.sum([part_counts for part_counts, _, _ in parts], axis=0)
    unplaced = np.sum([part_unplaced for _, _, part_unplaced in parts], axis=0)
    if merge:
        return _merged([(c, order) for c, order, _ in parts], halves[1].start, n), counts[:n], unplaced
    kept = np.flatnonzero(gi < n)  # the events that change a goroutine's state (others have n)
    return kept[group_order(gi[kept], max(n, 1))], counts[:n], unplaced


def _group_part(
    trace: TraceData, goroutines: Goroutines, loops: LoopStarts, gi: NDArray[np.int32], rows: slice, group: bool
) -> tuple[NDArray[np.intp], NDArray[np.intp] | None, NDArray[np.intp]]:
    """Each event's goroutine index at ``rows``, written to ``gi[rows]``: ``n`` (a last group, left out) for an event
    that changes no state of a goroutine the trace names. Returns how many events each group holds, if
    ``group`` the order (from ``rows.start``) that groups these events, and how many state events were left out
    as :data:`IDLE_OF_NO_THREAD` and :data:`OF_NO_GOROUTINE`."""
    ev = trace.events
    n = len(goroutines)
    mine = gi[rows]
    g = ev.g[rows]
    goroutines.index_of(g, out=mine)
    kind = ev.kind[rows]
    changes = kind_lookup(_STATE_OF_KIND, kind) >= 0
    idle = np.flatnonzero(kinds_mask(kind, Kind.LOOP_IDLE_BEGIN, Kind.LOOP_IDLE_END))
    idle_of_no_thread = 0
    if len(idle):  # a loop is no goroutine: its idle time is its thread's
        thread = _thread_at(loops, ev.ts[rows][idle], g[idle])
        idle_of_no_thread = int(np.count_nonzero(thread == 0))
        mine[idle] = goroutines.index_of(thread)
        changes[idle] = thread != 0  # counted above
    unnamed = (mine < 0) & changes & (g != 0)  # g 0: the process (a GIL_WAIT of the sampler's own probe)
    mine[(mine < 0) | ~changes] = n
    unplaced = np.array([idle_of_no_thread, np.count_nonzero(unnamed)], dtype=np.intp)
    return np.bincount(mine, minlength=n + 1), group_order(mine, n + 1) if group else None, unplaced


def _merged(parts: list[tuple[NDArray[np.intp], NDArray[np.intp] | None]], offset: int, n: int) -> NDArray[np.intp]:
    """The rows of the first ``n`` groups of two halves of the events, each grouped on its own (the second's rows
    counted from ``offset``), as one grouping: per group, the first half's rows, then the second's."""
    (counts_a, order_a), (counts_b, order_b) = parts
    assert order_a is not None and order_b is not None, "each half was grouped (_group_part's group=True)"
    rows = np.empty(int(counts_a[:n].sum() + counts_b[:n].sum()), dtype=np.int64)
    at = a = b = 0
    for end_a, end_b in zip(np.cumsum(counts_a[:n]).tolist(), np.cumsum(counts_b[:n]).tolist(), strict=True):
        rows[at : at + end_a - a] = order_a[a:end_a]
        at += end_a - a
        np.add(order_b[b:end_b], offset, out=rows[at : at + end_b - b])
        at += end_b - b
        a, b = end_a, end_b
    return rows


def _loop_starts(trace: TraceData) -> LoopStarts:
    """Each LOOP_START's time, loop and thread: the thread a loop runs on from then on."""
    ev = trace.events
    starts = np.flatnonzero(ev.kind == Kind.LOOP_START)
    return ev.ts[starts], ev.g[starts], ev.arg[starts]


def _thread_at(loops: LoopStarts, ts: NDArray[np.int64], loop: NDArray[np.int64]) -> NDArray[np.int64]:
    """The thread that ran each ``loop`` at ``ts`` (0 if it had not started yet), from :func:`_loop_starts`."""
    start_ts, start_loop, start_thread = loops
    thread = np.zeros(len(ts), dtype=np.int64)
    for one in np.unique(loop).tolist():
        here, at = loop == one, start_loop == one
        if not at.any():  # a loop never started (its LOOP_START lost): no thread
            continue
        before = np.searchsorted(start_ts[at], ts[here], side="right") - 1
        thread[here] = np.where(before >= 0, start_thread[at][np.maximum(before, 0)], 0)
    return thread


def _event_halves(n: int) -> list[slice]:
    """``0..n`` in two halves, or whole if that is not worth a thread."""
    if WORKERS == 1 or n < 2 * MIN_PART_ROWS:
        return [slice(0, n)]
    return [slice(0, n // 2), slice(n // 2, n)]


def _gathered(trace: TraceData, goroutines: Goroutines) -> tuple[_Transitions, NDArray[np.intp]]:
    """The transitions, grouped: their goroutine, their events' kind, time and argument, and room for their states;
    and the counts of state events left out (see :func:`_grouped_rows`)."""
    ev = trace.events
    rows, counts, unplaced = _grouped_rows(trace, goroutines)
    n = len(rows)
    kind, ts, arg = np.empty(n, dtype=np.uint8), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    calls = [
        functools.partial(np.take, column, rows, out=out, mode="clip")
        for column, out in ((ev.ts, ts), (ev.arg, arg), (ev.kind, kind))
    ]
    gi = run_all([functools.partial(np.repeat, np.arange(len(counts), dtype=np.int32), counts), *calls])[0]
    waker = rows.astype(np.int64, copy=False)  # the rows' memory, already in use, holds the wakers
    transitions = _Transitions(gi, ts, np.empty(n, dtype=np.int8), np.empty(n, dtype=np.int32), waker, kind, arg)
    return transitions, unplaced


def _halves(gi: NDArray[np.int32]) -> list[slice]:
    """Grouped rows in two slices of about equal size, each holding whole goroutines
    (one slice if that is not worth a thread)."""
    halves = _event_halves(len(gi))
    if len(halves) == 1:
        return halves
    cut = int(np.searchsorted(gi, gi[halves[1].start]))  # where the goroutine in the middle begins
    return [slice(0, cut), slice(cut, len(gi))] if cut > 0 else [slice(0, len(gi))]


def _ends(trace: TraceData, goroutines: Goroutines) -> int | NDArray[np.int64]:
    """Where each goroutine's last interval ends: its process's end (several processes: one may have ended long
    before the trace, and its goroutines with it), else the trace's."""
    if len(trace.processes) <= 1:
        return trace.end_ns
    ends = np.array([p.end_ns for p in trace.processes] + [trace.end_ns], dtype=np.int64)
    return ends[trace.procs_of(goroutines.ids)]  # -1, unknown, is the last: the trace's end


def _part_intervals(
    t: _Transitions, trace_end: int | NDArray[np.int64], goroutines: Goroutines, homes: NDArray[np.int64], to_end: bool
) -> tuple[int, int]:
    """Turn the transitions of the goroutines in ``t`` into their intervals, packed at the start of its columns
    (at their end if ``to_end``; ``ts`` holds the starts and ``arg`` the ends); return how many there are, and how
    many transitions came after their goroutine's end (:data:`AFTER_END`: left out).
    ``homes``: each goroutine's own thread (:func:`_home_threads`)."""
    _assign_states(t, goroutines, homes)
    after_end = _after_end(t)
    return len(_intervals(_without_repeats(t, to_end), trace_end, goroutines, to_end)[0]), after_end


def _after_end(t: _Transitions) -> int:
    """Make every transition after its goroutine's end a repeat of the end (dropped); return how many there were."""
    ends = np.flatnonzero(t.state == State.ENDED)
    if len(ends) == 0:
        return 0
    gi = t.gi  # ascending: the transitions are grouped by goroutine index
    first = ends[np.concatenate(([True], gi[ends[1:]] != gi[ends[:-1]]))]  # each goroutine's first end
    after = first + 1
    lengths = np.searchsorted(gi, gi[first], side="right") - after  # the rows from there to its last
    if not lengths.any():
        return 0
    rows = np.repeat(after - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
    late = rows[t.state[rows] != State.ENDED]
    t.state[late] = State.ENDED
    return len(late)


def _assign_states(t: _Transitions, goroutines: Goroutines, homes: NDArray[np.int64]) -> None:
    """Fill in each transition's state, stack and waker from its event."""
    for rows in blocks(len(t.kind)):
        _assign_block(t.part(rows))
    _pack_thread_wakers(t, goroutines)
    _place_gil_waits(t)
    _fold_ready_into_step(t)
    _file_by_waker(t, goroutines, homes)


def _assign_block(t: _Transitions) -> None:
    """:func:`_assign_states` for one block, by whole-block expressions rather than gathers of the waits."""
    kind, arg = t.kind, t.arg
    state = kind_lookup(_STATE_OF_KIND, kind)
    wait = state == _WAIT
    t.state[:] = state
    np.putmask(t.state, wait, kind_lookup(_STATE_OF_WAIT_BYTE, arg.astype(np.uint8)))  # the low byte, wrapped around
    t.stack[:] = arg >> CATEGORY_SHIFT
    np.putmask(t.stack, ~wait, NO_STACK)
    t.stack[kind == Kind.LOOP_IDLE_BEGIN] = LOOP_IDLE_STACK
    np.multiply(arg, kind == Kind.TASK_READY, out=t.waker)


def _pack_thread_wakers(t: _Transitions, goroutines: Goroutines) -> None:
    """A THREAD_UNBLOCK names the goroutine that released it; pack it like a TASK_READY waker."""
    arg = t.arg
    unblock = np.flatnonzero((t.kind == Kind.THREAD_UNBLOCK) & (arg > 0))
    if len(unblock) == 0:
        return
    who = arg[unblock]
    gi = goroutines.index_of(who)
    is_task = np.where(gi >= 0, goroutines.is_task[np.maximum(gi, 0)], False)
    t.waker[unblock] = np.where(is_task, Waker.TASK, Waker.THREAD) | (who << WAKER_SHIFT)


def _place_gil_waits(t: _Transitions) -> None:
    """A GIL_WAIT right after its thread's THREAD_UNBLOCK: the thread was runnable for the last ``arg`` ns of the wait.

    The unblock moves back to the estimated start of the GIL wait and
    becomes the runnable transition (it keeps the waker that ended the
    wait); the GIL_WAIT is the return to running.
    """
    arg = t.arg
    gil = np.flatnonzero(t.kind == Kind.GIL_WAIT)
    gil = gil[(gil >= 2) & (arg[gil] > 0)]
    if len(gil) == 0:
        return
    unblock = gil - 1
    ok = (
        (t.kind[unblock] == Kind.THREAD_UNBLOCK)
        & (t.gi[unblock] == t.gi[gil])
        & (t.ts[unblock] == t.ts[gil])
        & (t.gi[unblock - 1] == t.gi[gil])
    )
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
    kind, state, gi = t.kind, t.state, t.gi
    if len(gi) < 3:
        return
    mid = slice(1, -1)  # a TASK_READY with a transition before and after it
    inside = (
        (kind[mid] == Kind.TASK_READY)
        & (state[:-2] == State.RUNNING)
        & (kind[2:] == Kind.TASK_SUSPEND)
        & (gi[:-2] == gi[mid])
        & (gi[2:] == gi[mid])
    )
    np.putmask(state[2:], inside, State.RUNNABLE)
    np.putmask(t.waker[2:], inside, t.waker[mid].copy())
    np.putmask(state[mid], inside, State.RUNNING)


def _file_by_waker(t: _Transitions, goroutines: Goroutines, homes: NDArray[np.int64]) -> None:
    """A task's wait that its await chain files as ``other`` or ``sync`` takes the meaning of what ended it.

    The chain knows asyncio's own waits (a stream's read, a sleep, an
    executor); libraries that build their own futures and protocols (aiohttp,
    httpx, anyio, database drivers) leave it ``other``, or ``sync`` where
    they wait on an ``asyncio.Event`` that their protocol sets. The
    TASK_READY that ends the wait names its waker: an I/O callback makes it
    ``network``, another thread ``syscall``, another task ``sync``. A timer
    (a timeout as often as a sleep), a plain callback or unknown, the task
    itself and its loop's own thread (outside the loop: a cancellation at
    shutdown) leave the chain's category. ``homes``: see :func:`_home_threads`.
    """
    kind, state, gi = t.kind, t.state, t.gi
    for rows in blocks(len(gi) - 1):  # a wait and the transition after it
        now, after = rows, slice(rows.start + 1, rows.stop + 1)
        filed = (state[now] == State.OTHER) | (state[now] == State.SYNC)
        filed &= (kind[now] == Kind.TASK_SUSPEND) & (kind[after] == Kind.TASK_READY) & (gi[now] == gi[after])
        waits = rows.start + np.flatnonzero(filed)
        waker = t.waker[waits + 1]
        new = _STATE_OF_WAKER[waker & WAKER_MASK]
        change = np.flatnonzero((new >= 0) & (new != state[waits]))  # most are sync waits another task ended
        waits, waker, new = waits[change], waker[change], new[change]
        source, by, mine = waker & WAKER_MASK, waker >> WAKER_SHIFT, gi[waits]
        own = (source == Waker.TASK) & (by == goroutines.ids[mine]) | (source == Waker.THREAD) & (by == homes[mine])
        state[waits[~own]] = new[~own]


def _home_threads(trace: TraceData, goroutines: Goroutines) -> NDArray[np.int64]:
    """Per goroutine index, the thread a task's loop runs on (its last LOOP_START; 0 unknown); a thread's own id."""
    homes = np.where(goroutines.is_task, 0, goroutines.ids) if len(goroutines) else np.zeros(0, np.int64)
    tasks = trace.task_table
    with_loop = tasks.loop_id != NONE
    if with_loop.any():
        ids, threads = tasks.id[with_loop], loop_threads(trace, tasks.loop_id[with_loop])
        at = goroutines.index_of(ids)
        homes[at[at >= 0]] = threads[at >= 0]
    return homes


def loop_threads(trace: TraceData, loop_ids: NDArray[np.int64]) -> NDArray[np.int64]:
    """The thread that last ran each loop in ``loop_ids`` (its last LOOP_START; 0 unknown)."""
    loops = trace.loops
    keys = np.array([loop.id for loop in loops], dtype=np.int64)
    threads = np.array([loop.thread_id or 0 for loop in loops], dtype=np.int64)
    return lookup(loop_ids, keys, threads, 0)[0]


def _without_repeats(t: _Transitions, to_end: bool) -> _Transitions:
    """Drop a transition into the state the goroutine is already in
    (packing the rest as :func:`_part_intervals` says)."""
    n = len(t.gi)
    keep = np.ones(n, dtype=bool)
    np.not_equal(t.state[1:], t.state[:-1], out=keep[1:])
    keep[1:] |= t.gi[1:] != t.gi[:-1]
    if keep.all():
        return t
    gi, ts, state, stack, waker, kind = _pack((t.gi, t.ts, t.state, t.stack, t.waker, t.kind), keep, to_end)
    kept = len(gi)
    return _Transitions(
        gi, ts, state, stack, waker, kind, t.arg[n - kept :] if to_end else t.arg[:kept]
    )  # room for the ends


def _intervals(
    t: _Transitions, trace_end: int | NDArray[np.int64], goroutines: Goroutines, to_end: bool
) -> tuple[NDArray[Any], ...]:
    """Intervals between consecutive transitions of one goroutine; the last one runs to the trace's end (or, given
    one per goroutine index, to the goroutine's)."""
    n = len(t.gi)
    last = np.ones(n, dtype=bool)  # the goroutine's last transition
    np.not_equal(t.gi[:-1], t.gi[1:], out=last[:-1])
    end = t.arg  # the arguments are no longer needed
    end[:-1] = t.ts[1:]
    end[last] = trace_end if isinstance(trace_end, int) else trace_end[t.gi[last]]
    np.maximum(end, t.ts, out=end)
    stack, state, waker = t.stack, t.state, t.waker
    for rows in blocks(n - 1):  # a row and the one after it
        now, after = rows, slice(rows.start + 1, rows.stop + 1)
        # runnable after a wait: it resumes where it waited (a loop's idle, -2, is no place to resume)
        resumes = (state[after] == State.RUNNABLE) & (stack[after] == NO_STACK) & ~last[now]
        np.putmask(stack[after], resumes, np.maximum(stack[now], NO_STACK))
        # blocked: what ended the wait (runnable keeps what made it ready)
        np.putmask(waker[now], (state[now] >= State.NETWORK) & ~last[now], waker[after].copy())
    entry = goroutines.func_stack.astype(np.int32) if len(goroutines) else np.zeros(0, np.int32)
    keep = np.empty(n, dtype=bool)
    for rows in blocks(n):
        # blocked (and runnable) with no stack: its entry point
        unknown = rows.start + np.flatnonzero((stack[rows] == NO_STACK) & (state[rows] != State.RUNNING))
        stack[unknown] = entry[t.gi[unknown]]
        waker[rows][(state[rows] >= State.NETWORK) & last[rows]] = 0
        np.logical_and(state[rows] != State.ENDED, end[rows] > t.ts[rows], out=keep[rows])
    return tuple(_pack((t.gi, state, t.ts, end, stack, waker), keep, to_end))


def _pack(columns: tuple[NDArray[Any], ...], keep: NDArray[np.bool_], to_end: bool) -> list[NDArray[Any]]:
    """Each column's rows where ``keep`` is true, moved in place to the column's start (its end if ``to_end``).

    The columns may be of any dtype each: each keeps its own."""
    dropped = np.flatnonzero(~keep)
    n = len(keep)
    at = slice(len(dropped), n) if to_end else slice(0, n - len(dropped))
    if len(dropped) == 0:
        return [column[at] for column in columns]
    if len(dropped) > MAX_PACK_MOVES:
        for column in columns:
            column[at] = column[keep]  # one column's worth of scratch at a time
        return [column[at] for column in columns]
    moves = _pack_moves(dropped, n, to_end)
    for column in columns:
        for src, dst, length in moves:
            column[dst : dst + length] = column[src : src + length]
    return [column[at] for column in columns]


def _pack_moves(dropped: NDArray[np.intp], n: int, to_end: bool) -> list[tuple[int, int, int]]:
    """``(source, destination, length)`` of the runs of rows between ``dropped`` ones, moved to close the gaps,
    in an order that never overwrites a row still to move."""
    starts = np.concatenate(([0], dropped + 1))
    lengths = np.concatenate((dropped, [n])) - starts
    runs = np.arange(len(starts))
    dst = starts + (len(dropped) - runs if to_end else -runs)  # a run moves by the number of dropped rows on its side
    moves = [
        (s, d, length)
        for s, d, length in zip(starts.tolist(), dst.tolist(), lengths.tolist(), strict=True)
        if length and s != d
    ]
    return moves[::-1] if to_end else moves


# -- waits seen only by the sampler -------------------------------------------------------------------------------

_ASLEEP = (ThreadState.SLEEPING, ThreadState.DISK)
DEFAULT_SWITCH_INTERVAL_NS = 5_000_000  # sys.getswitchinterval()'s default


def sampled_waits(
    trace: TraceData, goroutines: Goroutines
) -> tuple[NDArray[np.int32], NDArray[np.int64], NDArray[np.int64], NDArray[np.int32]]:
    """Spans in which a thread was blocked by the samples' account: goroutine index, start, end and the stack it
    waited in, grouped by goroutine and in time order.

    A span runs from a sample that found the thread asleep in the OS
    (sleeping or disk) to the last of the samples right after it that also
    did, with its CPU time unchanged from one to the next: the thread did
    not run in between. A thread waiting for the GIL sleeps too: the
    sampler says so where it can (ThreadState.GIL, which ends a span). Where
    it cannot, the span must last longer than the interpreter's switch
    interval (METADATA ``switch_interval``, 5 ms by default): a thread
    waiting for the GIL wakes once a switch interval to ask for it, and uses
    CPU time then, unless the OS keeps the thread to run next off the CPUs
    (a loaded machine). The span is certain, not padded: the wait began
    before its first sample and ended after its last.
    """
    s = samples(trace, goroutines)
    asleep = np.isin(s.state, _ASLEEP) & (s.cpu >= 0)
    pair = asleep[:-1] & asleep[1:] & (s.g[:-1] == s.g[1:]) & (s.cpu[:-1] == s.cpu[1:])
    first = np.flatnonzero(pair)
    new = np.ones(len(first), dtype=bool)
    new[1:] = first[1:] != first[:-1] + 1
    begin, last = first[new], first[np.append(new[1:], True)[: len(first)]] + 1  # each run: first and last sample
    long = s.ts[last] - s.ts[begin] > _switch_interval_ns(trace)
    begin, last = begin[long], last[long]
    gi = goroutines.index_of(s.g[begin])
    thread = gi >= 0
    thread[thread] = ~goroutines.is_task[gi[thread]]
    return gi[thread], s.ts[begin][thread], s.ts[last][thread], s.stack[begin][thread].astype(np.int32)


def _switch_interval_ns(trace: TraceData) -> int:
    """How often a thread waiting for the GIL woke up in the traced process (CPython's default if not recorded)."""
    value = trace.metadata.get("switch_interval")
    return int(value * 1e9) if isinstance(value, (int, float)) and value > 0 else DEFAULT_SWITCH_INTERVAL_NS


def _with_waits(
    columns: tuple[NDArray[Any], ...],
    gi: NDArray[np.int32],
    start: NDArray[np.int64],
    end: NDArray[np.int64],
    stack: NDArray[np.int32],
) -> tuple[NDArray[Any], ...]:
    """The intervals ``columns`` (gi, state, start, end, stack, waker) with each running interval cut where the
    waits (grouped by goroutine, in time order, disjoint) cover it: the covered parts ``other_estimated``."""
    row, cut_start, cut_end, cut_stack = _covered_running(columns, gi, start, end, stack)
    if len(row) == 0:
        return columns
    n = len(columns[0])
    rank = np.arange(len(row)) - np.searchsorted(row, row)  # the cut's place among its interval's cuts
    counts = 1 + 2 * np.bincount(row, minlength=n)  # an interval with m cuts: running, cut, running, ..., running
    src = np.repeat(np.arange(n), counts)
    out = [column[src] for column in columns]
    _, o_state, o_start, o_end, o_stack, o_waker = out
    first = np.cumsum(counts) - counts
    before, at = first[row] + 2 * rank, first[row] + 2 * rank + 1
    o_end[before] = cut_start  # the running part before each cut (from the interval's start or the last cut's end)
    o_start[at], o_end[at], o_state[at], o_stack[at], o_waker[at] = (
        cut_start,
        cut_end,
        State.OTHER_ESTIMATED,
        cut_stack,
        0,
    )
    o_start[at + 1] = cut_end  # the running part after it
    keep = o_end > o_start
    return tuple(column[keep] for column in out)


def _covered_running(
    columns: tuple[NDArray[Any], ...],
    gi: NDArray[np.int32],
    start: NDArray[np.int64],
    end: NDArray[np.int64],
    stack: NDArray[np.int32],
) -> tuple[NDArray[np.intp], NDArray[np.int64], NDArray[np.int64], NDArray[np.int32]]:
    """Where the waits cut running intervals: the interval's row, the part cut and the wait's stack, by row and time.

    A wait cuts only the interval its end falls in, if running. A thread
    makes its own transitions, so none falls between the reads of the
    wait's first and last sample; one inside the wait came between its
    first sample's time and that sample's read of the thread (the sample's
    time is taken before it reads every thread), and the thread slept from
    there on.
    """
    c_gi, c_state, c_start, c_end = columns[:4]
    bounds = np.searchsorted(c_gi, np.arange(int(gi.max()) + 2))
    rows = np.empty(len(gi), dtype=np.intp)
    for one in np.unique(gi).tolist():
        lo, hi = int(bounds[one]), int(bounds[one + 1])
        mine = np.flatnonzero(gi == one)
        rows[mine] = lo + np.searchsorted(c_start[lo:hi], end[mine], side="left") - 1  # the interval at end - 1
        rows[mine[rows[mine] < lo]] = -1
    at = rows >= 0
    at[at] = (c_state[rows[at]] == State.RUNNING) & (c_end[rows[at]] >= end[at])
    row = rows[at]
    cut_start, cut_end = np.maximum(c_start[row], start[at]), end[at]
    useful = cut_end > cut_start
    return row[useful], cut_start[useful], cut_end[useful], stack[at][useful]
