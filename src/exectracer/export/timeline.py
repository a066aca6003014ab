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
from ..analysis.states import BLOCKED, STATE_NAMES, State
from ..format.decoder import Frame
from ..format.events import WAKER_MASK, WAKER_SHIFT, Kind, Waker
from ..table import Table

STATE_CATEGORIES = {
    s: ("blocked", name) if s in BLOCKED else (name,) for s, name in STATE_NAMES.items() if s != State.ENDED
}
SYNTHETIC_TID = 1 << 32  # threads with no OS id of their own in the trace: this plus the goroutine id


class RangeError(ValueError):
    """A time range that selects nothing of the trace."""


@dataclasses.dataclass(frozen=True)
class GoroutineTrack:
    """A thread or task, as a track: ``home`` is the dense index of the thread a task's loop runs on (-1 unknown)."""

    index: int
    id: int
    is_task: bool
    name: str
    tid: int
    home: int


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
        self.goroutines = _tracks(analysis)
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
        tasks = [t for t in self.trace.user_tasks if t.begin_ns is not None]
        table = Table(
            id=np.array([t.id for t in tasks], dtype=np.int64),
            name=np.array([t.name for t in tasks] or [""], dtype=object)[: len(tasks)],
            g=np.array([t.g or 0 for t in tasks], dtype=np.int64),
            begin_ns=np.array([t.begin_ns for t in tasks], dtype=np.int64),
            end_ns=np.array([-1 if t.end_ns is None else t.end_ns for t in tasks], dtype=np.int64),
        )
        return self._spans(table, "begin_ns", "end_ns")

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


def _tracks(analysis: Analysis) -> list[GoroutineTrack]:
    trace, goroutines = analysis.trace, analysis.goroutines
    natives = {t.id: t.native_id for t in trace.threads}
    counts: dict[int, int] = {}
    for native in natives.values():
        if native is not None:
            counts[native] = counts.get(native, 0) + 1
    loop_threads = {loop.id: loop.thread_id for loop in trace.loops}
    homes = {t.id: loop_threads.get(t.loop_id) for t in trace.tasks if t.loop_id is not None}
    index = {g.id: g.index for g in goroutines.list}
    tracks = []
    for g in goroutines.list:
        native = natives.get(g.id)
        tid = native if native is not None and counts[native] == 1 else SYNTHETIC_TID + g.id
        home = homes.get(g.id)
        home_gi = index.get(home, -1) if home else -1
        name = f"{g.name} {g.start_function}" if g.kind == "task" and g.start_function else g.name
        tracks.append(GoroutineTrack(g.index, g.id, g.kind == "task", name, tid, home_gi))
    return tracks


def _int(value: Any, default: int) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else default
