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

    ``table`` has ``g`` (the goroutine that ran it), ``generation``,
    ``start``, ``end`` (absolute ns; one still running when the trace
    stopped ends with it) and ``collected`` (objects freed, -1 unknown);
    ``busy`` is the time some collection ran.
    """

    def __init__(self, trace: TraceData) -> None:
        ev = trace.events
        rows = np.flatnonzero(kinds_mask(ev.kind, Kind.GC_START, Kind.GC_END))
        is_start = ev.kind[rows] == Kind.GC_START
        begins = np.flatnonzero(is_start)
        after = np.minimum(begins + 1, max(len(rows) - 1, 0))
        closed = (begins + 1 < len(rows)) & ~is_start[after] if len(rows) else np.zeros(0, dtype=bool)
        start_rows, end_rows = rows[begins], rows[after]
        self.table = Table(
            g=ev.g[start_rows],
            generation=ev.arg[start_rows],
            start=ev.ts[start_rows],
            end=np.where(closed, ev.ts[end_rows], trace.end_ns),
            collected=np.where(closed, ev.arg[end_rows], -1),
        )
        self.busy = RangeSet(self.table.start, self.table.end)

    def __len__(self) -> int:
        return len(self.table)

    def stats(self) -> Stats:
        """Counts, total and longest, overall and per generation."""
        t = self.table
        length = t.end - t.start
        by_generation = {str(gen): _totals(length[t.generation == gen]) for gen in GENERATIONS}
        return {**_totals(length), "by_generation": by_generation}


def _totals(length: NDArray[np.int64]) -> Totals:
    return {
        "collections": len(length),
        "total_ns": int(length.sum()),
        "max_ns": int(length.max()) if len(length) else 0,
    }
