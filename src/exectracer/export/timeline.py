"""What a timeline export shows, whatever its format: tracks, state slices, wake-up flows, counters, instants.

:mod:`exectracer.export.perfetto` and :mod:`exectracer.export.chrome`
encode a :class:`Timeline`; it reads the state model
(:class:`~exectracer.analysis.StateIntervals`) and the trace's tables,
cut to a time range. Times are absolute ns (``perf_counter_ns``); the
formats write them from :attr:`Timeline.origin_ns`, the trace's start.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..analysis import Analysis
from ..analysis.program_code import ProgramCode
from ..analysis.states import BLOCKED, STATE_NAMES, State, loop_threads
from ..format.decoder import Frame
from ..format.events import WAKER_MASK, WAKER_SHIFT, Kind, Waker
from ..table import Table
from ..trace_data import NONE

STATE_CATEGORIES = {
    s: ("blocked", name) if s in BLOCKED else (name,) for s, name in STATE_NAMES.items() if s != State.ENDED
}
SYNTHETIC_TID = 1 << 32  # threads with no OS id of their own in the trace: this plus the goroutine id


class RangeError(ValueError):
    """A time range that selects nothing of the trace."""


@dataclasses.dataclass(frozen=True)
class GoroutineTracks:
    """Threads and tasks as tracks, by dense goroutine index: ``home`` is the index of the thread a task's loop
    runs on (-1 unknown); ``tid`` a thread's OS id (:data:`SYNTHETIC_TID` plus its id where the trace has none,
    or shares it with another thread)."""

    id: NDArray[np.int64]
    is_task: NDArray[np.bool_]
    name: list[str]
    tid: NDArray[np.int64]
    home: NDArray[np.int32]

    def __len__(self) -> int:
        return len(self.id)

    def index_of(self, g: NDArray[np.int64]) -> NDArray[np.int32]:
        """Dense indices of goroutine ids (-1 for ids the trace does not name)."""
        if len(self.id) == 0:
            return np.full(len(g), -1, dtype=np.int32)
        at = np.minimum(np.searchsorted(self.id, g), len(self.id) - 1)
        return np.where(self.id[at] == g, at, -1).astype(np.int32)


class Timeline:
    """A trace cut to ``[start_ns, end_ns]`` (ns from the trace's start; None: its start, its end).

    ``states`` rows (``gi``, ``state``, ``start``, ``end``, ``stack``) are
    the state model's, clipped to the range; ``flows`` link a waker's
    goroutine (``from_gi``) at ``ts`` to the woken one's slice that begins
    then (``to_row``, a row of ``states``).
    """

    def __init__(self, analysis: Analysis, start_ns: int | None = None, end_ns: int | None = None) -> None:
        trace = analysis.trace
        self.trace = trace
        self.origin_ns = trace.start_ns
        self.lo = self.origin_ns + (start_ns or 0)
        self.hi = trace.end_ns if end_ns is None else min(self.origin_ns + end_ns, trace.end_ns)
        if start_ns is not None and end_ns is not None and end_ns <= start_ns:
            raise RangeError(f"--end ({end_ns / 1e9:g} s) must come after --start ({start_ns / 1e9:g} s)")
        if self.hi <= self.lo and trace.event_count:
            raise RangeError(
                f"the range from {(self.lo - self.origin_ns) / 1e9:g} s to {(self.hi - self.origin_ns) / 1e9:g} s "
                f"holds none of the trace, which lasts {trace.duration_ns / 1e9:g} s"
            )
        self.cut = start_ns is not None or end_ns is not None
        self.pid = _int(trace.metadata.get("pid"), 0)
        argv = trace.metadata.get("argv")
        self.argv = [str(a) for a in argv] if isinstance(argv, list) else []
        self.process_name = os.path.basename(self.argv[0]) if self.argv and self.argv[0] else "python"
        self.tracks = _tracks(analysis)
        self.states = self._states(analysis)
        self.flows = self._flows(analysis)
        self.program = ProgramCode(trace)
        self.func_stack = analysis.goroutines.func_stack
        self.collections = self._spans(analysis.collections.table, "start", "end")
        self.logs = self._instants(trace.logs)
        self.regions = self._spans(trace.regions, "begin_ns", "end_ns")
        self.user_tasks = self._user_tasks()

    # -- the parts --------------------------------------------------------------------------------------------------

    def _states(self, analysis: Analysis) -> Table:
        s = analysis.states
        columns: dict[str, NDArray[Any]] = {
            "gi": s.gi,
            "state": s.state,
            "start": s.start,
            "end": s.end,
            "stack": s.stack,
            "waker": s.waker,
        }
        if not self.cut:
            return Table(**columns)
        keep = (s.end > self.lo) & (s.start < self.hi)
        t = Table(**{k: v[keep] for k, v in columns.items()})
        np.maximum(t.start, self.lo, out=t.start)
        np.minimum(t.end, self.hi, out=t.end)
        return t

    def _flows(self, analysis: Analysis) -> Table:
        """A blocked slice ended by another goroutine: an arrow from that goroutine, then, to the slice after it."""
        s = self.states
        source = s.waker & WAKER_MASK
        rows = np.flatnonzero(
            (s.state[:-1] >= State.NETWORK) & ((source[:-1] == Waker.TASK) | (source[:-1] == Waker.THREAD))
        )
        rows = rows[(s.gi[rows + 1] == s.gi[rows]) & (s.start[rows + 1] == s.end[rows]) & (s.end[rows] < self.hi)]
        waker = analysis.goroutines.index_of(s.waker[rows] >> WAKER_SHIFT)
        known = (waker >= 0) & (waker != s.gi[rows])
        rows = rows[known]
        return Table(from_gi=waker[known], ts=s.end[rows], to_row=rows + 1)

    def _spans(self, table: Table, begin: str, end: str) -> Table:
        """Rows of ``table`` that overlap the range, their ``begin`` and ``end`` clipped (an open end: the range's)."""
        ends = np.where(table[end] < 0, self.hi, table[end])
        keep = (ends > self.lo) & (table[begin] < self.hi) | (table[begin] == ends) & (ends >= self.lo) & (
            ends <= self.hi
        )
        out = table[keep]
        return Table(
            **{k: out[k] for k in out.columns if k not in (begin, end)},
            start=np.maximum(out[begin], self.lo),
            end=np.minimum(ends[keep], self.hi),
        )

    def _instants(self, table: Table, ts: str = "ts") -> Table:
        return table[(table[ts] >= self.lo) & (table[ts] <= self.hi)]

    def _user_tasks(self) -> Table:
        """User tasks that began (their first begin, end and name, as ``TraceData.user_tasks`` takes them),
        found with NumPy: a service's trace holds hundreds of thousands."""
        ev = self.trace.events
        ids, begin = _first(ev, Kind.USER_TASK_BEGIN, ev.arg)
        end_ids, end = _first(ev, Kind.USER_TASK_END, ev.arg)
        name_ids, named = _first(ev, Kind.USER_TASK_NAME, ev.g)
        end_at, has_end = _lookup(end_ids, ids)
        name_at, has_name = _lookup(name_ids, ids)
        strings = np.where(has_name, ev.arg[named[name_at]] if len(named) else 0, -1)
        unique, inverse = np.unique(strings, return_inverse=True)
        table = np.array([self.trace.string(i) if i >= 0 else "?" for i in unique.tolist()] or ["?"], dtype=object)
        tasks = Table(
            id=ids,
            name=table[inverse.reshape(-1)] if len(ids) else np.empty(0, dtype=object),
            name_id=strings,
            g=ev.g[begin],
            begin_ns=ev.ts[begin],
            end_ns=np.where(has_end, ev.ts[end[end_at]] if len(end) else -1, -1),
        )
        return self._spans(tasks, "begin_ns", "end_ns")

    def counters(self) -> list[tuple[str, str, Table]]:
        """The process's counters: name, unit (``count`` or ``bytes``) and their ``ts`` and ``value`` in the range."""
        ev = self.trace.events
        out = []
        for kind, name, unit in ((Kind.HEAP_BLOCKS, "heap blocks", "count"), (Kind.HEAP_RSS, "RSS", "bytes")):
            at = np.flatnonzero(ev.kind == kind)
            at = at[(ev.ts[at] >= self.lo) & (ev.ts[at] <= self.hi)]
            if len(at):
                out.append((name, unit, Table(ts=ev.ts[at], value=ev.arg[at])))
        return out

    # -- where slices are in the code ---------------------------------------------------------------------------------

    def locations(self, gi: NDArray[np.int32], stack: NDArray[np.int32], state: NDArray[np.int8]) -> NDArray[np.int64]:
        """Per slice, the stack id whose innermost program frame it shows (its goroutine's entry while running,
        -1 none); see :meth:`frame`."""
        entry = self.func_stack[gi] if len(self.func_stack) else np.full(len(gi), -1)
        return np.where((stack < 0) & (state == State.RUNNING), entry, np.where(stack < 0, -1, stack))

    def frame(self, stack_id: int) -> Frame | None:
        """The innermost frame of the program's own code in a stack, else its innermost frame."""
        own = self.program.caller(stack_id)
        return own if own is not None else self.trace.frame(stack_id)

    def rel(self, ts: NDArray[np.int64] | int) -> Any:
        """Times from the trace's start."""
        return ts - self.origin_ns


def _tracks(analysis: Analysis) -> GoroutineTracks:
    trace, goroutines = analysis.trace, analysis.goroutines
    ids = goroutines.ids
    names = [
        f"{name} {function}" if task and function else name
        for name, function, task in zip(
            goroutines.name.tolist(), goroutines.start_function.tolist(), goroutines.is_task.tolist(), strict=True
        )
    ]
    tid = SYNTHETIC_TID + ids
    threads = trace.thread_table
    known = threads.native_id != NONE
    natives = np.stack((threads.id[known], threads.native_id[known]), axis=1)
    if len(natives):
        unique, counts = np.unique(natives[:, 1], return_counts=True)
        natives = natives[np.isin(natives[:, 1], unique[counts == 1])]  # an OS id two threads had names neither
        at = goroutines.index_of(natives[:, 0])
        tid[at[at >= 0]] = natives[at >= 0, 1]
    home = np.full(len(ids), -1, dtype=np.int32)
    tasks = trace.task_table
    with_loop = tasks.loop_id != NONE
    pairs = np.stack((tasks.id[with_loop], loop_threads(trace, tasks.loop_id[with_loop])), axis=1)
    task, thread = goroutines.index_of(pairs[:, 0]), goroutines.index_of(pairs[:, 1])
    known = (task >= 0) & (thread >= 0)
    home[task[known]] = thread[known]
    return GoroutineTracks(ids, goroutines.is_task, names, tid, home)


def _first(ev: Table, kind: Kind, key: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.intp]]:
    """The keys of ``kind`` events (sorted, once each) and the row of each one's first event."""
    rows = np.flatnonzero(ev.kind == kind)
    unique, first = np.unique(key[rows], return_index=True)
    return unique, rows[first]


def _lookup(keys: NDArray[np.int64], wanted: NDArray[np.int64]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """Where each of ``wanted`` is in the sorted ``keys``, and whether it is there."""
    if len(keys) == 0:
        return np.zeros(len(wanted), dtype=np.intp), np.zeros(len(wanted), dtype=bool)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return at, keys[at] == wanted


def _int(value: Any, default: int) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else default
