"""The processes a trace holds, and each goroutine's process: the ``processes`` table and every ``pid`` column.

A trace holds one process, or several read together (``TraceData.processes``,
docs/processes.md); :func:`processes` is the one place the SQL tables learn
about them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from ..analysis.goroutines import Goroutines
from ..table import Table
from ..trace_data import TraceData

UNKNOWN = -1  # a pid or ppid the trace does not record


@dataclasses.dataclass(frozen=True)
class Processes:
    """``table``: ``pid``, ``ppid`` (:data:`UNKNOWN` if not recorded), ``host``, ``argv`` (each a list of str),
    ``start_ns`` and ``end_ns`` (absolute ns); ``pid_of``: the pid of each goroutine, by dense index."""

    table: Table
    pid_of: NDArray[np.int64]


def processes(trace: TraceData, goroutines: Goroutines, table: Table | None = None) -> Processes:
    """The processes of ``trace`` (``trace.processes``: one, or each recording read together; ``table``, if
    :func:`process_table` already made it) and each goroutine's pid."""
    table = process_table(trace) if table is None else table
    pid_of = table.pid[goroutines.proc] if len(table) else np.full(len(goroutines), UNKNOWN)
    return Processes(table, pid_of)


def process_table(trace: TraceData) -> Table:
    """:attr:`Processes.table` of ``trace``: it needs no analysis."""
    procs = trace.processes
    return Table(
        pid=np.array([_int(p.pid) for p in procs], dtype=np.int64),
        ppid=np.array([_int(p.ppid) for p in procs], dtype=np.int64),
        host=object_array([p.host for p in procs]),
        argv=object_array([list(p.argv) if p.argv else None for p in procs]),
        start_ns=np.array([p.start_ns for p in procs], dtype=np.int64),
        end_ns=np.array([p.end_ns for p in procs], dtype=np.int64),
    )


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else UNKNOWN


def object_array(values: list[object]) -> NDArray[np.object_]:
    """A one-dimensional object array of ``values`` (lists stay elements, not a second dimension)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
