"""What the timeline's lanes hold, indexed for window queries.

* a goroutine lane: the goroutine's state intervals (a slice of the shared
  :class:`StateIntervals`, which keeps each goroutine's rows together),
  ending with its process's recording (:attr:`Lanes.ends`);
* a loop lane: the task steps, callbacks and idle time of one event loop;
* the GC strip and the heap graph: every process's together (the pinned
  strip), or one process's (its lanes under its header).
"""

from __future__ import annotations

import threading

import numpy as np
from numpy.typing import NDArray

from ..analysis import Analysis
from ..analysis.states import State
from ..format.events import CALLBACK_SHIFT, Kind
from ..table import kinds_mask, match_spans
from ..trace_data import TraceData
from .lod import SpanIndex, Window, merge, thin_points, visible

STEP, CALLBACK, IDLE = 0, 1, 2
LOOP_WHAT = 3


class LoopLane:
    """One loop's spans, in time order: ``what`` (step, callback, idle), ``g`` (the task, or -1),
    ``label`` (string id, or 0)."""

    def __init__(
        self,
        starts: NDArray[np.int64],
        ends: NDArray[np.int64],
        what: NDArray[np.int8],
        g: NDArray[np.int64],
        label: NDArray[np.int64],
    ) -> None:
        order = np.argsort(starts, kind="stable")
        self.start, self.end, self.what, self.g, self.label = (
            starts[order],
            ends[order],
            what[order],
            g[order],
            label[order],
        )
        self.index = SpanIndex(self.start, self.end, self.what, LOOP_WHAT)


class Lanes:
    """Every lane of one trace, ready for window queries."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        trace = analysis.trace
        states = analysis.states
        self.states = states
        self.ends = _ends(analysis)  # the intervals' ends, none after its process's recording ended
        n = len(analysis.goroutines)
        bounds = np.searchsorted(states.gi, np.arange(n + 1)) if n else np.zeros(1, dtype=np.int64)
        self._rows = bounds  # goroutine index i owns rows bounds[i]:bounds[i+1]
        self.loops = _loop_lanes(analysis)
        gc = analysis.collections.table
        self.gc = (gc.start, gc.end, gc.generation)
        self.gc_proc = gc.proc
        self.heaps = [_heap(trace, i) for i in range(len(trace.processes))]
        self.heap = self.heaps[0]  # the first process's (several processes' figures do not add up)
        self._indexes: dict[int, SpanIndex] = {}  # goroutine lanes with many intervals
        self._index_lock = threading.Lock()

    def rows_of(self, gi: int) -> slice:
        """The rows of goroutine index ``gi`` in the state intervals."""
        return slice(int(self._rows[gi]), int(self._rows[gi + 1]))

    def goroutine(self, gi: int, window: Window) -> dict:
        s = self.states
        rows = self.rows_of(gi)
        if rows.stop - rows.start >= SpanIndex.MIN_SPANS:
            start, end, state, count, _ = self._index_of(gi, rows).query(window)
        else:
            part = visible(s.start[rows], self.ends[rows], window)
            lo, hi = rows.start + part.start, rows.start + part.stop
            start, end, state, count, _ = merge(
                s.start[lo:hi], self.ends[lo:hi], s.state[lo:hi].astype(np.int64), window, len(State)
            )
        return {"start": start, "end": end, "state": state, "count": count}

    def _index_of(self, gi: int, rows: slice) -> SpanIndex:
        with self._index_lock:  # requests come on several threads
            index = self._indexes.get(gi)
            if index is None:
                s = self.states
                index = self._indexes[gi] = SpanIndex(s.start[rows], self.ends[rows], s.state[rows], len(State))
            return index

    def loop(self, loop_id: int, window: Window) -> dict:
        lane = self.loops[loop_id]
        m_start, m_end, m_what, count, rep = lane.index.query(window)
        single = count == 1
        what, g, label = lane.what, lane.g, lane.label
        labels = [
            self.loop_label(int(what[i]), int(g[i]), int(label[i])) if one else f"{c} spans"
            for i, one, c in zip(rep.tolist(), single.tolist(), count.tolist(), strict=True)
        ]
        return {"start": m_start, "end": m_end, "what": m_what, "g": np.where(single, g[rep], -1), "label": labels}

    def loop_label(self, what: int, g: int, label: int) -> str:
        """What a loop span shows: the task's name, the callback's function, or idle."""
        if what == STEP:
            task = self.analysis.goroutines.get(g)
            return task.name if task else f"task {g}"
        return self.analysis.trace.string(label) if what == CALLBACK else "idle"

    def gc_strip(self, window: Window, proc: int | None = None) -> dict:
        """The collections of every process, or of process index ``proc``."""
        start, end, generation = self.gc
        if proc is not None:
            mine = self.gc_proc == proc
            start, end, generation = start[mine], end[mine], generation[mine]
        part = visible(start, end, window)
        m_start, m_end, m_gen, _, _ = merge(
            start[part], end[part], generation[part].astype(np.int64).clip(0, 2), window, 3
        )
        return {"start": m_start, "end": m_end, "generation": m_gen}

    def heap_graph(self, window: Window, proc: int = 0) -> dict:
        """The heap of process index ``proc`` (the first's by default)."""
        ts, blocks, rss = self.heaps[proc]
        rows = thin_points(ts, window)
        return {"ts": ts[rows], "blocks": blocks[rows], "rss": rss[rows]}


def _ends(analysis: Analysis) -> NDArray[np.int64]:
    """The state intervals' ends, cut at the end of each goroutine's process's recording: with several
    processes the states of a process whose recording ended first run on to the trace's end."""
    trace, states = analysis.trace, analysis.states
    if len(trace.processes) == 1 or not len(states.end):
        return states.end
    procs = trace.goroutine_procs
    proc_of = np.array([procs.get(g, 0) for g in analysis.goroutines.ids.tolist()], dtype=np.int64)
    proc_end = np.array([p.end_ns for p in trace.processes], dtype=np.int64)
    return np.maximum(states.start, np.minimum(states.end, proc_end[proc_of[states.gi]]))


def _heap(trace: TraceData, proc: int) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """The heap samples of process index ``proc``: times, allocated blocks, RSS (0 where unknown)."""
    ev = trace.events
    mine = trace.proc == proc
    blocks, rss = (ev.kind == Kind.HEAP_BLOCKS) & mine, (ev.kind == Kind.HEAP_RSS) & mine
    if blocks.sum() == rss.sum():
        return ev.ts[blocks], ev.arg[blocks], ev.arg[rss]
    return ev.ts[blocks], ev.arg[blocks], np.zeros(int(blocks.sum()), dtype=np.int64)


def _loop_lanes(analysis: Analysis) -> dict[int, LoopLane]:
    """Each loop's task steps (its tasks' running intervals), callbacks and idle spans."""
    trace = analysis.trace
    states = analysis.states
    task_loop = {t.id: t.loop_id for t in trace.tasks if t.loop_id is not None}
    ids = analysis.goroutines.ids
    loop_of_g = np.array([task_loop.get(int(g), -1) for g in ids.tolist()], dtype=np.int64)
    running = np.flatnonzero(states.state == State.RUNNING)
    step_loop = loop_of_g[states.gi[running]] if len(ids) else np.zeros(0, np.int64)
    lanes = {}
    for loop in trace.loops:
        steps = running[step_loop == loop.id]
        cb_start, cb_end, cb_label = _spans(trace, loop.id, Kind.CALLBACK_BEGIN, Kind.CALLBACK_END)
        idle_start, idle_end, _ = _spans(trace, loop.id, Kind.LOOP_IDLE_BEGIN, Kind.LOOP_IDLE_END)
        lanes[loop.id] = LoopLane(
            np.concatenate((states.start[steps], cb_start, idle_start)),
            np.concatenate((states.end[steps], cb_end, idle_end)),
            np.concatenate(
                (np.full(len(steps), STEP), np.full(len(cb_start), CALLBACK), np.full(len(idle_start), IDLE))
            ).astype(np.int8),
            np.concatenate((ids[states.gi[steps]], np.full(len(cb_start) + len(idle_start), -1))),
            np.concatenate(
                (np.zeros(len(steps), np.int64), cb_label >> CALLBACK_SHIFT, np.zeros(len(idle_start), np.int64))
            ),
        )
    return lanes


def _spans(
    trace: TraceData, loop_id: int, begin: Kind, end: Kind
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Begin/end pairs of one loop (unfinished ones end with the trace); start, end and the begin's argument."""
    ev = trace.events
    rows = np.flatnonzero(kinds_mask(ev.kind, begin, end) & (ev.g == loop_id))
    opens = ev.kind[rows] == begin
    b, e = match_spans(np.zeros(len(rows), dtype=np.int64), opens)
    starts = ev.ts[rows[b]]
    ends = np.where(e >= 0, ev.ts[rows[np.maximum(e, 0)]], trace.end_ns)
    return starts, ends, ev.arg[rows[b]]
