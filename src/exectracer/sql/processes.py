"""The processes a trace holds, and each goroutine's process: the ``processes`` table and every ``pid`` column.

A trace records one process today, described by its metadata (``pid``,
``hostname``, ``argv``). :func:`processes` is the one place the SQL tables
learn about processes: a trace that holds several (a process model on the
reading side) changes only its body.
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


def processes(trace: TraceData, goroutines: Goroutines) -> Processes:
    """The processes of ``trace`` and each goroutine's pid: today one process, from the trace's metadata."""
    meta = trace.metadata
    pid = _int(meta.get("pid"))
    argv = meta.get("argv")
    host = meta.get("hostname")
    table = Table(
        pid=np.array([pid], dtype=np.int64),
        ppid=np.array([_int(meta.get("ppid"))], dtype=np.int64),
        host=np.array([host if isinstance(host, str) else None], dtype=object),
        argv=object_array([[str(a) for a in argv] if isinstance(argv, list) else None]),
        start_ns=np.array([trace.start_ns], dtype=np.int64),
        end_ns=np.array([trace.end_ns], dtype=np.int64),
    )
    return Processes(table, np.full(len(goroutines), pid, dtype=np.int64))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else UNKNOWN


def object_array(values: list[object]) -> NDArray[np.object_]:
    """A one-dimensional object array of ``values`` (lists stay elements, not a second dimension)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
