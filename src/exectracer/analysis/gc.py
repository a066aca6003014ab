"""Garbage collections: when each ran, which generation, and the time they cover."""

from __future__ import annotations

from typing import TypedDict

import numpy as np
from numpy.typing import NDArray

from ..format.events import Kind
from ..table import Table, kinds_mask
from ..trace_data import TraceData
from .ranges import RangeSet

GENERATIONS = (0, 1, 2)


class Totals(TypedDict):
    """How many collections, their total and longest duration (ns)."""

    collections: int
    total_ns: int
    max_ns: int


class Stats(Totals):
    """:class:`Totals` overall, and per generation (``"0"``, ``"1"``, ``"2"``)."""

    by_generation: dict[str, Totals]


class Collections:
    """Every collection in a trace.

    ``table`` has ``g`` (the goroutine that ran it), ``proc`` (its
    process, an index into ``trace.processes``), ``generation``, ``start``,
    ``end`` (absolute ns; one still running when its process's recording
    stopped ends with it) and ``collected`` (objects freed, -1 unknown);
    ``busy`` is the time some collection ran in some process, and
    :meth:`busy_in` the time one ran in one process: a collection stops
    only its own process's threads.
    """

    def __init__(self, trace: TraceData) -> None:
        ev = trace.events
        rows = np.flatnonzero(kinds_mask(ev.kind, Kind.GC_START, Kind.GC_END))
        rows = rows[np.argsort(trace.proc[rows], kind="stable")]  # each process's in order, one after the other
        proc = trace.proc[rows]
        is_start = ev.kind[rows] == Kind.GC_START
        begins = np.flatnonzero(is_start)
        after = np.minimum(begins + 1, max(len(rows) - 1, 0))
        closed = (
            (begins + 1 < len(rows)) & ~is_start[after] & (proc[after] == proc[begins])
            if len(rows)
            else np.zeros(0, dtype=bool)
        )
        start_rows, end_rows = rows[begins], rows[after]
        ends = np.array([p.end_ns for p in trace.processes], dtype=np.int64)
        table = Table(
            g=ev.g[start_rows],
            proc=proc[begins].astype(np.int64),
            generation=ev.arg[start_rows],
            start=ev.ts[start_rows],
            end=np.where(closed, ev.ts[end_rows], np.maximum(ends[proc[begins]], ev.ts[start_rows])),
            collected=np.where(closed, ev.arg[end_rows], -1),
        )
        self.table = table[np.argsort(table.start, kind="stable")]
        self.busy = RangeSet(self.table.start, self.table.end)
        self._processes = len(trace.processes)

    def busy_in(self, proc: int) -> RangeSet:
        """When a collection ran in process ``proc`` (an index into the trace's processes)."""
        if self._processes == 1:
            return self.busy
        mine = self.table.proc == proc
        return RangeSet(self.table.start[mine], self.table.end[mine])

    def __len__(self) -> int:
        return len(self.table)

    def stats(self, proc: int | None = None) -> Stats:
        """Counts, total and longest, overall and per generation (of process ``proc`` only, if given)."""
        t = self.table if proc is None else self.table[self.table.proc == proc]
        length = t.end - t.start
        by_generation = {str(gen): _totals(length[t.generation == gen]) for gen in GENERATIONS}
        return {**_totals(length), "by_generation": by_generation}


def _totals(length: NDArray[np.int64]) -> Totals:
    return {
        "collections": len(length),
        "total_ns": int(length.sum()),
        "max_ns": int(length.max()) if len(length) else 0,
    }
